"""A tiny labelled event on disk and a TOML config for training tests."""

from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np
from osgeo import gdal

from tests.helpers.scenes import write_polygons, write_raster

GSD_M = 10.0
EPSG = 32633


def write_labelled_event(folder: str, seed: int, rows: int = 192, cols: int = 192,
                         origin: Tuple[float, float] = (500000.0, 5200000.0)) -> dict:
    """Pre/post 8-bit RGB, DEM and an inventory of bright bare-soil patches that appear after the event."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    y, x = np.mgrid[0:rows, 0:cols]
    vegetation = np.stack([60 + 10 * np.sin(x / 7.0), 110 + 15 * np.cos(y / 9.0), 50 + 0 * x]).astype(float)
    pre = np.clip(vegetation + rng.normal(0, 6, vegetation.shape), 0, 255)
    post = pre.copy()
    slides: List[Tuple[int, int, int, int]] = []
    for _ in range(6):
        h, w = rng.integers(6, 20, 2)
        r, c = rng.integers(0, rows - h), rng.integers(0, cols - w)
        slides.append((int(r), int(c), int(h), int(w)))
        post[:, r:r + h, c:c + w] = np.array([170, 150, 120])[:, None, None] + rng.normal(0, 6, (3, h, w))
    dem = (300 + 2.0 * x + 40 * np.sin(y / 15.0)).astype(np.float32)
    gt = (origin[0], GSD_M, 0.0, origin[1], 0.0, -GSD_M)
    paths = {
        "pre": write_raster(os.path.join(folder, "pre.tif"), np.clip(pre, 0, 255).astype(np.uint8), gt, EPSG),
        "post": write_raster(os.path.join(folder, "post.tif"), np.clip(post, 0, 255).astype(np.uint8), gt, EPSG),
        "dem": write_raster(os.path.join(folder, "dem.tif"), dem, gt, EPSG, gdal.GDT_Float32, nodata=-9999),
    }
    boxes = []
    for r, c, h, w in slides:
        x0, y1 = origin[0] + c * GSD_M, origin[1] - r * GSD_M
        x1, y0 = x0 + w * GSD_M, y1 - h * GSD_M
        boxes.append(f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))")
    paths["inventory"] = write_polygons(os.path.join(folder, "inventory.gpkg"), boxes, EPSG)
    paths["slides"] = slides
    return paths


def write_config(path: str, output_dir: str, events: dict, **run) -> str:
    """A TOML config with ``events`` = {name: paths from write_labelled_event}."""
    settings = {"output_dir": output_dir, "gsd_m": GSD_M, "tile_px": 64, "width": 0.125, "batch_size": 2,
                "epochs": 2, "steps_per_epoch": 2, "seed": 7, "context_px": 8, "validation_fraction": 0.25}
    settings.update(run)
    lines = ["[run]"] + [f"{k} = {_toml(v)}" for k, v in settings.items()]
    for name, paths in events.items():
        lines += ["", "[[events]]", f'name = "{name}"'] + [
            f'{key} = "{paths[key]}"' for key in ("pre", "post", "dem", "inventory")]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
