"""A lazily imported onnxruntime session that runs a carded landslide model."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np

from .card import ModelCard, card_from_metadata, check_card_matches_graph
from .errors import ModelCardError, RuntimeDependencyError

INSTALL_HINT = (
    "Install it into the Python that QGIS uses, e.g. 'python3 -m pip install onnxruntime' "
    "(on Debian/Ubuntu: 'pip install --user onnxruntime'; on Windows: from the OSGeo4W Shell)."
)


def import_onnxruntime() -> Any:
    """Import onnxruntime or explain how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise RuntimeDependencyError(f"The Python package onnxruntime is not installed. {INSTALL_HINT}") from exc
    return onnxruntime


def onnxruntime_missing_reason() -> Optional[str]:
    """A message when onnxruntime cannot be imported, else None."""
    try:
        import_onnxruntime()
    except RuntimeDependencyError as exc:
        return str(exc)
    return None


def open_session(onnx_path: str, threads: int = 0) -> Any:
    """An onnxruntime CPU session for ``onnx_path``.

    Args:
        onnx_path: The model file.
        threads: Intra-op threads; 0 lets onnxruntime choose (all cores).

    The CPU memory arena is disabled so that memory is given back between
    windows instead of growing to the largest request ever seen.
    """
    ort = import_onnxruntime()
    if not os.path.isfile(onnx_path):
        raise ModelCardError(f"Model file not found: {onnx_path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, int(threads))
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(onnx_path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelCardError(f"{onnx_path} is not a model onnxruntime can load: {exc}") from exc


def read_card(onnx_path: str) -> ModelCard:
    """Read and validate the card of an ONNX file, checking it against the graph.

    Uses onnxruntime (the plugin's runtime dependency).
    """
    session = open_session(onnx_path, threads=1)
    return card_from_session(session, onnx_path)


def card_from_session(session: Any, source: str) -> ModelCard:
    """Card of an open onnxruntime session, checked against its graph."""
    card = card_from_metadata(session.get_modelmeta().custom_metadata_map, source)
    check_card_matches_graph(
        card,
        [(i.name, i.shape, i.type) for i in session.get_inputs()],
        [o.name for o in session.get_outputs()],
    )
    return card


class LandslideModel:
    """A carded ONNX landslide model ready to run on batches of windows.

    Attributes:
        card: The validated model card.
        path: The ONNX file.
    """

    def __init__(self, onnx_path: str, threads: int = 0):
        self.path = onnx_path
        self._session = open_session(onnx_path, threads)
        self.card: ModelCard = card_from_session(self._session, onnx_path)

    def predict(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        """Landslide probability for a batch.

        Args:
            inputs: Model-scaled float32 arrays (N, H, W, C) keyed by role
                (``pre_image``, ``post_image``, ``terrain``).

        Returns:
            float32 array (N, H, W) of probabilities.
        """
        feed = {spec.tensor_name: np.ascontiguousarray(inputs[spec.role], dtype=np.float32) for spec in self.card.inputs}
        (output,) = self._session.run([self.card.output_name], feed)
        output = np.asarray(output, dtype=np.float32)
        if output.ndim == 4:
            output = output[..., 0]
        if output.ndim != 3:
            raise ModelCardError(f"Model output '{self.card.output_name}' has shape {output.shape}; expected (N, H, W, 1).")
        return output
