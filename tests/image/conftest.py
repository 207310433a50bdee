"""The image under test, built once per session (or taken as it is), and a container of it per module."""

from __future__ import annotations

import os

import pytest

from harness import image as images


@pytest.fixture(scope="session")
def image() -> str:
    """``IMAGE:test`` as ``python -m harness.image build`` left it (scripts/test builds it before
    pytest), else built now; SCRYPT_HELPER_TEST_IMAGE names another image to test as it is."""
    if not images.available():
        pytest.skip("podman is not installed (apt-get install podman runc debootstrap)")
    name = os.environ.get("SCRYPT_HELPER_TEST_IMAGE", images.TEST_TAG)
    if not images.image_exists(name):
        if name != images.TEST_TAG:
            pytest.fail(f"{name} is not in podman's image store")
        images.build_image(name)
    return name
