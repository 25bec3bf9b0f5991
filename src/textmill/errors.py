"""The errors a user can cause. Each message names the problem and the fix."""


class TextmillError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class ConfigError(TextmillError):
    """A config value is unknown, missing or out of range."""


class DataError(TextmillError):
    """A corpus is missing, empty, binary or not valid UTF-8."""


class CheckpointError(TextmillError):
    """A run directory is missing files or holds files from another version."""


class GenerationError(TextmillError):
    """A generation request cannot be served as asked (e.g. prompt longer than the context)."""
