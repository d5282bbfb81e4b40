"""Errors raised by the inference core.

The Processing algorithms turn every :class:`LandslideMapperError` into a
``QgsProcessingException``; nothing else in the core raises bare exceptions on
user input.
"""


class LandslideMapperError(Exception):
    """Base class of every error the core reports to a user."""


class ModelCardError(LandslideMapperError):
    """A model file has no valid card, or its card does not match its graph."""


class InputDataError(LandslideMapperError):
    """An input raster or vector cannot be used (missing, no CRS, bad band...)."""


class GridError(LandslideMapperError):
    """No usable target grid: inputs do not overlap, extent outside, too large."""


class RuntimeDependencyError(LandslideMapperError):
    """onnxruntime (the plugin's only extra dependency) cannot be imported."""


class CancelledError(LandslideMapperError):
    """The user cancelled the run; partial outputs have been removed."""
