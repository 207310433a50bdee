"""scrypt-helper: a stateless web service that computes scrypt for weak devices."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scrypt-helper")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
