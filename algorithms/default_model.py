"""Where the plugin's default model lives."""

import os

from .base import PLUGIN_DIR

DEFAULT_MODEL_FILE = os.path.join(PLUGIN_DIR, "model", "default_model.onnx")


def default_model_path():
    """The shipped default model, or None when this build ships none."""
    return DEFAULT_MODEL_FILE if os.path.isfile(DEFAULT_MODEL_FILE) else None
