"""Convert the authors' published Keras model (``M_ALL_006.hdf5``) to a carded ONNX model.

Prakash, Manconi & Loew (2021) published their combined-training model as a
Keras HDF5 file saved with TensorFlow 1.15. This module reads it with h5py
(no TF 1.x Keras needed), rebuilds the paper's network with the authors' layer
names (:func:`training.network.build_resunet`), copies every weight by layer
name and exports the ``prediction`` output with a model card that reproduces
the authors' preprocessing (:func:`original_card`), so the plugin runs it as
it runs any other model.

What the file settles, and how:

* **Width** from the kernel of ``res5a_branch2a`` (256 filters at width 1).
* **Projection shortcut kernel** (1x1 or 3x3) from the kernels of the
  ``*_branch1`` layers; they must all agree.
* **Head kernel** (1x1 or 3x3) from the kernel of ``prediction``.
* **Up-sampling**: a learned up-sampling (``Conv2DTranspose``) shows up as
  weights the network does not have and is refused; with parameter-free
  up-sampling the interpolation (bilinear or nearest) is read from the
  ``model_config`` a full-model save carries.
* **Topology** (what weights cannot show: strides, concatenation order,
  block order, activations): when the file has a ``model_config``, the graph
  that computes ``prediction`` is compared with the rebuilt one, layer by
  layer, up to layer names of parameter-free layers and dropout (an identity
  at inference). Batch-normalisation epsilons are taken from it. A file
  without ``model_config`` (a weights-only save) is refused unless
  ``allow_unverified_topology`` is set, because then interpolation and
  concatenation order are the builder's assumptions.

Anything missing, mis-shaped, extra or different raises
:class:`ConversionError` naming the layers. Deep-supervision heads are not
part of the exported graph and are not read.

HDF5 layout read (Keras 2 / TF 1.15 ``model.save``): root attribute
``model_config`` (JSON), group ``model_weights`` with attribute
``layer_names``; per layer a group with attribute ``weight_names`` and
datasets at ``model_weights/<layer>/<weight name>``, e.g.
``conv1_A/kernel:0`` (Keras sometimes writes ``conv1_A/conv1_A_1/kernel:0``).
A ``save_weights`` file has the layer groups at the root instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from model.card import DEEP_SUPERVISION_PREFIX, INPUT_NAMES, OUTPUT_NAME, ModelCard, TerrainRecipe, standard_inputs
from model.errors import LandslideMapperError

PUBLISHED_FILE_NAME = "M_ALL_006.hdf5"
PUBLISHED_SIZE_BYTES = 250_991_304
PUBLISHED_SHA256 = "24b81b52411917bb8b69dc87b994478a4ddbdce92c4f5c42e6b4061a763b6a3b"
PAPER = ("Prakash, N., Manconi, A. & Loew, S. (2021). A new strategy to map landslides with a generalized "
         "convolutional neural network. Scientific Reports 11, 9722. https://doi.org/10.1038/s41598-021-89015-8")
AUTHORS_REPOSITORY = "https://github.com/nprksh/landslide-mapping-with-cnn"

# The authors' setting (paper; notebook LS_mapping.ipynb of their repository).
GSD_M = 6.0
TILE_PX = 224
CONTEXT_PX = 56          # 224 px tiles of which the central 112 px are kept
THRESHOLD = 0.5

WIDTH_REFERENCE_LAYER = "res5a_branch2a"   # 256 filters at width 1.0
WIDTH_REFERENCE_FILTERS = 256
SHORTCUT_SUFFIX = "_branch1"
MAX_LISTED = 25

_IDENTITY_CLASSES = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
                     "GaussianDropout", "AlphaDropout", "ActivityRegularization"}
_CONV_CLASSES = {"Conv2D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D"}
_WEIGHTED_CLASSES = {"BatchNormalization", "Dense"}


class ConversionError(LandslideMapperError):
    """The file cannot be converted: it is not the paper's network, or parts are missing or differ."""


class ConversionWarning(UserWarning):
    """Something about the file deserves attention but does not stop the conversion."""


