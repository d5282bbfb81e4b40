"""Where the plugin's default model lives, and the values its card gives the dialog."""

import functools
import os

from .base import PLUGIN_DIR

DEFAULT_MODEL_FILE = os.path.join(PLUGIN_DIR, "model", "default_model.onnx")


def default_model_path():
    """The shipped default model, or None when this build ships none."""
    return DEFAULT_MODEL_FILE if os.path.isfile(DEFAULT_MODEL_FILE) else None


@functools.lru_cache(maxsize=1)
def default_card_values():
    """``(threshold, min_area_m2)`` of the default model's card, or ``(None, None)``.

    None when no default model ships or onnxruntime (which reads the card) is missing:
    the dialog then shows the fields empty, which also means "the card's value".
    """
    path = default_model_path()
    if path is None:
        return None, None
    try:
        from ..model.session import read_card

        card = read_card(path)
    except Exception:  # noqa: BLE001 - no onnxruntime or an unreadable file: the run will say why
        return None, None
    return float(card.threshold), float(card.min_area_m2)
