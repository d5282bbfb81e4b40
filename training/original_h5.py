"""Read the authors' Keras 2 HDF5 file with h5py (no TF 1.x Keras needed), and check it is the published one.

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
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from model.errors import LandslideMapperError

PUBLISHED_FILE_NAME = "M_ALL_006.hdf5"
PUBLISHED_SIZE_BYTES = 250_991_304
PUBLISHED_SHA256 = "24b81b52411917bb8b69dc87b994478a4ddbdce92c4f5c42e6b4061a763b6a3b"


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