@dataclasses.dataclass(frozen=True)
class FileCheck:
    """Size and SHA-256 of the input file, compared with the published file."""

    path: str
    size_bytes: int
    sha256: str

    @property
    def is_published(self) -> bool:
        return self.size_bytes == PUBLISHED_SIZE_BYTES and self.sha256 == PUBLISHED_SHA256

    def warning(self) -> Optional[str]:
        """A message when the file is not byte-identical to the published one, else None."""
        if self.is_published:
            return None
        return (f"{os.path.basename(self.path)} is not the published {PUBLISHED_FILE_NAME} "
                f"({self.size_bytes:,} bytes, sha256 {self.sha256}; published: {PUBLISHED_SIZE_BYTES:,} bytes, "
                f"sha256 {PUBLISHED_SHA256}). Converting it anyway; the card records its own checksum.")


@dataclasses.dataclass
class LegacyWeights:
    """What the converter reads from a Keras 2 HDF5 file.

    Attributes:
        layers: Per layer name, its weights keyed by short name
            (``kernel``, ``bias``, ``gamma``, ``beta``, ``moving_mean``,
            ``moving_variance``); only layers that have weights.
        model_config: The model's config (``{"layers": [...], ...}``) or None
            for a weights-only file.
        keras_version: The ``keras_version`` attribute, if any.
    """

    layers: Dict[str, Dict[str, np.ndarray]]
    model_config: Optional[Dict[str, Any]]
    keras_version: Optional[str]


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
class ConversionReport:
    """Outcome of :func:`convert_original`."""

    output_path: str
    file_check: FileCheck
    architecture: Architecture
    loaded_layers: int
    ignored_layers: List[str]
    parity_max_abs_diff: float
    warnings: List[str]
    card: ModelCard


# --------------------------------------------------------------------------- file


def sha256_of(path: str, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: str) -> FileCheck:
    """Size and checksum of ``path``; raises :class:`ConversionError` if it is not a readable file."""
    if not os.path.isfile(path):
        raise ConversionError(f"No such file: {path}")
    return FileCheck(path=path, size_bytes=os.path.getsize(path), sha256=sha256_of(path))


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def short_weight_name(full_name: str) -> str:
    """``conv1_A/conv1_A_1/kernel:0`` -> ``kernel``."""
    last = _text(full_name).split("/")[-1]
    return last.split(":")[0]


def attribute_list(group, name: str) -> Optional[List[str]]:
    """A list attribute as strings; Keras 2 splits long ones into ``name0``, ``name1``, ... (None if absent)."""
    if name in group.attrs:
        return [_text(v) for v in np.atleast_1d(group.attrs[name])]
    if f"{name}0" not in group.attrs:
        return None
    values: List[str] = []
    index = 0
    while f"{name}{index}" in group.attrs:
        values += [_text(v) for v in np.atleast_1d(group.attrs[f"{name}{index}"])]
        index += 1
    return values


def _datasets_under(group) -> List[Tuple[str, Any]]:
    import h5py

    found: List[Tuple[str, Any]] = []
    group.visititems(lambda name, item: found.append((name, item)) if isinstance(item, h5py.Dataset) else None)
    return found


def _layer_weights(layer_name: str, group) -> Dict[str, np.ndarray]:
    """The weights of one layer group, by short name (order of ``weight_names`` when present)."""
    names = attribute_list(group, "weight_names") or []
    items: List[Tuple[str, Any]] = []
    if names:
        for name in names:
            if name not in group:
                raise ConversionError(f"Layer '{layer_name}' lists weight '{name}' but the file has no such dataset.")
            items.append((name, group[name]))
    else:
        items = _datasets_under(group)
    weights: Dict[str, np.ndarray] = {}
    for name, dataset in items:
        short = short_weight_name(name)
        if short in weights:
            raise ConversionError(f"Layer '{layer_name}' has two weights named '{short}'.")
        weights[short] = np.asarray(dataset[()])
    return weights


