"""Rebuild the Keras ResUNet of a carded ONNX model, weights included, so that it can be trained further.

Keras' ONNX export (tf2onnx) keeps every convolution as a ``Conv`` node whose
weight and bias are initializers, and turns every batch normalisation (in
inference form) into ``x * scale + shift``: a ``Mul`` by one constant and an
``Add`` of another. Layers are found by their Keras names, which survive in
the node names (``.../<layer>_1/...``). A batch normalisation comes back as
``gamma = scale``, ``beta = shift``, ``mean = 0``, ``variance = 1 - epsilon``,
which computes exactly the same in inference mode; its batch statistics are
gone, so :func:`rebuild_network` freezes those layers (Keras then runs them in
inference mode, as its transfer-learning guide recommends for fine-tuning).

The architecture comes from the card (``provenance.width``) or, when the card
does not say, from the first width whose layer shapes all match. The rebuilt
network is checked against onnxruntime on random inputs before it is used.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from model.errors import ModelCardError

CANDIDATE_WIDTHS: Tuple[float, ...] = (0.0625, 0.125, 0.25, 0.5, 1.0)
REBUILD_TOLERANCE = 1e-3
"""Largest |onnxruntime - Keras| accepted for a rebuilt network (float32 rounding of folded batch norms)."""


class RebuildError(ModelCardError):
    """The trainer cannot rebuild this ONNX model as a Keras ResUNet."""


def _graph_tables(proto: Any):
    from onnx import numpy_helper

    constants = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:  # constants folded into Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    consumers: Dict[str, List[Any]] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return constants, consumers


def _layer_pattern(layer_name: str) -> "re.Pattern[str]":
    return re.compile(r"(^|/)" + re.escape(layer_name) + r"(_\d+)?/")


def onnx_layer_weights(proto: Any, layer_names: Iterable[str],
                       scope: Optional[str] = None) -> Dict[str, Dict[str, np.ndarray]]:
    """``{layer: {"kernel", "bias"} or {"scale", "shift"}}`` found in an exported ResUNet graph.

    Convolutions: the ``Conv`` node whose weight initializer is named after
    the layer (kernel turned from OIHW to Keras' HWIO). Batch normalisations:
    the ``Mul`` node named after the layer with a constant input, and the
    ``Add`` that consumes it with the other constant. With ``scope`` (an
    ensemble member's sub-model name), only names inside that scope count.
    """
    constants, consumers = _graph_tables(proto)
    nodes = list(proto.graph.node)
    if scope is not None:
        inside = _layer_pattern(scope)
        nodes = [node for node in nodes
                 if inside.search(node.input[1] if node.op_type == "Conv" and len(node.input) >= 2 else node.name)]
    found: Dict[str, Dict[str, np.ndarray]] = {}
    for name in layer_names:
        pattern = _layer_pattern(name)
        for node in nodes:
            if node.op_type == "Conv" and len(node.input) >= 2 and pattern.search(node.input[1]) \
                    and node.input[1] in constants:
                kernel = np.transpose(constants[node.input[1]], (2, 3, 1, 0))
                bias = constants.get(node.input[2]) if len(node.input) > 2 else None
                found[name] = {"kernel": kernel, "bias": None if bias is None else bias.reshape(-1)}
                break
            if node.op_type == "Mul" and pattern.search(node.name) and "batchnorm" in node.name:
                scale_inputs = [i for i in node.input if i in constants]
                adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
                if len(scale_inputs) != 1 or len(adds) != 1:
                    continue
                shift_inputs = [i for i in adds[0].input if i in constants]
                if len(shift_inputs) != 1:
                    continue
                found[name] = {"scale": constants[scale_inputs[0]].reshape(-1),
                               "shift": constants[shift_inputs[0]].reshape(-1)}
                break
    return found


def weighted_layers(network: Any) -> List[Any]:
    return [layer for layer in network.layers if layer.weights]


def assign_layers(network: Any, weights: Dict[str, Dict[str, np.ndarray]], required: Iterable[str]) -> Optional[str]:
    """Set every weighted layer from ``weights``; the first mismatch as text, or None when all fit.

    Layers off the prediction path (the deep-supervision heads, which the
    export leaves out) keep their fresh weights when the graph lacks them.
    """
    required = set(required)
    for layer in weighted_layers(network):
        kind = type(layer).__name__
        got = weights.get(layer.name)
        if got is None:
            if layer.name in required:
                return f"layer '{layer.name}' ({kind}) is not in the graph"
            continue
        current = layer.get_weights()
        if kind == "BatchNormalization" and "scale" in got:
            size = current[0].shape
            if got["scale"].shape != size or got["shift"].shape != size:
                return f"layer '{layer.name}' has {size[0]} channels in Keras, {got['scale'].shape[0]} in the graph"
            epsilon = float(layer.epsilon)
            layer.set_weights([got["scale"].astype(np.float32), got["shift"].astype(np.float32),
                               np.zeros(size, np.float32), np.full(size, 1.0 - epsilon, np.float32)])
        elif kind == "Conv2D" and "kernel" in got:
            if got["kernel"].shape != current[0].shape:
                return f"layer '{layer.name}' has kernel {current[0].shape} in Keras, {got['kernel'].shape} in the graph"
            values = [got["kernel"].astype(np.float32)]
            if len(current) > 1:
                bias = got["bias"] if got["bias"] is not None else np.zeros(current[1].shape, np.float32)
                if bias.shape != current[1].shape:
                    return f"layer '{layer.name}' has bias {current[1].shape} in Keras, {bias.shape} in the graph"
                values.append(bias.astype(np.float32))
            layer.set_weights(values)
        else:
            return f"layer '{layer.name}' ({kind}) cannot be read from the graph"
    return None


def rebuild_network(onnx_path: str, card: Any, l2: float = 1e-5, log=lambda message: None):
    """The training ResUNet (all outputs) of a carded ONNX model, with its weights, batch norms frozen.

    A card that lists ensemble members (:mod:`training.ensemble`) gives the averaged network of its members,
    each rebuilt from its own scope of the graph.

    Returns:
        ``(network, width, max_difference)``: the Keras model, its width and
        the largest |onnxruntime - Keras| measured on random inputs.

    Raises:
        RebuildError: The graph is not an exported ResUNet of any known width,
            or the rebuilt network does not compute what the ONNX model does.
    """
    import onnx

    from .ensemble import member_count, rebuild_ensemble
    from .network import build_resunet, prediction_model

    proto = onnx.load(onnx_path)
    if member_count(card) > 1:
        network, problems = rebuild_ensemble(proto, card, l2=l2)
        if network is None:
            raise RebuildError(f"The trainer cannot rebuild the ensemble {onnx_path} from its members "
                               f"({'; '.join(problems[:2])}).")
        worst = _frozen_and_checked(network, proto, onnx_path)
        log(f"Rebuilt the base model as the mean of {member_count(card)} ResUNets (largest difference to "
            f"onnxruntime {worst:.1e}).")
        return network, card.provenance.get("width"), worst
    stated = card.provenance.get("width") if isinstance(card.provenance, dict) else None
    widths = [float(stated)] if isinstance(stated, (int, float)) else list(CANDIDATE_WIDTHS)
    problems = []
    for width in widths:
        network = build_resunet(width=width, l2=l2)
        weights = onnx_layer_weights(proto, [layer.name for layer in weighted_layers(network)])
        problem = assign_layers(network, weights, [layer.name for layer in weighted_layers(prediction_model(network))])
        if problem is None:
            break
        problems.append(f"width {width:g}: {problem}")
    else:
        raise RebuildError(
            f"The trainer cannot rebuild the model {onnx_path} as a ResUNet of this project "
            f"({'; '.join(problems[:2])}). Adapt a model exported by this project's training package "
            "(`python -m training export` or `export-weights`), such as the default model.")
    worst = _frozen_and_checked(network, proto, onnx_path)
    log(f"Rebuilt the base model as a ResUNet of width {width:g} ({len(weights)} layers from the graph; "
        f"largest difference to onnxruntime {worst:.1e}).")
    return network, width, worst


def _frozen_and_checked(network: Any, proto: Any, onnx_path: str) -> float:
    """Freeze every batch normalisation of ``network`` (members' included); its largest difference to the graph."""
    from .export import parity_check
    from .network import prediction_model

    def freeze(model):
        for layer in model.layers:
            if type(layer).__name__ == "BatchNormalization":
                layer.trainable = False
            elif hasattr(layer, "layers"):  # an ensemble's member
                freeze(layer)

    freeze(network)
    try:
        return parity_check(prediction_model(network), proto.SerializeToString(), sizes_px=(96,),
                            tolerance=REBUILD_TOLERANCE)
    except Exception as exc:  # ExportError, onnxruntime errors
        raise RebuildError(f"The network rebuilt from {onnx_path} does not compute what the ONNX model does: {exc}") \
            from exc
