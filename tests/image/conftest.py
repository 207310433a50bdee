"""The image under test, built once per session (or taken as it is), and a container of it per module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from harness import image as images


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    """``IMAGE:test`` as this checkout builds it (``images.checkout_image``: scripts/test builds it while
    the suite starts); SCRYPT_HELPER_TEST_IMAGE names another image to test as it is.

    Held under a tag of this session's own, so that a rebuild of ``IMAGE:test`` meanwhile (by
    another checkout's tests on the same machine) changes nothing here.
    """
    if not images.available():
        pytest.skip("podman is not installed (apt-get install podman runc debootstrap)")
    name = os.environ.get("SCRYPT_HELPER_TEST_IMAGE")
    if name is None:
        name = images.checkout_image()
    elif not images.image_exists(name):
        pytest.fail(f"{name} is not in podman's image store")
    held = f"{images.IMAGE}:tests-{os.getpid()}"
    images.run_podman("tag", images.inspect_image(name)["Id"], held)
    try:
        yield held
    finally:
        images.untag(held)
