"""The one exception family the CLIs turn into a single error line."""


class BrushworkError(Exception):
    """A user-facing failure: the message names the thing and the fix."""


class ConfigError(BrushworkError):
    """A preset, flag or value that does not fit the tool's config."""


class ImageError(BrushworkError):
    """A file that cannot be turned into an RGB image."""