def _parse_config(raw: Any) -> Optional[Dict[str, Any]]:
    if raw is None:
        return None
    try:
        config = json.loads(_text(raw))
    except ValueError as exc:
        raise ConversionError(f"The file's model_config is not valid JSON: {exc}") from exc
    if isinstance(config, dict) and "layers" not in config and isinstance(config.get("config"), dict):
        config = config["config"]   # {"class_name": "Model", "config": {...}}
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ConversionError("The file's model_config does not describe a functional Keras model.")
    return config


def read_legacy_h5(path: str) -> LegacyWeights:
    """Read layer weights and the model config of a Keras 2 HDF5 file with h5py."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ConversionError(f"{path} is not an HDF5 file h5py can read: {exc}") from exc
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        layer_names = attribute_list(root, "layer_names")
        if layer_names is None:
            raise ConversionError(f"{path} is not a Keras HDF5 model or weights file (no 'layer_names' attribute).")
        layers: Dict[str, Dict[str, np.ndarray]] = {}
        for name in layer_names:
            if name not in root:
                raise ConversionError(f"{path} lists layer '{name}' but has no group for it.")
            weights = _layer_weights(name, root[name])
            if weights:
                layers[name] = weights
        config = _parse_config(handle.attrs.get("model_config"))
        version = handle.attrs.get("keras_version", root.attrs.get("keras_version"))
        return LegacyWeights(layers=layers, model_config=config,
                             keras_version=None if version is None else _text(version))


# --------------------------------------------------------------------------- graphs


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


# --------------------------------------------------------------------------- settling the variant


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


# --------------------------------------------------------------------------- network


def weighted_layer_names(model: Any) -> List[str]:
    """Names of the layers of ``model`` that have weights, in model order."""
    return [layer.name for layer in model.layers if layer.weights]


def build_network(architecture: Architecture) -> Any:
    """The paper's network in the file's variant (regularisation and dropout do not matter at inference)."""
    from training.network import build_resunet

    return build_resunet(l2=0.0, name="resunet_m_all_006", **architecture.builder_kwargs())


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


def load_weights(model: Any, weights: LegacyWeights, names: Sequence[str]) -> int:
    """Copy the weights of layers ``names`` from the file into ``model``, by layer and weight name.

    Nothing is assigned unless every layer is present with every weight of
    the right shape.

    Returns:
        The number of layers loaded.

    Raises:
        ConversionError: Listing missing layers, missing weights and
            mis-shaped weights.
    """
    missing_layers: List[str] = []
    missing_weights: List[str] = []
    misshaped: List[str] = []
    assignments = []
    for name in names:
        stored = weights.layers.get(name)
        if stored is None:
            missing_layers.append(name)
            continue
        layer = model.get_layer(name)
        expected = {variable.path.split("/")[-1]: variable for variable in layer.weights}
        for short, variable in expected.items():
            if short not in stored:
                missing_weights.append(f"{name}/{short}")
                continue
            value = stored[short]
            if tuple(value.shape) != tuple(variable.shape):
                misshaped.append(f"{name}/{short} (file {tuple(value.shape)}, network {tuple(variable.shape)})")
            else:
                assignments.append((variable, value))
        for short in sorted(set(stored) - set(expected)):
            misshaped.append(f"{name}/{short} (in the file, not in the network)")
    problems = []
    if missing_layers:
        problems.append(f"missing layers: {_listing(missing_layers)}")
    if missing_weights:
        problems.append(f"missing weights: {_listing(missing_weights)}")
    if misshaped:
        problems.append(f"mis-shaped layers: {_listing(misshaped)}")
    if problems:
        raise ConversionError("The file does not fit the paper's network: " + "; ".join(problems) + ".")
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return len(names)


# --------------------------------------------------------------------------- card and conversion


def original_card(file_check: FileCheck, architecture: Architecture) -> ModelCard:
    """The card of the converted model: the authors' preprocessing, tiling and threshold."""
    return ModelCard(
        name="prakash2021-m-all-006",
        version=f"sha256:{file_check.sha256[:12]}",
        description=("The combined-training ResUNet of Prakash, Manconi & Loew (2021), converted without "
                     "retraining from the authors' published Keras file to ONNX. Inputs as in the authors' code: "
                     "8-bit RGB and hillshade scaled x/127.5 - 1, slope in degrees x/45 - 1, 6 m base resolution, "
                     "224 px tiles of which the central 112 px are kept."),
        inputs=standard_inputs(),
        output_name=OUTPUT_NAME,
        gsd_m=GSD_M,
        tile_px=TILE_PX,
        context_px=CONTEXT_PX,
        threshold=THRESHOLD,
        terrain=TerrainRecipe(),
        provenance={
            "source": PAPER,
            "authors_repository": AUTHORS_REPOSITORY,
            "weights_file": os.path.basename(file_check.path),
            "weights_sha256": file_check.sha256,
            "weights_bytes": file_check.size_bytes,
            "is_published_file": file_check.is_published,
            "trained_on": ("the authors' combined training on event landslide inventories (see the paper); "
                           "not retrained or evaluated here"),
            "reported_in_paper": ("MCC up to 0.69 for the combined-training model mapping new, unseen regions "
                                  "(paper abstract); reported by the authors, not measured here"),
            "architecture": dataclasses.asdict(architecture),
            "converted_by": "landslide_mapper training.convert_original",
        },
        metrics={},
    )


