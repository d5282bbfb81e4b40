"""Settle the variant of the paper's network a file calls for, and check the file's graph against the rebuilt one.

See :mod:`training.convert_original` for what the file settles and how. Graphs
are read from the ``model_config`` of the file (Keras 2 JSON) and from the
rebuilt Keras 3 network alike, and compared as expressions over weighted
layers and inputs, up to parameter-free layer names and dropout.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from model.card import DEEP_SUPERVISION_PREFIX, INPUT_NAMES, OUTPUT_NAME

from .original_h5 import ConversionError, LegacyWeights

WIDTH_REFERENCE_LAYER = "res5a_branch2a"   # 256 filters at width 1.0
WIDTH_REFERENCE_FILTERS = 256
SHORTCUT_SUFFIX = "_branch1"
MAX_LISTED = 25
_IDENTITY_CLASSES = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
                     "GaussianDropout", "AlphaDropout", "ActivityRegularization"}
_CONV_CLASSES = {"Conv2D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D"}
_WEIGHTED_CLASSES = {"BatchNormalization", "Dense"}


@dataclasses.dataclass(frozen=True)
class Architecture:
    """The variant of the paper's network the file's weights (and config) call for."""

    width: float
    shortcut_kernel_px: int
    head_kernel_px: int
    upsampling: str
    topology_checked: bool

    def builder_kwargs(self) -> Dict[str, Any]:
        return {"width": self.width, "shortcut_kernel_px": self.shortcut_kernel_px,
                "head_kernel_px": self.head_kernel_px, "upsampling": self.upsampling}


@dataclasses.dataclass
class _Graph:
    """A functional model as layer name -> (class name, config, inbound layer names)."""

    layers: Dict[str, Tuple[str, Dict[str, Any], List[str]]]
    inputs: List[str]


def _history_names(value: Any, out: List[str]) -> None:
    """Collect ``keras_history`` layer names (Keras 3 node format) in order."""
    if isinstance(value, dict):
        history = value.get("config", {}).get("keras_history") if isinstance(value.get("config"), dict) else None
        if history is not None:
            out.append(history[0])
            return
        for item in value.values():
            _history_names(item, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _history_names(item, out)


def _inbound_names(layer_name: str, nodes: Sequence[Any]) -> List[str]:
    if not nodes:
        return []
    if len(nodes) > 1:
        raise ConversionError(f"Layer '{layer_name}' is called more than once; shared layers are not supported.")
    node = nodes[0]
    names: List[str] = []
    if isinstance(node, dict):                       # Keras 3: {"args": [...], "kwargs": {...}}
        _history_names(node.get("args", []), names)
    else:                                            # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        names = [entry[0] for entry in node]
    return names


def graph_from_config(config: Mapping[str, Any]) -> _Graph:
    """The layer graph of a functional-model config (Keras 2 or Keras 3 format)."""
    layers: Dict[str, Tuple[str, Dict[str, Any], List[str]]] = {}
    for entry in config["layers"]:
        layer_config = entry.get("config", {}) or {}
        name = entry.get("name") or layer_config.get("name")
        class_name = entry.get("class_name", "")
        if class_name in ("Model", "Functional", "Sequential"):
            raise ConversionError(f"Layer '{name}' is a nested model ({class_name}); nested models are not supported.")
        layers[name] = (class_name, layer_config, _inbound_names(name, entry.get("inbound_nodes", [])))
    inputs = [entry[0] for entry in config.get("input_layers", [])]
    return _Graph(layers=layers, inputs=inputs)


def _ancestors(graph: _Graph, root: str) -> List[str]:
    """``root`` and every layer it depends on."""
    seen: List[str] = []
    stack = [root]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        if name not in graph.layers:
            raise ConversionError(f"The model config refers to layer '{name}', which it does not define.")
        seen.append(name)
        stack.extend(graph.layers[name][2])
    return seen


def _pair(value: Any) -> Tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value), int(value))


def _channels_axis(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return "channels" if value in (-1, 3) else value


def _op(class_name: str, config: Mapping[str, Any]) -> Optional[Tuple[Any, ...]]:
    """Normalised description of a parameter-free layer; None for an identity at inference."""
    if class_name in _IDENTITY_CLASSES:
        return None
    if class_name == "Activation":
        activation = config.get("activation")
        return None if activation == "linear" else ("activation", activation)
    if class_name == "ReLU":
        plain = (config.get("max_value") is None and not float(config.get("negative_slope") or 0.0)
                 and not float(config.get("threshold") or 0.0))
        return ("activation", "relu") if plain else (
            "ReLU", config.get("max_value"), config.get("negative_slope"), config.get("threshold"))
    if class_name == "Add":
        return ("add",)
    if class_name == "Concatenate":
        return ("concatenate", _channels_axis(config.get("axis", -1)))
    if class_name == "MaxPooling2D":
        pool = _pair(config.get("pool_size", 2))
        return ("max_pool", pool, _pair(config.get("strides") or pool), config.get("padding", "valid"))
    if class_name == "UpSampling2D":   # Keras 2 default interpolation: nearest
        return ("upsample", _pair(config.get("size", 2)), config.get("interpolation", "nearest"))
    if class_name == "BilinearUpSampling2D":
        return ("upsample", _pair(config["factor"]), config.get("interpolation", "bilinear"))
    return (class_name,)


def _weighted_descriptor(class_name: str, config: Mapping[str, Any]) -> Tuple[Any, ...]:
    """What a weight-bearing layer does beyond its weight shapes."""
    if class_name in _CONV_CLASSES:
        return (class_name, _pair(config.get("kernel_size", 1)), _pair(config.get("strides", 1)),
                config.get("padding", "valid"), _pair(config.get("dilation_rate", 1)),
                config.get("data_format", "channels_last") or "channels_last")
    if class_name == "BatchNormalization":
        return (class_name, _channels_axis(config.get("axis", -1)), bool(config.get("center", True)),
                bool(config.get("scale", True)))
    return (class_name,)


class _Expressions:
    """Layer outputs as expressions of parameter-free ops over weighted layers and inputs."""

    def __init__(self, graph: _Graph, weighted: set):
        self.graph = graph
        self.weighted = weighted
        self.memo: Dict[str, Any] = {}

    def of(self, name: str) -> Any:
        if name not in self.memo:
            self.memo[name] = self._build(name)
        return self.memo[name]

    def _build(self, name: str) -> Any:
        class_name, config, inbound = self.graph.layers[name]
        if name in self.weighted:
            reference = ("layer", name)
            activation = config.get("activation", "linear") if class_name in _CONV_CLASSES else "linear"
            return reference if activation in (None, "linear") else (("activation", activation), (reference,))
        if class_name == "InputLayer":
            if name not in self.graph.inputs:
                raise ConversionError(f"Input layer '{name}' is not a model input.")
            return ("input", self.graph.inputs.index(name))
        op = _op(class_name, config)
        children = tuple(self.of(child) for child in inbound)
        if op is None:
            if len(children) != 1:
                raise ConversionError(f"Layer '{name}' ({class_name}) has {len(children)} inputs; expected 1.")
            return children[0]
        if op == ("add",):
            children = tuple(sorted(children, key=repr))
        return (op, children)


def render(expression: Any, limit: int = 240) -> str:
    """Short human-readable form of an expression from :class:`_Expressions`."""

    def walk(e: Any) -> str:
        if e[0] == "layer":
            return e[1]
        if e[0] == "input":
            return INPUT_NAMES[e[1]] if e[1] < len(INPUT_NAMES) else f"input{e[1]}"
        op, children = e
        parts = ["x".join(str(v) for v in p) if isinstance(p, tuple) else str(p) for p in op]
        label = parts[1] if op[0] == "activation" else "_".join(parts)
        return f"{label}({', '.join(walk(c) for c in children)})"

    text = walk(expression)
    return text if len(text) <= limit else text[:limit] + "..."


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _kernel_size(weights: Mapping[str, np.ndarray], layer: str) -> int:
    kernel = weights.get("kernel")
    if kernel is None or kernel.ndim != 4:
        raise ConversionError(f"Layer '{layer}' has no 2D convolution kernel in the file; cannot read its size.")
    if kernel.shape[0] != kernel.shape[1]:
        raise ConversionError(f"Layer '{layer}' has a non-square kernel {kernel.shape[:2]}; the network has none.")
    return int(kernel.shape[0])


def _upsampling_from_config(config: Mapping[str, Any]) -> str:
    """Interpolation of the parameter-free up-sampling layers that feed ``prediction``."""
    from training.network import UPSAMPLING_MODES

    graph = graph_from_config(config)
    if OUTPUT_NAME not in graph.layers:
        raise ConversionError(f"The file's model_config has no layer '{OUTPUT_NAME}'.")
    classes = {name: graph.layers[name][0] for name in _ancestors(graph, OUTPUT_NAME)}
    learned = sorted(name for name, cls in classes.items() if cls == "Conv2DTranspose")
    if learned:
        raise ConversionError(
            f"The file up-samples with learned transposed convolutions ({_listing(learned)}); the paper's network "
            "as built by training.network has parameter-free up-sampling, so this file cannot be converted.")
    modes = {graph.layers[name][1].get("interpolation", "nearest")
             for name, cls in classes.items() if cls == "UpSampling2D"}
    if len(modes) != 1 or not modes <= set(UPSAMPLING_MODES):
        found = sorted(modes) or "no UpSampling2D layer"
        raise ConversionError(f"Cannot settle the up-sampling of the file's decoder (found {found}); "
                              f"supported: one of {list(UPSAMPLING_MODES)} throughout.")
    return modes.pop()


def settle_architecture(weights: LegacyWeights, allow_unverified_topology: bool = False) -> Architecture:
    """The network variant the file calls for (see the module docstring); raises if it cannot be settled."""

    layers = weights.layers
    missing = [name for name in (WIDTH_REFERENCE_LAYER, OUTPUT_NAME) if name not in layers]
    if missing:
        raise ConversionError(f"The file lacks layers needed to settle the network's shape: {_listing(missing)}.")
    filters = layers[WIDTH_REFERENCE_LAYER].get("kernel")
    if filters is None or filters.ndim != 4:
        raise ConversionError(f"Layer '{WIDTH_REFERENCE_LAYER}' has no convolution kernel in the file.")
    width = float(filters.shape[-1]) / WIDTH_REFERENCE_FILTERS

    shortcut_sizes = {name: _kernel_size(w, name) for name, w in layers.items()
                      if name.endswith(SHORTCUT_SUFFIX) and "kernel" in w}
    if not shortcut_sizes:
        raise ConversionError(f"The file has no projection shortcut kernels (*{SHORTCUT_SUFFIX}); "
                              "cannot settle their size.")
    distinct = sorted(set(shortcut_sizes.values()))
    if len(distinct) != 1:
        by_size = {size: sorted(n for n, s in shortcut_sizes.items() if s == size) for size in distinct}
        raise ConversionError("Projection shortcuts of different kernel sizes cannot be settled: " + "; ".join(
            f"{size}x{size}: {_listing(names)}" for size, names in by_size.items()))
    head_px = _kernel_size(layers[OUTPUT_NAME], OUTPUT_NAME)

    if weights.model_config is not None:
        upsampling = _upsampling_from_config(weights.model_config)
        checked = True
    elif allow_unverified_topology:
        upsampling = "bilinear"
        checked = False
    else:
        raise ConversionError(
            "The file has no model_config (a weights-only save): the up-sampling interpolation and the order of "
            "concatenated features cannot be read from weights. Pass --allow-unverified-topology to convert it "
            "with the builder's choices (bilinear up-sampling, the documented concatenation order).")
    return Architecture(width=width, shortcut_kernel_px=distinct[0], head_kernel_px=head_px,
                        upsampling=upsampling, topology_checked=checked)


def weighted_layer_names(model: Any) -> List[str]:
    """Names of the layers of ``model`` that have weights, in model order."""
    return [layer.name for layer in model.layers if layer.weights]


def required_layers(model: Any) -> List[str]:
    """Weighted layers that the ``prediction`` output depends on."""
    from training.network import prediction_model

    return weighted_layer_names(prediction_model(model))


def unexpected_layers(model: Any, weights: LegacyWeights) -> Tuple[List[str], List[str]]:
    """File layers outside the exported graph: (ignored deep-supervision heads, unknown layers)."""

    required = set(required_layers(model))
    if weights.model_config is not None:
        graph = graph_from_config(weights.model_config)
        feeding = set(_ancestors(graph, OUTPUT_NAME)) if OUTPUT_NAME in graph.layers else set()
        extra = [name for name in weights.layers if name not in required]
        unknown = sorted(name for name in extra if name in feeding)
        ignored = sorted(name for name in extra if name not in feeding)
        return ignored, unknown
    extra = [name for name in weights.layers if name not in required]
    ignored = sorted(name for name in extra if name.startswith(DEEP_SUPERVISION_PREFIX))
    unknown = sorted(name for name in extra if not name.startswith(DEEP_SUPERVISION_PREFIX))
    return ignored, unknown


def check_topology(model: Any, weights: LegacyWeights) -> List[str]:
    """Compare the file's ``prediction`` graph with the rebuilt network; adopt its BN epsilons.

    Returns:
        Notes on settings taken from the file (batch-normalisation epsilons
        that differ from the builder's).

    Raises:
        ConversionError: Listing every weighted layer whose configuration or
            inputs differ, and layers the file's ``prediction`` depends on
            that the network does not have.
    """

    if weights.model_config is None:
        return []
    ours = graph_from_config(model.get_config())
    theirs = graph_from_config(weights.model_config)
    if OUTPUT_NAME not in theirs.layers:
        raise ConversionError(f"The file's model_config has no layer '{OUTPUT_NAME}'.")
    if len(theirs.inputs) != len(ours.inputs):
        raise ConversionError(f"The file's model has {len(theirs.inputs)} inputs; the network has {len(ours.inputs)}.")
    our_weighted = set(weighted_layer_names(model))
    their_weighted = set(weights.layers) | {name for name, (cls, _, _) in theirs.layers.items()
                                            if cls in _CONV_CLASSES or cls in _WEIGHTED_CLASSES}
    our_feeding = [n for n in _ancestors(ours, OUTPUT_NAME) if n in our_weighted]
    their_feeding = {n for n in _ancestors(theirs, OUTPUT_NAME) if n in their_weighted}
    problems: List[str] = []
    extra = sorted(their_feeding - set(our_feeding))
    if extra:
        problems.append(f"the file's prediction depends on layers the network does not have: {_listing(extra)}")
    our_expr = _Expressions(ours, our_weighted)
    their_expr = _Expressions(theirs, their_weighted)
    for name in sorted(our_feeding):
        if name not in theirs.layers:
            continue   # reported as missing by load_weights
        our_class, our_config, our_inbound = ours.layers[name]
        their_class, their_config, their_inbound = theirs.layers[name]
        if _weighted_descriptor(our_class, our_config) != _weighted_descriptor(their_class, their_config):
            problems.append(f"{name}: file {_weighted_descriptor(their_class, their_config)}, "
                            f"network {_weighted_descriptor(our_class, our_config)}")
            continue
        mine = tuple(our_expr.of(n) for n in our_inbound)
        yours = tuple(their_expr.of(n) for n in their_inbound)
        if mine != yours:
            problems.append(f"{name} takes {' & '.join(render(e) for e in yours)} in the file but "
                            f"{' & '.join(render(e) for e in mine)} in the network")
    if our_expr.of(OUTPUT_NAME) != their_expr.of(OUTPUT_NAME):
        problems.append(f"{OUTPUT_NAME} is {render(their_expr.of(OUTPUT_NAME))} in the file but "
                        f"{render(our_expr.of(OUTPUT_NAME))} in the network")
    if problems:
        raise ConversionError(f"The file's network differs from the paper's network as built here "
                              f"({len(problems)} differences): " + "; ".join(problems[:MAX_LISTED]))
    notes = []
    for name in our_feeding:
        layer = model.get_layer(name)
        epsilon = theirs.layers[name][1].get("epsilon") if name in theirs.layers else None
        if epsilon is not None and hasattr(layer, "epsilon") and float(epsilon) != float(layer.epsilon):
            notes.append(f"{name}: batch-normalisation epsilon {epsilon} from the file (builder: {layer.epsilon})")
            layer.epsilon = float(epsilon)
    return notes
