"""Keras 2 (TF 1.15) HDF5 model files written with h5py, for the converter tests.

The published ``M_ALL_006.hdf5`` is a TF 1.15 ``model.save`` file. Keras 3
cannot write that layout, so these helpers write it by hand from a Keras 3
model of :mod:`training.network`:

* root attributes ``keras_version``, ``backend``, ``model_config`` (Keras 2
  JSON: ``{"class_name": "Model", "config": {"layers": [...]}}`` with
  ``inbound_nodes`` as ``[[[name, node, tensor, {}], ...]]``, ``UpSampling2D``
  layers, ``Activation("relu")`` instead of ``ReLU``, BN ``axis`` as ``[3]``);
* group ``model_weights`` with attribute ``layer_names``; per layer a group
  with attribute ``weight_names`` and datasets ``<layer>/<weight>:0``
  (or ``<layer>/<layer>_1/<weight>:0`` for layers named in
  ``nested_variant_layers``).

``weights_only=True`` writes the ``save_weights`` layout instead (layer groups
at the root, no ``model_config``).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List

import h5py
import numpy as np

LEGACY_KERAS_VERSION = b"2.2.4-tf"


def _tensor_sources(value: Any, out: List[str]) -> None:
    """Layer names in ``keras_history`` entries of a Keras 3 node, in order."""
    if isinstance(value, dict):
        config = value.get("config")
        if isinstance(config, dict) and "keras_history" in config:
            out.append(config["keras_history"][0])
            return
        for item in value.values():
            _tensor_sources(item, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _tensor_sources(item, out)


def legacy_model_config(model) -> Dict[str, Any]:
    """The model's config as TF 1.15 Keras writes it (for the layers this network uses)."""
    config = model.get_config()
    layers = []
    for entry in config["layers"]:
        class_name = entry["class_name"]
        layer_config = dict(entry["config"])
        layer_config["dtype"] = "float32"
        if class_name == "BilinearUpSampling2D":
            factor = layer_config.pop("factor")
            interpolation = layer_config.pop("interpolation", "bilinear")
            class_name = "UpSampling2D"
            layer_config.update(size=[factor, factor], interpolation=interpolation, data_format="channels_last")
        elif class_name == "ReLU":
            class_name = "Activation"
            layer_config = {"name": layer_config["name"], "trainable": True, "dtype": "float32", "activation": "relu"}
        elif class_name == "BatchNormalization":
            layer_config["axis"] = [3]
        sources: List[str] = []
        for node in entry["inbound_nodes"]:
            _tensor_sources(node.get("args", []), sources)
        inbound = [[[name, 0, 0, {}] for name in sources]] if sources else []
        layers.append({"name": entry["name"], "class_name": class_name, "config": layer_config,
                       "inbound_nodes": inbound})
    return {"class_name": "Model",
            "config": {"name": config["name"], "layers": layers,
                       "input_layers": [list(i) for i in config["input_layers"]],
                       "output_layers": [list(o) for o in config["output_layers"]]}}