def convert_original(h5_path: str, out_path: str, overwrite: bool = False,
                     sizes_px: Optional[Sequence[int]] = None, tolerance: Optional[float] = None,
                     allow_unverified_topology: bool = False) -> ConversionReport:
    """Convert the authors' HDF5 model to a carded ONNX file (see the module docstring).

    Args:
        h5_path: The Keras HDF5 file (``M_ALL_006.hdf5``).
        out_path: Destination ``.onnx`` file (written only after the parity check).
        overwrite: Replace an existing output.
        sizes_px: Square sizes of the onnxruntime/Keras parity check
            (default: those of :func:`training.export.export_onnx`).
        tolerance: Largest accepted onnxruntime/Keras difference (default:
            :data:`training.export.PARITY_TOLERANCE`).
        allow_unverified_topology: Convert a file without ``model_config``.

    Returns:
        A :class:`ConversionReport`; warnings are also issued as
        :class:`ConversionWarning`.

    Raises:
        ConversionError: If the file cannot be read or does not fit.
    """
    from training.export import PARITY_SIZES_PX, PARITY_TOLERANCE, ExportError, export_onnx

    if os.path.exists(out_path) and not overwrite:
        raise ConversionError(f"{out_path} exists; pass --overwrite to replace it.")
    messages: List[str] = []

    def note(message: str) -> None:
        messages.append(message)
        warnings.warn(message, ConversionWarning, stacklevel=3)

    file_check = check_file(h5_path)
    if file_check.warning():
        note(file_check.warning())
    weights = read_legacy_h5(h5_path)
    architecture = settle_architecture(weights, allow_unverified_topology)
    if not architecture.topology_checked:
        note("The file has no model_config: only weight names and shapes were checked; up-sampling (bilinear) "
             "and concatenation order are the builder's assumptions.")
    model = build_network(architecture)
    ignored, unknown = unexpected_layers(model, weights)
    if unknown:
        raise ConversionError(
            f"The file has weighted layers the network does not have: {_listing(unknown)} (a learned "
            "up-sampling such as Conv2DTranspose, or another architecture); they cannot be placed.")
    loaded = load_weights(model, weights, required_layers(model))
    for message in check_topology(model, weights):
        note(message)
    card = original_card(file_check, architecture)
    try:
        worst = export_onnx(model, card, out_path, overwrite=overwrite,
                            sizes_px=PARITY_SIZES_PX if sizes_px is None else sizes_px,
                            tolerance=PARITY_TOLERANCE if tolerance is None else tolerance)
    except ExportError as exc:
        raise ConversionError(str(exc)) from exc
    return ConversionReport(output_path=out_path, file_check=file_check, architecture=architecture,
                            loaded_layers=loaded, ignored_layers=ignored, parity_max_abs_diff=worst,
                            warnings=messages, card=card)
