"""Tile stores of training events: built once per event, combined at training time.

One event (pre image, post image, DEM, landslide inventory and optional areas
and cloud mask, see :class:`training.config.EventConfig`) becomes one folder
``<store_dir>/<event name>/`` (:mod:`training.tile_store`).

Every input is read through the inference core (:mod:`model`): the event's grid
is :func:`model.grid.build_grid` over pre, post and DEM at ``run.gsd_m``, images
and DEM are warped window by window with :class:`model.grid.WindowReader`
(bilinear), images are scaled with :func:`model.preprocess.image_for_spec` (the card's rule)
after :func:`model.preprocess.resolve_radiometry`, and the cloud mask is a
:class:`model.masks.PolygonMask` or :class:`model.masks.RasterMask`. So the
network is trained on exactly what the plugin feeds it.

Tiles
    ``run.tile_px`` square, on a lattice of stride
    ``round(tile_px * (1 - tile_overlap))`` starting at the grid's top-left
    pixel; only tiles lying wholly inside the grid are considered.

The training area, test area and validation rules are those of
:mod:`training.splits`; the store's layout is :mod:`training.tile_store`'s.

Valid pixels
    ``valid`` is 1 where pre, post and the DEM (centre pixel; hillshade and
    slope fill missing neighbours as the card's recipe does) have data, no
    cloud-mask pixel is set, and the pixel lies inside the tile's area (see
    above). Tiles with fewer than 50 % valid pixels are not stored. ``mask``
    is the rasterised inventory (pixel-centre rule) regardless of ``valid``.

Building streams tile by tile: each candidate tile is warped once and written
to a scratch memory map sized for all candidates; after the split is decided
the kept tiles are copied, in bounded chunks, into the final arrays (or the
scratch arrays are renamed when every candidate was kept). Everything is
built in ``<event>.partial/`` and renamed at the end, so an interrupted build
never looks complete; a failed build removes its partial folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from model.card import NORMALISATION_NONE, REFLECTANCE_SATURATION, ImageNormalisation
from model.errors import GridError, LandslideMapperError
from model.grid import Grid, RasterInput, WindowReader, build_grid
from model.input_checks import dem_metres_per_unit
from model.masks import PolygonMask, RasterMask
from model.preprocess import describe_normaliser, image_for_spec, measure_scene, resolve_radiometry
from model.terrain import HALO_PX
from model.vectors import vector_source

from .config import Config, EventConfig, RunConfig, VectorRef
from .splits import (
    _VALIDATION_CANDIDATE,
    AREA_INSIDE_FRACTION,
    _classify,
    _east_strip_boundary,
    _load_polygons,
    _rasterize,
    tile_stride,
)
from .tile_store import (
    PROVENANCE_FILE,
    SPLIT_TRAIN,
    SPLIT_VALIDATION,
    STORE_FORMAT,
    DatasetError,
    _is_complete_store,
    _read_provenance,
)

gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()

BUILDER_VERSION = 1
PARTIAL_SUFFIX = ".partial"
REPLACED_SUFFIX = ".replaced"

MIN_VALID_FRACTION = 0.5
"""Tiles with a smaller share of valid pixels are not stored."""

COPY_CHUNK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class EventTileSummary:
    """What one event's store holds.

    Attributes:
        event: Event name.
        path: The store folder.
        tiles_train: Tiles of the training split.
        tiles_validation: Tiles of the validation split.
        landslide_pixels: Valid landslide pixels over all stored tiles
            (pixels in overlapping tiles count once per tile).
        polygons_used: Inventory polygons on the grid.
        polygons_outside: Inventory polygons entirely outside the grid.
        polygons_repaired: Invalid inventory polygons that were repaired.
        built: False when the store already existed and was left as it was.
    """

    event: str
    path: str
    tiles_train: int
    tiles_validation: int
    landslide_pixels: int
    polygons_used: int
    polygons_outside: int
    polygons_repaired: int
    built: bool = True

    @classmethod
    def from_provenance(cls, provenance: Dict[str, Any], path: str, built: bool) -> "EventTileSummary":
        """The summary recorded in a store's ``provenance.json``."""
        counts = provenance["counts"]
        return cls(
            event=provenance["event"],
            path=path,
            tiles_train=counts["tiles_train"],
            tiles_validation=counts["tiles_validation"],
            landslide_pixels=counts["landslide_pixels"],
            polygons_used=counts["inventory_polygons_used"],
            polygons_outside=counts["inventory_polygons_outside"],
            polygons_repaired=counts["inventory_polygons_repaired"],
            built=built,
        )


