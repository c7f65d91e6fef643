"""Exception types. Every user-facing failure is one of these, with a one-line message that names
the offending file, key or row, so the CLI can print it without a traceback."""

from __future__ import annotations


class FakescopeError(Exception):
    """Base class for errors that the CLI reports as one clear line."""


class ConfigError(FakescopeError):
    """A config file is missing, malformed, or has an unknown key or a wrong type."""


class InputError(FakescopeError):
    """An input file (image, video, manifest, checkpoint) is missing, corrupt or unsupported."""


class ManifestError(InputError):
    """A manifest is malformed or references missing or duplicated files."""


class ModelLoadError(FakescopeError):
    """Model weights could not be loaded (offline hub, missing file, mismatched checkpoint)."""


class NoFaceError(InputError):
    """No face was found in an image or frame."""


class FaceTooSmallError(InputError):
    """A face crop is below the minimum face size (``fakescope.data.images.MIN_FACE_SIDE``): too small
    to tell real from fake, so it gets this error instead of a verdict."""