def randomize_weights(model, seed: int, head_gain: float = 10.0) -> None:
    """Seeded weights that keep activations in range; BN statistics far from 0 and 1.

    The ``prediction`` kernel is ``head_gain`` times larger than the others so
    that probabilities spread over a good part of 0..1 instead of sitting near
    0.5, where a wrong weight would hardly show.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for variable in layer.weights:
            short = variable.path.split("/")[-1]
            shape = tuple(variable.shape)
            if short == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                gain = head_gain if layer.name == "prediction" else 1.0
                value = rng.normal(0.0, gain / np.sqrt(fan_in), shape)
            elif short == "bias":
                value = rng.normal(0.0, 0.05, shape)
            elif short == "gamma":
                value = rng.uniform(0.5, 1.0, shape)
            elif short == "beta":
                value = rng.normal(0.0, 0.1, shape)
            elif short == "moving_mean":
                value = rng.normal(0.0, 0.3, shape)
            elif short == "moving_variance":
                value = rng.uniform(0.5, 2.5, shape)
            else:
                raise ValueError(f"unexpected weight {variable.path}")
            variable.assign(value.astype(np.float32))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def write_legacy_h5(model, path: str, weights_only: bool = False,
                    nested_variant_layers: Iterable[str] = (), config: Dict[str, Any] | None = None) -> None:
    """Write ``model`` as a TF 1.15 Keras HDF5 file (see the module docstring).

    Args:
        model: A Keras 3 model.
        path: Destination file.
        weights_only: Write the ``save_weights`` layout (no ``model_config``).
        nested_variant_layers: Layers whose weights go to ``<layer>/<layer>_1/``.
        config: A model config to store instead of :func:`legacy_model_config`.
    """
    nested = set(nested_variant_layers)
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = LEGACY_KERAS_VERSION
        handle.attrs["backend"] = b"tensorflow"
        if weights_only:
            root = handle
        else:
            stored = legacy_model_config(model) if config is None else config
            handle.attrs["model_config"] = json.dumps(stored, default=_json_default).encode("utf-8")
            handle.attrs["training_config"] = json.dumps({"loss": "binary_crossentropy"}).encode("utf-8")
            root = handle.create_group("model_weights")
            root.attrs["keras_version"] = LEGACY_KERAS_VERSION
            root.attrs["backend"] = b"tensorflow"
        root.attrs["layer_names"] = np.array([layer.name.encode("utf-8") for layer in model.layers])
        for layer in model.layers:
            group = root.create_group(layer.name)
            names = []
            for variable in layer.weights:
                short = variable.path.split("/")[-1]
                prefix = f"{layer.name}/{layer.name}_1" if layer.name in nested else layer.name
                name = f"{prefix}/{short}:0"
                group.create_dataset(name, data=np.asarray(variable.numpy()))
                names.append(name.encode("utf-8"))
            group.attrs["weight_names"] = np.array(names) if names else np.zeros((0,), dtype="float64")


def rename_layer_group(path: str, old: str, new: str) -> None:
    """Move a layer's group (and its ``layer_names`` entry) to another name, as a missing layer."""
    with h5py.File(path, "r+") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        root.move(old, new)
        names = [n.decode("utf-8") for n in root.attrs["layer_names"]]
        root.attrs["layer_names"] = np.array([(new if n == old else n).encode("utf-8") for n in names])


def delete_layer(path: str, name: str) -> None:
    """Remove a layer's weights from the file (the config keeps it)."""
    with h5py.File(path, "r+") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        del root[name]
        names = [n.decode("utf-8") for n in root.attrs["layer_names"] if n.decode("utf-8") != name]
        root.attrs["layer_names"] = np.array([n.encode("utf-8") for n in names])


def replace_weight(path: str, layer: str, short_name: str, value: np.ndarray) -> None:
    """Overwrite one weight dataset (any shape) of a layer."""
    with h5py.File(path, "r+") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        group = root[layer]
        for full in [n.decode("utf-8") for n in group.attrs["weight_names"]]:
            if full.split("/")[-1].split(":")[0] == short_name:
                del group[full]
                group.create_dataset(full, data=value)
                return
        raise KeyError(f"{layer} has no weight {short_name}")


def add_layer(path: str, name: str, weights: Dict[str, np.ndarray]) -> None:
    """Add a weighted layer group that the network does not have."""
    with h5py.File(path, "r+") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        group = root.create_group(name)
        names = []
        for short, value in weights.items():
            full = f"{name}/{short}:0"
            group.create_dataset(full, data=value)
            names.append(full.encode("utf-8"))
        group.attrs["weight_names"] = np.array(names)
        existing = list(root.attrs["layer_names"])
        root.attrs["layer_names"] = np.array(existing + [name.encode("utf-8")])


def read_model_config(path: str) -> Dict[str, Any]:
    """The ``model_config`` JSON of a file."""
    with h5py.File(path, "r") as handle:
        raw = handle.attrs["model_config"]
    return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)


def write_model_config(path: str, config: Dict[str, Any]) -> None:
    """Replace the ``model_config`` JSON of a file."""
    with h5py.File(path, "r+") as handle:
        handle.attrs["model_config"] = json.dumps(config, default=_json_default).encode("utf-8")