# --------------------------------------------------------------------------- polygons


# --------------------------------------------------------------------------- sources


class _EventSources:
    """Window readers of one event on its grid (all through the inference core)."""

    def __init__(self, event: EventConfig, grid: Grid, normalisation: ImageNormalisation = ImageNormalisation()):
        self.normalisation = normalisation
        self.normalisers = {"pre": None, "post": None}
        self.pre = WindowReader(RasterInput(event.pre, tuple(event.pre_bands)), grid)
        self.post = WindowReader(RasterInput(event.post, tuple(event.post_bands)), grid)
        self.dem = WindowReader(RasterInput(event.dem, (event.dem_band,)), grid)
        self.dem_metres_per_unit = dem_metres_per_unit(RasterInput(event.dem, (event.dem_band,)))[0]
        self.radiometry = {
            "pre": resolve_radiometry(event.radiometry, self.pre.data_type),
            "post": resolve_radiometry(event.radiometry, self.post.data_type),
        }
        self.cloud = None
        self.cloud_kind = None
        if event.cloud_mask:
            polygons = vector_source(event.cloud_mask)
            if polygons is not None:
                self.cloud = PolygonMask(polygons, grid)
                self.cloud_kind = "polygons"
            else:
                self.cloud = RasterMask(RasterInput(event.cloud_mask), grid)
                self.cloud_kind = "raster"

    def read(self, row: int, col: int, size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(pre uint8 (T,T,3), post uint8 (T,T,3), dem float32 (T+2,T+2), valid bool (T,T))``."""
        pre = self.pre.read(row, col, size, size)
        post = self.post.read(row, col, size, size)
        dem = self.dem.read(row - HALO_PX, col - HALO_PX, size + 2 * HALO_PX, size + 2 * HALO_PX)[0]
        valid = (
            np.isfinite(pre).all(axis=0)
            & np.isfinite(post).all(axis=0)
            & np.isfinite(dem[HALO_PX:-HALO_PX, HALO_PX:-HALO_PX])
        )
        if self.cloud is not None:
            valid &= ~self.cloud.read(row, col, size, size)
        dem = dem * np.float32(self.dem_metres_per_unit)  # feet to metres, as the plugin does
        return self._to_uint8(pre, "pre"), self._to_uint8(post, "post"), dem.astype(np.float32), valid

    def measure_scene(self, grid: Grid, log: Callable[[str], None]) -> None:
        """The plugin's scene normalisation over the event's whole grid (cloud mask excluded), when asked for."""
        if self.normalisation.method == NORMALISATION_NONE:
            return

        def read_window(row, col, rows, cols):
            masked = np.zeros((rows, cols), dtype=bool) if self.cloud is None else self.cloud.read(row, col, rows, cols)
            return self.pre.read(row, col, rows, cols), self.post.read(row, col, rows, cols), masked

        self.normalisers, valid = measure_scene(read_window, grid.height_px, grid.width_px, self.radiometry,
                                                self.normalisation)
        for which, label in (("pre", "pre-event image"), ("post", "post-event image")):
            log(describe_normaliser(label, self.normalisers[which], valid[which]))

    def _to_uint8(self, values: np.ndarray, which: str) -> np.ndarray:
        scaled = image_for_spec(np.nan_to_num(values, nan=0.0), self.radiometry[which], self.normalisation,
                                REFLECTANCE_SATURATION, self.normalisers[which])
        return np.moveaxis(np.rint(scaled).astype(np.uint8), 0, -1)


# --------------------------------------------------------------------------- helpers


def _check_run(run: RunConfig) -> None:
    if int(run.tile_px) < 3:
        raise DatasetError(f"tile_px must be at least 3; got {run.tile_px}.")
    if not 0.0 <= float(run.tile_overlap) < 1.0:
        raise DatasetError(f"tile_overlap must be in [0, 1); got {run.tile_overlap}.")
    if not float(run.gsd_m) > 0:
        raise DatasetError(f"gsd_m must be positive; got {run.gsd_m}.")
    if not 0.0 <= float(run.validation_fraction) < 1.0:
        raise DatasetError(f"validation_fraction must be in [0, 1); got {run.validation_fraction}.")


def _check_name(name: str) -> None:
    if (not name or name in (".", "..") or os.sep in name or "/" in name
            or name.endswith(PARTIAL_SUFFIX) or name.endswith(REPLACED_SUFFIX)):
        raise DatasetError(f"Event name '{name}' cannot be a folder name; use letters, digits, '_' or '-'.")


def _ref_json(ref: Optional[VectorRef]) -> Optional[Dict[str, Optional[str]]]:
    return None if ref is None else {"path": ref.path, "layer": ref.layer}


def _settings(event: EventConfig, run: RunConfig) -> Dict[str, Any]:
    """What a store depends on; a store built with other settings is stale."""
    return {
        "sources": {
            "pre": event.pre,
            "post": event.post,
            "dem": event.dem,
            "pre_bands": list(event.pre_bands),
            "post_bands": list(event.post_bands),
            "dem_band": event.dem_band,
            "radiometry": event.radiometry,
            "inventory": _ref_json(event.inventory),
            "train_area": _ref_json(event.train_area),
            "validation_area": _ref_json(event.validation_area),
            "test_area": _ref_json(event.test_area),
            "cloud_mask": event.cloud_mask,
        },
        "gsd_m": float(run.gsd_m),
        "tile_px": int(run.tile_px),
        "tile_overlap": float(run.tile_overlap),
        "stride": tile_stride(run),
        "validation_fraction": float(run.validation_fraction),
        "reflectance_saturation": float(REFLECTANCE_SATURATION),
        "image_normalisation": run.image_normalisation,
        "dem_metres_per_unit": dem_metres_per_unit(RasterInput(event.dem, (event.dem_band,)))[0],
    }


# --------------------------------------------------------------------------- building


def build_event_tiles(
    event: EventConfig,
    run: RunConfig,
    store_dir: str,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> EventTileSummary:
    """Build the tile store of one event in ``<store_dir>/<event.name>/``.

    Raises:
        DatasetError: The store exists and ``overwrite`` is False; the inputs do
            not overlap; the inventory holds no polygon; no tile can be kept;
            any input cannot be read (the message names the event and file).
    """
    _check_run(run)
    _check_name(event.name)
    final_dir = os.path.join(store_dir, event.name)
    if os.path.exists(final_dir) and not overwrite:
        raise DatasetError(
            f"Event '{event.name}': the tile store {final_dir} exists; pass overwrite=True / --overwrite to rebuild it."
        )
    os.makedirs(store_dir, exist_ok=True)
    partial_dir = final_dir + PARTIAL_SUFFIX
    shutil.rmtree(partial_dir, ignore_errors=True)  # left by a build that was killed
    os.makedirs(partial_dir)
    try:
        provenance = _build_into(event, run, partial_dir, log)
        _replace_dir(partial_dir, final_dir)
    except LandslideMapperError as exc:
        shutil.rmtree(partial_dir, ignore_errors=True)
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"Event '{event.name}': {exc}") from exc
    except BaseException:
        shutil.rmtree(partial_dir, ignore_errors=True)
        raise
    counts = provenance["counts"]
    log(
        f"{event.name}: {counts['tiles_train']} training and {counts['tiles_validation']} validation tiles "
        f"written to {final_dir}."
    )
    return EventTileSummary.from_provenance(provenance, final_dir, built=True)


def _replace_dir(partial_dir: str, final_dir: str) -> None:
    """Move the finished build to its final name, replacing an older store."""
    replaced = final_dir + REPLACED_SUFFIX
    if os.path.exists(final_dir):
        shutil.rmtree(replaced, ignore_errors=True)
        os.rename(final_dir, replaced)
    os.rename(partial_dir, final_dir)
    shutil.rmtree(replaced, ignore_errors=True)


def _make_grid(event: EventConfig, run: RunConfig) -> Grid:
    rasters = [("the pre-event image", event.pre), ("the post-event image", event.post), ("the DEM", event.dem)]
    try:
        return build_grid(rasters, event.post, float(run.gsd_m))
    except GridError as exc:
        raise DatasetError(
            f"Event '{event.name}': {exc} (pre {event.pre}, post {event.post}, DEM {event.dem})"
        ) from exc


def _build_into(event: EventConfig, run: RunConfig, folder: str, log: Callable[[str], None]) -> Dict[str, Any]:
    name = event.name
    tile_px = int(run.tile_px)
    stride = tile_stride(run)
    for label, bands in (("pre_bands", event.pre_bands), ("post_bands", event.post_bands)):
        if len(bands) != 3:
            raise DatasetError(f"Event '{name}': {label} must list 3 bands (R, G, B); got {list(bands)}.")

    grid = _make_grid(event, run)
    log(f"{name}: grid {grid.width_px} x {grid.height_px} px at {grid.gsd_m:g} m ({grid.area_km2:.2f} km²).")
    sources = _EventSources(event, grid, ImageNormalisation(method=run.image_normalisation))
    log(f"{name}: image values read as pre {sources.radiometry['pre']}, post {sources.radiometry['post']}.")
    sources.measure_scene(grid, lambda message: log(f"{name}: {message}"))

    inventory = _load_polygons(event.inventory, grid, name, "inventory")
    if inventory.repaired:
        log(f"{name}: repaired {inventory.repaired} invalid inventory polygon(s).")
    if inventory.outside:
        log(f"{name}: {inventory.outside} of {inventory.total} inventory polygon(s) lie entirely outside the grid "
            f"and are ignored.")
    if inventory.skipped:
        log(f"{name}: ignored {inventory.skipped} inventory feature(s) without polygon geometry.")
    if inventory.used == 0:
        raise DatasetError(
            f"Event '{name}': none of the {inventory.total} polygon(s) of the inventory {inventory.where} lies on the "
            f"grid of the images; check the inventory's coordinate reference system."
        )
    areas = {
        key: _load_polygons(ref, grid, name, key.replace("_", " "))
        for key, ref in (("train_area", event.train_area), ("validation_area", event.validation_area),
                         ("test_area", event.test_area))
        if ref is not None
    }

    # Pass 1, geometry only: which lattice tiles may be training or validation tiles.
    dropped = {"outside_training_area": 0, "test_area": 0, "validation_area_border": 0,
               "too_few_valid_pixels": 0, "validation_gap": 0}
    rows = list(range(0, grid.height_px - tile_px + 1, stride))
    cols = list(range(0, grid.width_px - tile_px + 1, stride))
    candidates: List[Tuple[int, int, int]] = []
    for row in rows:
        for col in cols:
            kind = _classify(areas, grid, row, col, tile_px, dropped)
            if kind is not None:
                candidates.append((row, col, kind))
    lattice = len(rows) * len(cols)
    if not candidates:
        raise DatasetError(f"Event '{name}': no tile of {tile_px} px can be kept ({_drop_text(lattice, dropped)}).")
    log(f"{name}: {len(candidates)} of {lattice} tiles lie in the training/validation areas; reading them.")

    # Pass 2: read each candidate once into scratch memory maps.
    capacity = len(candidates)
    shapes = {
        "pre": ((capacity, tile_px, tile_px, 3), np.uint8),
        "post": ((capacity, tile_px, tile_px, 3), np.uint8),
        "dem": ((capacity, tile_px + 2 * HALO_PX, tile_px + 2 * HALO_PX), np.float32),
        "mask": ((capacity, tile_px, tile_px), np.uint8),
        "valid": ((capacity, tile_px, tile_px), np.uint8),
    }
    scratch = {key: np.lib.format.open_memmap(os.path.join(folder, f"_scratch_{key}.npy"), mode="w+", dtype=dtype,
                                               shape=shape) for key, (shape, dtype) in shapes.items()}
    slots: List[Tuple[int, int, int]] = []  # (row, col, kind) of each written slot
    landslide_pixels: List[int] = []
    every = max(1, capacity // 10)
    for done, (row, col, kind) in enumerate(candidates, start=1):
        pre, post, dem, valid = sources.read(row, col, tile_px)
        area_key = "validation_area" if kind == _VALIDATION_CANDIDATE else "train_area"
        if area_key in areas:
            valid &= _rasterize(areas[area_key], grid, row, col, tile_px)
        if valid.mean() < MIN_VALID_FRACTION:
            dropped["too_few_valid_pixels"] += 1
        else:
            mask = _rasterize(inventory, grid, row, col, tile_px)
            slot = len(slots)
            scratch["pre"][slot] = pre
            scratch["post"][slot] = post
            scratch["dem"][slot] = dem
            scratch["mask"][slot] = mask
            scratch["valid"][slot] = valid
            slots.append((row, col, kind))
            landslide_pixels.append(int(np.count_nonzero(mask & valid)))
        if done % every == 0 or done == capacity:
            log(f"{name}: read {done} of {capacity} tiles, {len(slots)} kept.")
    if not slots:
        raise DatasetError(f"Event '{name}': no tile of {tile_px} px can be kept ({_drop_text(lattice, dropped)}).")

    # The split.
    origins = np.array([(r, c) for r, c, _ in slots], dtype=np.int32).reshape(-1, 2)
    kinds = np.array([k for _, _, k in slots], dtype=np.uint8)
    split = kinds.copy()
    keep = np.ones(len(slots), dtype=bool)
    if "validation_area" in areas:
        split_rule = {"rule": "validation_area", "area_inside_fraction": AREA_INSIDE_FRACTION}
        if not np.any(split == SPLIT_VALIDATION):
            log(f"{name}: no tile lies inside the validation area {areas['validation_area'].where}; "
                "the event has no validation tiles.")
    else:
        boundary = _east_strip_boundary(origins[:, 1], tile_px, float(run.validation_fraction))
        split_rule = {"rule": "east_strip", "boundary_col_px": boundary,
                      "validation_fraction_asked": float(run.validation_fraction)}
        if boundary is None:
            split[:] = SPLIT_TRAIN
            if run.validation_fraction > 0:
                log(f"{name}: the kept tiles cannot be split into an east validation strip; all are training tiles.")
        else:
            split = np.where(origins[:, 1] >= boundary, SPLIT_VALIDATION, SPLIT_TRAIN).astype(np.uint8)
            keep = (origins[:, 1] >= boundary) | (origins[:, 1] + tile_px <= boundary)
            dropped["validation_gap"] = int(np.count_nonzero(~keep))
    chosen = np.flatnonzero(keep)
    pixels = np.asarray(landslide_pixels, dtype=np.int64)[chosen]
    split = split[chosen]
    origins = origins[chosen]

    _finish_arrays(folder, scratch, shapes, chosen, capacity)
    np.save(os.path.join(folder, "split.npy"), split)
    np.save(os.path.join(folder, "origins.npy"), origins)

    n = int(chosen.size)
    settings = _settings(event, run)
    is_val = split == SPLIT_VALIDATION
    counts = {
        "tiles": n,
        "tiles_train": int(np.count_nonzero(~is_val)),
        "tiles_validation": int(np.count_nonzero(is_val)),
        "tiles_lattice": lattice,
        "tiles_dropped": dropped,
        "landslide_pixels": int(pixels.sum()),
        "landslide_pixels_train": int(pixels[~is_val].sum()),
        "landslide_pixels_validation": int(pixels[is_val].sum()),
        "inventory_polygons": inventory.total,
        "inventory_polygons_used": inventory.used,
        "inventory_polygons_outside": inventory.outside,
        "inventory_polygons_repaired": inventory.repaired,
        "inventory_features_skipped": inventory.skipped,
    }
    provenance = {
        "format": STORE_FORMAT,
        "builder_version": BUILDER_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "event": name,
        "sources": settings["sources"],
        "settings": settings,
        "radiometry_resolved": dict(sources.radiometry),
        "cloud_mask_kind": sources.cloud_kind,
        "grid": {
            "crs_wkt": grid.crs_wkt,
            "geotransform": list(grid.geotransform),
            "width": grid.width_px,
            "height": grid.height_px,
            "gsd_m": grid.gsd_m,
        },
        "tile_px": tile_px,
        "stride": stride,
        "dem_halo_px": HALO_PX,
        "split_rule": split_rule,
        "area_inside_fraction": AREA_INSIDE_FRACTION,
        "min_valid_fraction": MIN_VALID_FRACTION,
        "splits": {"train": SPLIT_TRAIN, "validation": SPLIT_VALIDATION},
        "counts": counts,
        "arrays": {
            "pre": [[n, tile_px, tile_px, 3], "uint8"],
            "post": [[n, tile_px, tile_px, 3], "uint8"],
            "dem": [[n, tile_px + 2 * HALO_PX, tile_px + 2 * HALO_PX], "float32"],
            "mask": [[n, tile_px, tile_px], "uint8"],
            "valid": [[n, tile_px, tile_px], "uint8"],
            "split": [[n], "uint8"],
            "origins": [[n, 2], "int32"],
        },
    }
    with open(os.path.join(folder, PROVENANCE_FILE), "w", encoding="utf-8") as handle:
        json.dump(provenance, handle, indent=1, sort_keys=True)
    return provenance


def _drop_text(lattice: int, dropped: Dict[str, int]) -> str:
    parts = [f"{count} {reason.replace('_', ' ')}" for reason, count in dropped.items() if count]
    return f"{lattice} tile(s) on the grid" + (": " + ", ".join(parts) if parts else "; the grid is smaller than a tile")


def _finish_arrays(folder: str, scratch: Dict[str, np.memmap], shapes, chosen: np.ndarray, capacity: int) -> None:
    """Final arrays holding the chosen scratch slots, in order; the scratch files go."""
    identity = chosen.size == capacity
    for key in list(scratch):
        array = scratch.pop(key)
        scratch_path = os.path.join(folder, f"_scratch_{key}.npy")
        final_path = os.path.join(folder, f"{key}.npy")
        array.flush()
        if identity:
            del array
            os.replace(scratch_path, final_path)
            continue
        shape, dtype = shapes[key]
        final = np.lib.format.open_memmap(final_path, mode="w+", dtype=dtype, shape=(chosen.size,) + shape[1:])
        per_tile = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
        chunk = max(1, COPY_CHUNK_BYTES // max(1, per_tile))
        for start in range(0, chosen.size, chunk):
            final[start : start + chunk] = array[chosen[start : start + chunk]]
        final.flush()
        del final, array
        os.remove(scratch_path)


def build_dataset(
    config: Config,
    store_dir: str,
    overwrite: bool = False,
    only: Optional[Iterable[str]] = None,
    log: Callable[[str], None] = print,
) -> List[EventTileSummary]:
    """Build the store of every event of ``config`` (or of the ``only`` ones).

    Events whose store exists are left untouched unless ``overwrite``, so adding
    an event to a configuration builds that event only.

    Raises:
        DatasetError: An ``only`` name is not an event of the configuration, an
            existing store was built with other settings (rebuild it with
            ``overwrite``), or an event cannot be built.
    """
    events = list(config.events)
    if only is not None:
        wanted = list(only)
        known = {e.name for e in events}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise DatasetError(f"Unknown event(s) {unknown}; the configuration has {sorted(known)}.")
        events = [e for e in events if e.name in set(wanted)]
    if not events:
        raise DatasetError("The configuration lists no event to build.")
    summaries = []
    for event in events:
        _check_name(event.name)
        folder = os.path.join(store_dir, event.name)
        if os.path.exists(folder) and not overwrite:
            provenance = _read_provenance(folder) if _is_complete_store(folder, event.name) else None
            if provenance is None:
                raise DatasetError(
                    f"Event '{event.name}': {folder} exists but is not a complete tile store; "
                    "pass overwrite=True / --overwrite to rebuild it."
                )
            stored = dict(provenance.get("settings", {}))
            stored.setdefault("image_normalisation", "none")       # stores built before the setting existed
            stored.setdefault("dem_metres_per_unit", 1.0)
            differences = _differences(stored, _settings(event, config.run))
            if differences:
                raise DatasetError(
                    f"Event '{event.name}': the tile store {folder} was built with other settings "
                    f"({'; '.join(differences)}); pass overwrite=True / --overwrite to rebuild it."
                )
            log(f"{event.name}: already built in {folder}; left as it is.")
            summaries.append(EventTileSummary.from_provenance(provenance, folder, built=False))
            continue
        summaries.append(build_event_tiles(event, config.run, store_dir, overwrite=overwrite, log=log))
    return summaries


def _differences(stored: Dict[str, Any], current: Dict[str, Any], prefix: str = "") -> List[str]:
    out = []
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: stored {a!r}, now {b!r}")
    return out


# --------------------------------------------------------------------------- reading


