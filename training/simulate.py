"""Simulated landslide events: the labelled data the project can generate itself.

No labelled pre/post landslide imagery can be reached from the machines this
project is built on, so the default model is trained on events written by
:func:`simulate_event`. An event is written as a user would have it::

    <folder>/pre.tif          pre-event RGB (Byte composite or UInt16 L2A reflectance)
    <folder>/post.tif         post-event RGB, same encoding
    <folder>/dem.tif          Float32 DEM at twice the image pixel size, on its own grid
    <folder>/inventory.gpkg   event landslide polygons (layer ``landslides``)
    <folder>/clouds.gpkg      cloud/snow mask polygons of either date (layer ``clouds``)
    <folder>/areas.gpkg       layers ``train`` (northern 75 % of the scene) and ``test`` (southern 25 %)
    <folder>/event.json       style, seed, encoding and what was drawn

in a real UTM CRS, reproducible from ``(style, seed, size, gsd, radiometry)``.

What is drawn, in order (every amount comes from the :class:`Style` and the seed):

* terrain: spectral (1/f) noise, optional flattened plains or plateau tops,
  river valleys carved along meandering channels, then scaled so that the
  90th percentile of slope matches the style (hills to steep mountains);
* land cover with texture: forest (crown texture), grass and meadows, parcels
  of fields on gentle ground, bare rock and snow high up, rivers, roads and
  settlements;
* event landslides (post image only, and the inventory): sources on steep
  slopes, sizes from a truncated power law between 100 m2 and 0.5 km2,
  clustered and isolated, with runout following the steepest descent; a
  bright scarp and a soil/debris body that remove the vegetation;
* look-alikes and changes that are not event landslides: old scars in both
  images (partly revegetated), clear-cuts on gentle ground and harvested
  fields, river widening with sand bars, a new road, seasonal colour, a
  different sun position per date (topographic shading), haze and
  radiometric gain per date, fresh snow, clouds with their (unmasked)
  shadows and thin edges, sensor noise, a sub-pixel misregistration of the
  post image, and sometimes a no-data wedge (a swath edge) in one date.

Reflectance is simulated in Sentinel-2 true-colour terms (B4, B3, B2) and
encoded either as L2A UInt16 (reflectance x 10000, optionally with the +1000
offset of processing baseline 04.00) or as an 8-bit composite stretched per
date, as analysts export them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from .simulate_scene import Scene
from .simulate_styles import ENCODINGS, STYLES

gdal.UseExceptions()


@dataclass
class SimulatedEvent:
    """Where an event was written and what it contains."""

    folder: str
    pre: str
    post: str
    dem: str
    inventory: str
    clouds: str
    style: str
    seed: int
    radiometry: str
    landslides: int
    landslide_area_m2: float
    details: Dict[str, object] = field(default_factory=dict)


# ----------------------------------------------------------------------------- writing

def _srs(epsg: int) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _write_tif(path: str, array: np.ndarray, geotransform, srs: osr.SpatialReference, data_type: int,
               nodata: Optional[float]) -> str:
    array = array if array.ndim == 3 else array[None]
    dataset = gdal.GetDriverByName("GTiff").Create(path, array.shape[2], array.shape[1], array.shape[0], data_type,
                                                   ["COMPRESS=DEFLATE", "TILED=YES"])
    dataset.SetGeoTransform(tuple(geotransform))
    dataset.SetProjection(srs.ExportToWkt())
    for index, values in enumerate(array, start=1):
        band = dataset.GetRasterBand(index)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band.WriteArray(values)
        if array.shape[0] == 3:
            band.SetColorInterpretation((gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand)[index - 1])
    dataset.FlushCache()
    dataset = None
    return path


def _write_mask_polygons(path: str, layer_name: str, mask: np.ndarray, geotransform, srs) -> int:
    """Polygonise a bool mask into a GeoPackage layer; returns the number of polygons."""
    memory = gdal.GetDriverByName("MEM").Create("", mask.shape[1], mask.shape[0], 1, gdal.GDT_Byte)
    memory.SetGeoTransform(tuple(geotransform))
    memory.SetProjection(srs.ExportToWkt())
    band = memory.GetRasterBand(1)
    band.WriteArray(mask.astype(np.uint8))
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = source.CreateLayer(layer_name, srs=srs, geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    gdal.Polygonize(band, band, layer, 0)
    layer.CreateField(ogr.FieldDefn("area_m2", ogr.OFTReal))
    layer.ResetReading()
    features = [f for f in layer]
    for feature in features:
        feature.SetField("area_m2", feature.GetGeometryRef().GetArea())
        layer.SetFeature(feature)
    count = layer.GetFeatureCount()
    source = None
    memory = None
    return count


def _write_areas(path: str, size_px: int, geotransform, srs) -> None:
    """Layers ``train`` (the northern 75 % of the scene, whole pixel rows) and ``test`` (the rest)."""
    x0, gsd, _, y0, _, _ = geotransform
    x1, split_y, y1 = x0 + size_px * gsd, y0 - int(round(size_px * 0.75)) * gsd, y0 - size_px * gsd
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    for name, (top, bottom) in (("train", (y0, split_y)), ("test", (split_y, y1))):
        # one rectangle per layer needs no spatial index (whose deferred creation can fail on closing)
        layer = source.CreateLayer(name, srs=srs, geom_type=ogr.wkbPolygon, options=["SPATIAL_INDEX=NO"])
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(
            f"POLYGON(({x0} {bottom},{x1} {bottom},{x1} {top},{x0} {top},{x0} {bottom}))"))
        layer.CreateFeature(feature)
    source = None


def _encode(reflectance: np.ndarray, valid: np.ndarray, radiometry: str, rng: np.random.Generator
            ) -> Tuple[np.ndarray, int, float]:
    """Encoded image, its GDAL type and nodata value."""
    if radiometry == "8bit":
        # an analyst's composite: a per-date linear stretch, slightly different each time
        top = rng.uniform(0.14, 0.32)  # reflectance shown as white; clouds and snow saturate
        values = np.clip(np.round(reflectance / top * 254.0) + 1, 1, 255).astype(np.uint8)
        values[:, ~valid] = 0
        return values, gdal.GDT_Byte, 0
    offset = 1000.0 if radiometry == "s2_l2a_offset" else 0.0
    values = np.clip(np.round(reflectance * 10000.0 + offset), 1, 65535).astype(np.uint16)
    values[:, ~valid] = 0
    return values, gdal.GDT_UInt16, 0


def simulate_event(folder: str, style: Optional[str], seed: int, size_px: int = 768, gsd_m: float = 10.0,
                   radiometry: str = "8bit", overwrite: bool = False, family: Optional[str] = None) -> SimulatedEvent:
    """Write one simulated event to ``folder`` (see the module docstring); reproducible by its arguments.

    With ``family`` (see :mod:`training.simulate_families`) the event's style and
    look are drawn from the family instead of a fixed ``style``.
    """
    if family is not None:
        from .simulate_families import FAMILIES, RandomisedScene

        if family not in FAMILIES:
            raise ValueError(f"Unknown family '{family}'; known: {', '.join(FAMILIES)}.")
        scene = RandomisedScene(FAMILIES[family], seed, size_px, gsd_m)
        style = family
    elif style not in STYLES:
        raise ValueError(f"Unknown style '{style}'; known: {', '.join(STYLES)}.")
    if radiometry not in ENCODINGS:
        raise ValueError(f"Unknown radiometry '{radiometry}'; use one of {', '.join(ENCODINGS)}.")
    if size_px < 64:
        raise ValueError("size_px must be at least 64.")
    if os.path.exists(folder):
        if not overwrite:
            raise FileExistsError(f"{folder} exists; pass overwrite=True to replace it.")
        shutil.rmtree(folder)
    if family is None:
        scene = Scene(STYLES[style], seed, size_px, gsd_m)
    spec = scene.style
    layers = scene.render()
    rng = np.random.default_rng([seed, 1])
    srs = _srs(spec.epsg)
    north = spec.epsg < 32700
    x0 = round(rng.uniform(300000, 700000 - size_px * gsd_m) / gsd_m) * gsd_m
    y0 = round(rng.uniform(2000000, 6000000) if north else rng.uniform(5000000, 9000000))
    y0 = round(y0 / gsd_m) * gsd_m
    geotransform = (x0, gsd_m, 0.0, y0, 0.0, -gsd_m)

    partial = folder.rstrip("/") + ".partial"
    if os.path.exists(partial):
        shutil.rmtree(partial)
    os.makedirs(partial)
    paths = {name: os.path.join(partial, f"{name}.tif") for name in ("pre", "post", "dem")}
    for name in ("pre", "post"):
        values, data_type, nodata = _encode(layers[name], layers[f"{name}_valid"], radiometry, rng)
        _write_tif(paths[name], values, geotransform, srs, data_type, nodata)
    # the DEM on its own, coarser grid (twice the pixel size, shifted by half an image pixel)
    factor = 2
    rows = size_px // factor
    dem = scene.dem[: rows * factor, : rows * factor].reshape(rows, factor, rows, factor).mean((1, 3))
    dem_gt = (x0 - gsd_m / 2, gsd_m * factor, 0.0, y0 + gsd_m / 2, 0.0, -gsd_m * factor)
    _write_tif(paths["dem"], dem.astype(np.float32), dem_gt, srs, gdal.GDT_Float32, -9999.0)
    inventory_count = _write_mask_polygons(os.path.join(partial, "inventory.gpkg"), "landslides", layers["event"],
                                           geotransform, srs)
    cloud_count = _write_mask_polygons(os.path.join(partial, "clouds.gpkg"), "clouds", layers["cloud_mask"],
                                       geotransform, srs)
    # after every random draw: events of a given seed are the same with or without it
    _write_areas(os.path.join(partial, "areas.gpkg"), size_px, geotransform, srs)
    area = float(layers["event"].sum()) * gsd_m * gsd_m
    details = dict(scene.details, inventory_polygons=inventory_count, cloud_polygons=cloud_count,
                   landslide_fraction=round(float(layers["event"].mean()), 5))
    record = {"style": style, "style_description": spec.description, "seed": seed, "size_px": size_px,
              "gsd_m": gsd_m, "radiometry": radiometry, "epsg": spec.epsg, "landslides": inventory_count,
              "landslide_area_m2": area, "details": details,
              "note": "Simulated by training.simulate; not a real event."}
    with open(os.path.join(partial, "event.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
    os.replace(partial, folder)
    final = {name: os.path.join(folder, f"{name}.tif") for name in ("pre", "post", "dem")}
    return SimulatedEvent(folder=folder, pre=final["pre"], post=final["post"], dem=final["dem"],
                          inventory=os.path.join(folder, "inventory.gpkg"), clouds=os.path.join(folder, "clouds.gpkg"),
                          style=style, seed=seed, radiometry=radiometry, landslides=inventory_count,
                          landslide_area_m2=area, details=details)


def event_config_lines(event: SimulatedEvent, name: str, base_dir: str, areas: bool = False) -> List[str]:
    """TOML lines of an ``[[events]]`` entry for a simulated event, paths relative to ``base_dir``.

    With ``areas``, the entry also names the event's ``areas.gpkg`` layers as
    ``train_area`` and ``test_area``.
    """
    rel = lambda path: os.path.relpath(path, base_dir).replace(os.sep, "/")  # noqa: E731
    area_lines = [f'train_area = "{rel(os.path.join(event.folder, "areas.gpkg"))}|layername=train"',
                  f'test_area = "{rel(os.path.join(event.folder, "areas.gpkg"))}|layername=test"'] if areas else []
    return ["[[events]]", f'name = "{name}"', f'pre = "{rel(event.pre)}"', f'post = "{rel(event.post)}"',
            f'dem = "{rel(event.dem)}"', f'inventory = "{rel(event.inventory)}|layername=landslides"',
            f'cloud_mask = "{rel(event.clouds)}"', *area_lines,
            f'radiometry = "{"8bit" if event.radiometry == "8bit" else event.radiometry}"', ""]
