"""A lazily imported onnxruntime session that runs a carded landslide model."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np

from .card import ModelCard, card_from_metadata, check_card_matches_graph
from .errors import ModelCardError, RuntimeDependencyError
from .orientations import predict_averaged

INSTALL_HINT = (
    "In QGIS choose Plugins > Landslide Mapper > Install onnxruntime... (it installs it into a folder of the "
    "plugin's, with the Python QGIS runs, on Linux, Windows and macOS). By hand: "
    "'python3 -m pip install --target <QGIS profile>/landslide_mapper/python onnxruntime' with that Python."
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


# ---------------------------------------------------------------- execution providers (GPU when present)

EXECUTION_PROVIDERS = ("auto", "cpu", "cuda", "directml", "coreml")
"""Choices for :func:`choose_providers`, in the order the algorithm offers them."""

PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
GPU_PREFERENCE = ("cuda", "directml", "coreml")
"""Which GPU provider ``auto`` takes when several are offered."""


def choose_providers(choice: str, available) -> list:
    """The onnxruntime providers to ask for, best first, always ending with the CPU.

    Args:
        choice: One of :data:`EXECUTION_PROVIDERS`. ``auto`` takes the first GPU
            provider of :data:`GPU_PREFERENCE` the installed onnxruntime offers
            (a CUDA build, onnxruntime-directml on Windows, CoreML on macOS),
            else the CPU; ``cpu`` never uses a GPU; a named GPU provider must be
            offered.
        available: What ``onnxruntime.get_available_providers()`` returns.

    Raises:
        RuntimeDependencyError: A named provider this onnxruntime does not offer.
    """
    if choice not in EXECUTION_PROVIDERS:
        raise RuntimeDependencyError(
            f"Unknown execution provider '{choice}': choose one of {', '.join(EXECUTION_PROVIDERS)}.")
    cpu = PROVIDER_NAMES["cpu"]
    if choice == "cpu":
        return [cpu]
    if choice == "auto":
        return [PROVIDER_NAMES[key] for key in GPU_PREFERENCE if PROVIDER_NAMES[key] in available][:1] + [cpu]
    if PROVIDER_NAMES[choice] not in available:
        offered = ", ".join(p for p in available if p in PROVIDER_NAMES.values()) or "none"
        raise RuntimeDependencyError(
            f"Execution provider: this onnxruntime does not offer {PROVIDER_NAMES[choice]} (it offers: {offered}). "
            "Install onnxruntime-gpu (CUDA), onnxruntime-directml (Windows) or use 'auto' / 'cpu'.")
    return [PROVIDER_NAMES[choice], cpu]


def _create_session(ort: Any, onnx_path: str, options: Any, choice: str) -> Any:
    """An InferenceSession on the chosen providers; with ``auto``, the CPU when a GPU one fails to start."""
    providers = choose_providers(choice, ort.get_available_providers())
    if "DmlExecutionProvider" in providers:  # DirectML needs these (onnxruntime documentation)
        options.enable_mem_pattern = False
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(onnx_path, sess_options=options, providers=providers)
    except Exception:  # onnxruntime raises its own types; a GPU provider may lack its libraries
        if choice != "auto" or len(providers) == 1:
            raise
    return ort.InferenceSession(onnx_path, sess_options=options, providers=[PROVIDER_NAMES["cpu"]])


# ---------------------------------------------------------------- sessions

def open_session(onnx_path: str, threads: int = 0, execution_provider: str = "cpu") -> Any:
    """An onnxruntime session for ``onnx_path``.

    Args:
        onnx_path: The model file.
        threads: Intra-op threads; 0 lets onnxruntime choose (all cores).
        execution_provider: See :func:`choose_providers` (default: the CPU).

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
    # An unknown or missing provider is refused here with its own message, not as an unloadable model.
    choose_providers(execution_provider, ort.get_available_providers())
    try:
        return _create_session(ort, onnx_path, options, execution_provider)
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

    def __init__(self, onnx_path: str, threads: int = 0, execution_provider: str = "cpu"):
        self.path = onnx_path
        self._session = open_session(onnx_path, threads, execution_provider)
        self.card: ModelCard = card_from_session(self._session, onnx_path)

    @property
    def providers(self) -> list:
        """The execution providers the session runs on, best first (e.g. CUDA then CPU)."""
        return list(self._session.get_providers())

    def predict(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        """Landslide probability for a batch (averaged over flipped copies when the card asks for it).

        Args:
            inputs: Model-scaled float32 arrays (N, H, W, C) keyed by role
                (``pre_image``, ``post_image``, ``terrain``).

        Returns:
            float32 array (N, H, W) of probabilities.
        """
        return predict_averaged(self._run_once, inputs, self.card.test_time_augmentation)

    def _run_once(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {spec.tensor_name: np.ascontiguousarray(inputs[spec.role], dtype=np.float32) for spec in self.card.inputs}
        (output,) = self._session.run([self.card.output_name], feed)
        output = np.asarray(output, dtype=np.float32)
        if output.ndim == 4:
            output = output[..., 0]
        if output.ndim != 3:
            raise ModelCardError(f"Model output '{self.card.output_name}' has shape {output.shape}; expected (N, H, W, 1).")
        return output
