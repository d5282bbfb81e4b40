"""Export a trained ResUNet to ONNX with its model card, checked against Keras.

The exported graph takes ``pre_image``, ``post_image`` and ``terrain`` (NHWC
float32, dynamic batch and spatial size) and returns ``prediction``. Before
anything is written, onnxruntime is run against Keras on random inputs of two
sizes; a model whose outputs differ by more than :data:`PARITY_TOLERANCE` is
refused.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Sequence, Tuple

import numpy as np

from model.card import OUTPUT_NAME, SIZE_MULTIPLE_PX, ModelCard, write_card
from model.errors import LandslideMapperError

PARITY_TOLERANCE = 1e-4
CONVERSION_ATTEMPTS = 3
"""tf2onnx 1.17 (which Keras' ONNX export runs) now and then drops the graph's final Squeeze on a busy
machine; such a conversion is redone."""
PARITY_SIZES_PX: Tuple[int, ...] = (224, 288)
OPSET = 17


class ExportError(LandslideMapperError):
    """The export failed or the exported graph does not match Keras."""


class OutputShapeError(ExportError):
    """The exported graph's output shape differs from the Keras model's."""


def keras_to_onnx(model: Any) -> Any:
    """Convert a single-output Keras model to an ``onnx.ModelProto`` with Keras' own ONNX export.

    ``model.export(format="onnx")`` (Keras 3, TensorFlow backend: tf2onnx
    underneath) keeps the input names and leaves batch and spatial sizes
    free; its output is renamed to the contract's ``prediction``.
    """
    import tempfile

    import onnx

    names = [t.name.split(":")[0] for t in model.inputs]
    model(random_inputs(model, 2 * SIZE_MULTIPLE_PX, batch=1, seed=0), training=False)  # Keras exports called models only
    with tempfile.TemporaryDirectory(prefix="landslide_export_") as folder:
        path = os.path.join(folder, "model.onnx")
        try:
            model.export(path, format="onnx", verbose=False, opset_version=OPSET)
        except Exception as exc:  # tf2onnx, under Keras, raises many types
            raise ExportError(f"Keras could not export the model to ONNX: {exc}") from exc
        proto = onnx.load(path)
    graph_inputs = [i.name for i in proto.graph.input]
    if sorted(graph_inputs) != sorted(names):
        raise ExportError(f"Exported graph inputs {graph_inputs} differ from the Keras inputs {names}.")
    _name_output(proto, OUTPUT_NAME)
    return proto


def _name_output(proto: Any, name: str) -> None:
    """Make sure the graph's single output is called ``name`` (adds an Identity node if not)."""
    from onnx import helper

    output = proto.graph.output[0]
    if output.name == name:
        return
    proto.graph.node.append(helper.make_node("Identity", [output.name], [name], name=f"{name}_identity"))
    output.name = name


def random_inputs(model: Any, size_px: int, batch: int, seed: int) -> Dict[str, np.ndarray]:
    """Random model-scaled inputs for a Keras model, keyed by input name (see :func:`random_fields`)."""
    return random_fields({t.name.split(":")[0]: int(t.shape[-1]) for t in model.inputs}, size_px, batch, seed)


def random_fields(channels_by_name: Dict[str, int], size_px: int, batch: int, seed: int) -> Dict[str, np.ndarray]:
    """Random model-scaled inputs in [-1, 1] that look like imagery: (batch, size, size, channels) per name.

    Each channel is a random field: uniform values on a grid 8 times coarser,
    interpolated bilinearly, plus a little pixel noise. Independent uniform
    noise at every pixel is the most extreme input a CNN can get; networks
    trained on images amplify it far beyond anything real, and float32
    rounding then dominates the comparison.
    """
    rng = np.random.default_rng(seed)
    coarse_px = size_px // 8 + 2
    position = (np.arange(size_px) + 0.5) / 8.0
    index = np.floor(position).astype(int)
    weight = (position - index).astype(np.float32)
    out = {}
    for name, channels in channels_by_name.items():
        coarse = rng.uniform(-1, 1, (batch, coarse_px, coarse_px, channels)).astype(np.float32)
        w_rows = weight[None, :, None, None]
        rows = coarse[:, index] * (1 - w_rows) + coarse[:, index + 1] * w_rows
        w_cols = weight[None, None, :, None]
        field = rows[:, :, index] * (1 - w_cols) + rows[:, :, index + 1] * w_cols
        noisy = field + rng.normal(0, 0.02, field.shape)
        out[name] = np.clip(noisy, -1, 1).astype(np.float32)
    return out


def parity_check(model: Any, onnx_bytes: bytes, sizes_px: Sequence[int] = PARITY_SIZES_PX,
                 tolerance: float = PARITY_TOLERANCE) -> float:
    """Largest |onnxruntime - Keras| over random inputs of each size; raise above ``tolerance``."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    output_name = session.get_outputs()[0].name
    worst = 0.0
    for index, size in enumerate(sizes_px):
        feed = random_inputs(model, size, batch=2, seed=1000 + index)
        expected = np.asarray(model(feed, training=False))
        (got,) = session.run([output_name], feed)
        if got.shape != expected.shape:  # broadcasting would hide a dropped or added axis
            raise OutputShapeError(f"The exported graph's output has shape {got.shape}, Keras gives {expected.shape}; "
                              "the model was not written.")
        worst = max(worst, float(np.max(np.abs(got - expected))))
    if not worst <= tolerance:
        raise ExportError(f"onnxruntime and Keras differ by {worst:.3g} (> {tolerance:g}); the model was not written.")
    return worst


def export_onnx(model: Any, card: ModelCard, out_path: str, overwrite: bool = False,
                sizes_px: Sequence[int] = PARITY_SIZES_PX, tolerance: float = PARITY_TOLERANCE) -> float:
    """Export ``model`` (its ``prediction`` output) with ``card`` to ``out_path``.

    Args:
        model: A Keras model with the three inputs and a ``prediction`` layer.
        card: The model card to store in the file.
        out_path: Destination ``.onnx`` file (written atomically).
        overwrite: Replace an existing file.
        sizes_px: Square sizes (multiples of 32) of the parity check.
        tolerance: Largest accepted difference. Keep the default for models
            you ship; untrained networks with random weights differ by about
            3e-4 from float32 rounding alone (benchmarks use 1e-3).

    Returns:
        The largest onnxruntime/Keras difference measured.
    """
    from training.network import prediction_model

    if os.path.exists(out_path) and not overwrite:
        raise ExportError(f"{out_path} exists; pass --overwrite to replace it.")
    if len(model.outputs) > 1:
        model = prediction_model(model)
    if card.output_name != OUTPUT_NAME:
        raise ExportError(f"The card's output is '{card.output_name}'; the network's is '{OUTPUT_NAME}'.")
    for attempt in range(1, CONVERSION_ATTEMPTS + 1):
        proto = keras_to_onnx(model)
        write_card(proto, card)
        data = proto.SerializeToString()
        try:
            worst = parity_check(model, data, sizes_px, tolerance)
            break
        except OutputShapeError:
            if attempt == CONVERSION_ATTEMPTS:
                raise
    partial = out_path + ".partial"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.replace(partial, out_path)
    return worst
