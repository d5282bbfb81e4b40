"""Tile stores of training events, read as one dataset.

One event (pre image, post image, DEM, landslide inventory and optional areas
and cloud mask, see :class:`training.config.EventConfig`) becomes one folder
``<store_dir>/<event name>/`` of memory-mappable ``.npy`` arrays and a
``provenance.json``. Combining events is listing folders (:class:`TileStore`):
adding an event builds only its own folder.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from model.errors import LandslideMapperError

STORE_FORMAT = "landslide-mapper-tiles"
PROVENANCE_FILE = "provenance.json"
SPLIT_TRAIN = 0
SPLIT_VALIDATION = 1
SPLIT_NAMES = {"train": SPLIT_TRAIN, "validation": SPLIT_VALIDATION}
ARRAY_NAMES = ("pre", "post", "dem", "mask", "valid", "split", "origins")


class DatasetError(LandslideMapperError):
    """A tile store cannot be built or opened; the message names the event and file."""


def _read_provenance(folder: str) -> Optional[Dict[str, Any]]:
    path = os.path.join(folder, PROVENANCE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, "r", encoding="utf-8") as handle:
        return json.load(handle)


def _is_complete_store(folder: str, name: str) -> bool:
    try:
        provenance = _read_provenance(folder)
    except (OSError, ValueError):
        return False
    return bool(provenance) and provenance.get("format") == STORE_FORMAT and provenance.get("event") == name


class TileStore:
    """One or several events' stores, memory-mapped read-only, as one dataset.

    Global indices run over the events in order (``events``), each event's tiles
    in stored order (row-major by tile origin).

    Args:
        store_dir: Folder holding one sub-folder per event.
        event_names: Events to combine; None takes every complete store in
            ``store_dir`` (sorted by name). Partial builds are never listed.

    Raises:
        DatasetError: A listed event has no complete store, a store is
            inconsistent, or the events differ in tile size or resolution.
    """

    def __init__(self, store_dir: str, event_names: Optional[Sequence[str]] = None):
        self.store_dir = store_dir
        if event_names is None:
            names = sorted(
                entry for entry in (os.listdir(store_dir) if os.path.isdir(store_dir) else [])
                if _is_complete_store(os.path.join(store_dir, entry), entry)
            )
            if not names:
                raise DatasetError(f"No complete tile store in {store_dir}; build the events first.")
        else:
            names = list(event_names)
            if not names:
                raise DatasetError("TileStore needs at least one event name.")
            if len(set(names)) != len(names):
                raise DatasetError(f"Event names repeat in {names}.")
        self.events: List[str] = names
        self.provenance: Dict[str, Dict[str, Any]] = {}
        self._arrays: Dict[str, Dict[str, np.ndarray]] = {}
        sizes = []
        for name in names:
            folder = os.path.join(store_dir, name)
            if not _is_complete_store(folder, name):
                raise DatasetError(f"Event '{name}' has no complete tile store in {store_dir}; build it first.")
            provenance = _read_provenance(folder)
            self.provenance[name] = provenance
            arrays = {}
            for key in ARRAY_NAMES:
                path = os.path.join(folder, f"{key}.npy")
                try:
                    arrays[key] = np.load(path, mmap_mode="r")
                except (OSError, ValueError) as exc:
                    raise DatasetError(f"Event '{name}': cannot read {path}: {exc}") from exc
                shape, dtype = provenance["arrays"][key]
                if list(arrays[key].shape) != list(shape) or arrays[key].dtype != np.dtype(dtype):
                    raise DatasetError(
                        f"Event '{name}': {path} is {arrays[key].shape} {arrays[key].dtype}, "
                        f"provenance says {tuple(shape)} {dtype}; rebuild the event."
                    )
            self._arrays[name] = arrays
            sizes.append(int(arrays["split"].shape[0]))
        for key in ("tile_px",):
            values = {name: self.provenance[name][key] for name in names}
            if len(set(values.values())) > 1:
                raise DatasetError(f"The events differ in {key}: {values}; rebuild them with one setting.")
        normalisations = {name: self.provenance[name].get("settings", {}).get("image_normalisation", "none")
                          for name in names}
        if len(set(normalisations.values())) > 1:
            raise DatasetError(f"The events differ in image normalisation: {normalisations}; rebuild them with one "
                               "[run] image_normalisation.")
        self.image_normalisation: str = next(iter(normalisations.values()), "none")
        gsds = {name: self.provenance[name]["grid"]["gsd_m"] for name in names}
        if len(set(gsds.values())) > 1:
            raise DatasetError(f"The events differ in ground resolution: {gsds}; rebuild them with one gsd_m.")
        self.tile_px: int = int(self.provenance[names[0]]["tile_px"])
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._splits = np.concatenate([np.asarray(self._arrays[n]["split"]) for n in names])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def indices(self, split: Union[str, int, None] = None) -> np.ndarray:
        """Global indices of the ``"train"`` (0) or ``"validation"`` (1) tiles; None: all."""
        if split is None:
            return np.arange(len(self), dtype=np.int64)
        code = SPLIT_NAMES.get(split, split) if isinstance(split, str) else split
        if code not in (SPLIT_TRAIN, SPLIT_VALIDATION):
            raise DatasetError(f"Unknown split {split!r}; use 'train' or 'validation'.")
        return np.flatnonzero(self._splits == code).astype(np.int64)

    def locate(self, index: int) -> Tuple[str, int]:
        """``(event name, index within the event)`` of a global index."""
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"Tile {index} out of range; the store has {len(self)} tiles.")
        position = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return self.events[position], index - int(self._offsets[position])

    def sample(self, index: int) -> Dict[str, Any]:
        """One tile: ``pre``/``post`` (T,T,3) uint8, ``dem`` (T+2,T+2) float32,
        ``mask``/``valid`` (T,T) uint8, ``split``, ``event`` and ``origin`` (row, col)."""
        name, local = self.locate(index)
        arrays = self._arrays[name]
        return {
            "pre": np.array(arrays["pre"][local]),
            "post": np.array(arrays["post"][local]),
            "dem": np.array(arrays["dem"][local]),
            "mask": np.array(arrays["mask"][local]),
            "valid": np.array(arrays["valid"][local]),
            "split": int(arrays["split"][local]),
            "event": name,
            "origin": (int(arrays["origins"][local, 0]), int(arrays["origins"][local, 1])),
        }
