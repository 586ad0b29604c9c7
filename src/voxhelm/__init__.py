"""Voxhelm: a self-hosted speech service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("voxhelm")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
