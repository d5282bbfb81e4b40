"""Build the reference of fresh landslide scars on the Hokkaido 2018 crop (see README.md beside this file).

    python benchmarks/hokkaido/build_reference.py                 # writes reference.tif, .gpkg, parts.gpkg, PNGs
    python benchmarks/hokkaido/build_reference.py --check         # rebuilds in memory, compares with reference.tif

Method, in order, all on the post image's own grid (EPSG:4326, 768 x 640 px):

1. **Spectral rule on the post-event image only** (no pre/post change index): fresh scars in the
   Eastern Iburi pumice/soil are bright and pale salmon, red >= green >= blue (blue allowed slightly
   above green: the scene is hazy), with little greenness. A *core* rule (bright) seeds scars, a
   *grow* rule (less bright, same colour) extends each seed over its connected pixels (hysteresis).
2. **Slope**: slope in degrees of the AW3D30 DSM computed on the DSM's own 30 m grid and resampled
   bilinearly onto the image grid; core pixels need >= ``core_slope_deg``, grown ones >= ``grow_slope_deg``.
3. **Hand edits** from ``edits.json`` (pixel coordinates of the image grid, one reason per polygon,
   drawn by eye on full-resolution crops of pre and post): ``exclude`` polygons are set to 0 (fields,
   construction, river bars, roads, cloud, surfaces already bare in the pre image); ``add`` polygons are
   scars the rule misses, set to 1 where they contain ``add_rule`` pixels (or everywhere for ``add_all``).
4. **Cleaning**: regions (scar or gap) smaller than ``min_region_px`` (8-connected) are merged into
   their surroundings with GDAL's sieve filter.
5. **Not assessed** (255): where the pre or post image has nodata (any band 0), and ``not_assessed``
   polygons of ``edits.json``.

Pure numpy + GDAL: the test in tests/model/test_hokkaido_reference.py reruns :func:`build_reference`
and checks the committed reference.tif is reproduced exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()


class _quiet_gdal:
    """Silence GDAL's warnings (e.g. burning CRS-less scratch layers on pixel grids)."""

    def __enter__(self):
        gdal.PushErrorHandler("CPLQuietErrorHandler")

    def __exit__(self, *exc):
        gdal.PopErrorHandler()

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "hokkaido_2018")
DEFAULT_EDITS = os.path.join(HERE, "edits.json")
EVENT = "2018 Hokkaido Eastern Iburi earthquake (Mw 6.6, 2018-09-06), crop of ../shared/data/hokkaido_2018"

SCAR, BACKGROUND, NOT_ASSESSED = 1, 0, 255
RGB_BANDS = ("B4", "B3", "B2")  # red, green, blue

PARAMETERS = {
    # reflectance x 10000 (Sentinel-2 L2A as stored); brightness = mean of red, green, blue
    "core_brightness": 1300.0,
    "core_red_minus_green": 0.0,      # red >= green
    "core_green_minus_blue": -100.0,  # green >= blue - 100 (haze lifts blue)
    "core_slope_deg": 5.0,
    "grow_brightness": 1150.0,
    "grow_red_minus_green": -30.0,
    "grow_green_minus_blue": -150.0,
    "grow_slope_deg": 4.0,
    "min_region_px": 3,
}


# ----------------------------------------------------------------------------- inputs

def read_image(data_dir: str, when: str) -> Tuple[np.ndarray, tuple, str]:
    """R, G, B reflectance (float32, 3 x rows x cols), geotransform and projection of ``pre`` or ``post``."""
    planes, gt, wkt = [], None, None
    for band in RGB_BANDS:
        dataset = gdal.Open(os.path.join(data_dir, f"{when}_S2_{band}.tif"))
        planes.append(dataset.GetRasterBand(1).ReadAsArray().astype(np.float32))
        gt, wkt = dataset.GetGeoTransform(), dataset.GetProjection()
    return np.stack(planes), gt, wkt


def _metres_per_degree(lat_deg: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Metres per degree of longitude and latitude on the WGS 84 ellipsoid."""
    a, e2 = 6378137.0, 6.69437999014e-3
    phi = np.radians(lat_deg)
    w = 1.0 - e2 * np.sin(phi) ** 2
    return np.pi / 180.0 * a * np.cos(phi) / np.sqrt(w), np.pi / 180.0 * a * (1.0 - e2) / w ** 1.5


def pixel_area_m2(gt: tuple, rows: int, cols: int) -> np.ndarray:
    """Ground area of each pixel of a north-up EPSG:4326 grid (rows x cols)."""
    lat = gt[3] + gt[5] * (np.arange(rows) + 0.5)
    mx, my = _metres_per_degree(lat)
    return np.repeat((abs(gt[1]) * mx * abs(gt[5]) * my)[:, None], cols, axis=1)


def slope_on_grid(data_dir: str, gt: tuple, wkt: str, rows: int, cols: int) -> np.ndarray:
    """DSM slope (degrees) computed on the DSM's own grid, resampled bilinearly onto (gt, rows, cols)."""
    dem_ds = gdal.Open(os.path.join(data_dir, "dsm_AW3D30.tif"))
    band = dem_ds.GetRasterBand(1)
    dem = band.ReadAsArray().astype(np.float64)
    nodata = band.GetNoDataValue()
    valid = np.ones(dem.shape, bool) if nodata is None else dem != nodata
    dem[~valid] = np.nan
    dgt = dem_ds.GetGeoTransform()
    lat = dgt[3] + dgt[5] * (np.arange(dem.shape[0]) + 0.5)
    mx, my = _metres_per_degree(lat)
    dzdy = np.gradient(dem, axis=0) / (abs(dgt[5]) * my)[:, None]
    dzdx = np.gradient(dem, axis=1) / (abs(dgt[1]) * mx)[:, None]
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy))).astype(np.float32)
    slope[~np.isfinite(slope)] = -1.0
    src = gdal.GetDriverByName("MEM").Create("", dem.shape[1], dem.shape[0], 1, gdal.GDT_Float32)
    src.SetGeoTransform(dgt)
    src.SetProjection(dem_ds.GetProjection())
    src.GetRasterBand(1).WriteArray(slope)
    src.GetRasterBand(1).SetNoDataValue(-1.0)
    out = gdal.Warp("", src, format="MEM", outputBounds=(gt[0], gt[3] + gt[5] * rows, gt[0] + gt[1] * cols, gt[3]),
                    width=cols, height=rows, dstSRS=wkt, resampleAlg="bilinear", dstNodata=-1.0)
    return out.GetRasterBand(1).ReadAsArray()


# ----------------------------------------------------------------------------- rule and cleaning

def _dilate8(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    padded = np.pad(mask, 1)
    rows, cols = mask.shape
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            out |= padded[dr:dr + rows, dc:dc + cols]
    return out


def grow_from_seeds(seeds: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Pixels of ``allowed`` 8-connected to a seed (morphological reconstruction)."""
    current = seeds & allowed
    while True:
        grown = _dilate8(current) & allowed
        if np.array_equal(grown, current):
            return current
        current = grown


def spectral_rule(post: np.ndarray, slope: np.ndarray, p: Dict[str, float] = PARAMETERS) -> np.ndarray:
    """Fresh bare pumice/soil in the post image on slopes (bool)."""
    red, green, blue = post
    brightness = (red + green + blue) / 3.0
    core = ((brightness >= p["core_brightness"]) & (red - green >= p["core_red_minus_green"])
            & (green - blue >= p["core_green_minus_blue"]) & (slope >= p["core_slope_deg"]))
    grow = ((brightness >= p["grow_brightness"]) & (red - green >= p["grow_red_minus_green"])
            & (green - blue >= p["grow_green_minus_blue"]) & (slope >= p["grow_slope_deg"]))
    return grow_from_seeds(core, grow | core)


def sieve(mask: np.ndarray, min_px: int) -> np.ndarray:
    """Merge 8-connected regions (of 1 or of 0) smaller than ``min_px`` into their surroundings (GDAL sieve)."""
    rows, cols = mask.shape
    ds = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Byte)
    ds.GetRasterBand(1).WriteArray(mask.astype(np.uint8))
    gdal.SieveFilter(ds.GetRasterBand(1), None, ds.GetRasterBand(1), int(min_px), 8)
    return ds.GetRasterBand(1).ReadAsArray().astype(bool)


# ----------------------------------------------------------------------------- hand edits

def load_edits(path: str = DEFAULT_EDITS) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def rasterize_pixel_polygons(polygons, rows: int, cols: int) -> np.ndarray:
    """Burn polygons given in pixel coordinates ((col, row) of pixel corners) with GDAL's pixel-centre rule."""
    ds = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, 1.0))  # x = col, y = row
    source = ogr.GetDriverByName("Memory").CreateDataSource("edits")
    layer = source.CreateLayer("edits", geom_type=ogr.wkbPolygon)
    for ring_points in polygons:
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for col, row in list(ring_points) + [ring_points[0]]:
            ring.AddPoint_2D(float(col), float(row))
        polygon = ogr.Geometry(ogr.wkbPolygon)
        polygon.AddGeometry(ring)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(polygon)
        layer.CreateFeature(feature)
    if layer.GetFeatureCount():
        with _quiet_gdal():
            gdal.RasterizeLayer(ds, [1], layer, burn_values=[1])
    return ds.GetRasterBand(1).ReadAsArray().astype(bool)


def edit_masks(edits: dict, rows: int, cols: int) -> Dict[str, np.ndarray]:
    """One boolean raster per action of ``edits.json``."""
    actions = ("exclude", "add", "add_all", "not_assessed")
    unknown = {e["action"] for e in edits["edits"]} - set(actions)
    if unknown:
        raise ValueError(f"Unknown edit actions {sorted(unknown)}; known: {actions}")
    return {a: rasterize_pixel_polygons([e["polygon"] for e in edits["edits"] if e["action"] == a], rows, cols)
            for a in actions}


# ----------------------------------------------------------------------------- the reference

def build_reference(data_dir: str = DEFAULT_DATA_DIR, edits_path: str = DEFAULT_EDITS,
                    parameters: Dict[str, float] = PARAMETERS) -> dict:
    """The reference raster (uint8: 1 scar, 0 not, 255 not assessed) and what it was made from."""
    post, gt, wkt = read_image(data_dir, "post")
    pre, pre_gt, _ = read_image(data_dir, "pre")
    if not np.allclose(gt, pre_gt):
        raise ValueError("pre and post images are not on the same grid")
    rows, cols = post.shape[1:]
    slope = slope_on_grid(data_dir, gt, wkt, rows, cols)
    rule = spectral_rule(post, slope, parameters)
    edits = load_edits(edits_path)
    masks = edit_masks(edits, rows, cols)
    add_rule = spectral_rule(post, slope, dict(parameters, **edits.get("add_rule", {})))
    scars = rule & ~masks["exclude"]
    scars |= masks["add"] & add_rule
    scars |= masks["add_all"]
    scars = sieve(scars, parameters["min_region_px"])
    not_assessed = (pre == 0).any(axis=0) | (post == 0).any(axis=0) | masks["not_assessed"]
    reference = np.where(not_assessed, NOT_ASSESSED, scars.astype(np.uint8)).astype(np.uint8)
    return {"reference": reference, "geotransform": gt, "projection": wkt, "slope": slope,
            "rule": rule, "edits": edits, "edit_masks": masks, "post": post, "pre": pre}


def label_regions(mask: np.ndarray) -> Tuple[np.ndarray, int]:
    """8-connected labels of a boolean mask (1..n, 0 = background), with GDAL's polygonize and rasterize."""
    rows, cols = mask.shape
    ds = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    ds.GetRasterBand(1).WriteArray(mask.astype(np.uint8))
    source = ogr.GetDriverByName("Memory").CreateDataSource("labels")
    layer = source.CreateLayer("labels", geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("v", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("label", ogr.OFTInteger))
    gdal.Polygonize(ds.GetRasterBand(1), ds.GetRasterBand(1), layer, 0, ["8CONNECTED=8"])
    count = 0
    for feature in layer:
        count += 1
        feature.SetField("label", count)
        layer.SetFeature(feature)
    out = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Int32)
    out.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    if count:
        with _quiet_gdal():
            gdal.RasterizeLayer(out, [1], layer, options=["ATTRIBUTE=label"])
    labels = out.GetRasterBand(1).ReadAsArray()
    labels[~mask] = 0
    return labels, count


def reference_summary(reference: np.ndarray, gt: tuple) -> dict:
    """Scar count, area and share of the assessed crop."""
    area = pixel_area_m2(gt, *reference.shape)
    scars = reference == SCAR
    assessed = reference != NOT_ASSESSED
    labels, count = label_regions(scars)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    return {
        "scars": int(count), "scars_ge_5px": int((sizes >= 5).sum()),
        "scar_px": int(scars.sum()), "assessed_px": int(assessed.sum()),
        "not_assessed_px": int((~assessed).sum()), "crop_px": int(reference.size),
        "scar_area_km2": round(float(area[scars].sum()) / 1e6, 4),
        "assessed_area_km2": round(float(area[assessed].sum()) / 1e6, 4),
        "crop_area_km2": round(float(area.sum()) / 1e6, 4),
        "scar_share_of_assessed": round(float(area[scars].sum() / area[assessed].sum()), 4),
    }


# ----------------------------------------------------------------------------- parts (adaptation / test)

def part_masks(edits: dict, rows: int, cols: int) -> Tuple[np.ndarray, np.ndarray]:
    """Adaptation block and test part (the crop minus the block grown by ``gap_px``) as boolean rasters."""
    adapt_poly = edits["parts"]["adapt"]
    gap = int(edits["parts"].get("gap_px", 0))
    adapt = rasterize_pixel_polygons([adapt_poly], rows, cols)
    (c0, r0), (c1, r1) = np.min(adapt_poly, axis=0), np.max(adapt_poly, axis=0)
    buffered = [[c0 - gap, r0 - gap], [c1 + gap, r0 - gap], [c1 + gap, r1 + gap], [c0 - gap, r1 + gap]]
    test = ~rasterize_pixel_polygons([buffered], rows, cols)
    return adapt, test


def _pixel_to_map(gt: tuple, col: float, row: float) -> Tuple[float, float]:
    return gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]


def _srs(wkt: str) -> osr.SpatialReference:
    srs = osr.SpatialReference(wkt=wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _ring(gt, points):
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for col, row in list(points) + [points[0]]:
        ring.AddPoint_2D(*_pixel_to_map(gt, col, row))
    return ring


def write_parts(path: str, edits: dict, gt: tuple, wkt: str, rows: int, cols: int) -> None:
    """parts.gpkg: layers ``adapt`` (the block) and ``test`` (crop minus the block and its gap), EPSG:4326."""
    adapt_poly = edits["parts"]["adapt"]
    gap = int(edits["parts"].get("gap_px", 0))
    (c0, r0), (c1, r1) = np.min(adapt_poly, axis=0), np.max(adapt_poly, axis=0)
    if os.path.exists(path):
        gdal.GetDriverByName("GPKG").Delete(path)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    crop = [[0, 0], [cols, 0], [cols, rows], [0, rows]]
    hole = [[c0 - gap, r0 - gap], [c0 - gap, r1 + gap], [c1 + gap, r1 + gap], [c1 + gap, r0 - gap]]
    for name, rings, what in (("adapt", [adapt_poly], "adaptation block: a model may be adapted on it"),
                              ("test", [crop, hole], f"test part: the crop minus the adaptation block grown by {gap} px")):
        layer = source.CreateLayer(name, srs=_srs(wkt), geom_type=ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("part", ogr.OFTString))
        layer.CreateField(ogr.FieldDefn("note", ogr.OFTString))
        polygon = ogr.Geometry(ogr.wkbPolygon)
        for points in rings:
            polygon.AddGeometry(_ring(gt, points))
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("part", name)
        feature.SetField("note", what)
        feature.SetGeometry(polygon)
        layer.CreateFeature(feature)
    source = None


# ----------------------------------------------------------------------------- outputs

def write_reference_tif(path: str, reference: np.ndarray, gt: tuple, wkt: str) -> None:
    rows, cols = reference.shape
    ds = gdal.GetDriverByName("GTiff").Create(path, cols, rows, 1, gdal.GDT_Byte, ["COMPRESS=DEFLATE", "TILED=NO"])
    ds.SetGeoTransform(gt)
    ds.SetProjection(wkt)
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(NOT_ASSESSED)
    band.SetDescription("1 = fresh landslide scar, 0 = not, 255 = not assessed")
    band.WriteArray(reference)
    ds.SetMetadata({"EVENT": EVENT, "METHOD": "benchmarks/hokkaido/build_reference.py (see README.md there)"})
    ds = None


def write_reference_gpkg(path: str, reference: np.ndarray, gt: tuple, wkt: str, edits: dict) -> None:
    """Scar polygons (layer ``scars``, with pixel count and area) and the hand edits (layer ``edits``)."""
    rows, cols = reference.shape
    if os.path.exists(path):
        gdal.GetDriverByName("GPKG").Delete(path)
    mem = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Byte)
    mem.SetGeoTransform(gt)
    mem.SetProjection(wkt)
    scars = (reference == SCAR).astype(np.uint8)
    mem.GetRasterBand(1).WriteArray(scars)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = source.CreateLayer("scars", srs=_srs(wkt), geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    gdal.Polygonize(mem.GetRasterBand(1), mem.GetRasterBand(1), layer, 0, ["8CONNECTED=8"])
    layer.CreateField(ogr.FieldDefn("pixels", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("area_m2", ogr.OFTReal))
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(32654)
    utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_utm = osr.CoordinateTransformation(_srs(wkt), utm)
    pixel_deg2 = abs(gt[1] * gt[5])
    source.StartTransaction()
    for feature in layer:
        geometry = feature.GetGeometryRef()
        feature.SetField("pixels", int(round(geometry.GetArea() / pixel_deg2)))
        projected = geometry.Clone()
        projected.Transform(to_utm)
        feature.SetField("area_m2", round(projected.GetArea(), 1))
        layer.SetFeature(feature)
    source.CommitTransaction()
    edits_layer = source.CreateLayer("edits", srs=_srs(wkt), geom_type=ogr.wkbPolygon)
    for name in ("id", "action", "reason"):
        edits_layer.CreateField(ogr.FieldDefn(name, ogr.OFTString))
    for edit in edits["edits"]:
        feature = ogr.Feature(edits_layer.GetLayerDefn())
        for name in ("id", "action", "reason"):
            feature.SetField(name, str(edit.get(name, "")))
        polygon = ogr.Geometry(ogr.wkbPolygon)
        polygon.AddGeometry(_ring(gt, edit["polygon"]))
        feature.SetGeometry(polygon)
        edits_layer.CreateFeature(feature)
    source = None


def display_rgb(image: np.ndarray, low_high=None) -> np.ndarray:
    """Byte true colour (3 x rows x cols) with a 1-99.5 % stretch per band over valid pixels; black where nodata."""
    valid = (image != 0).all(axis=0)
    out = np.zeros(image.shape, np.uint8)
    for i in range(3):
        lo, hi = (np.percentile(image[i][valid], (1, 99.5)) if low_high is None else low_high[i])
        out[i] = np.clip((image[i] - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    out[:, ~valid] = 0
    return out


def outline_png(path: str, rgb: np.ndarray, layers, scale: int = 2) -> None:
    """PNG of ``rgb`` upscaled ``scale`` x with the outlines of each (mask, colour) of ``layers`` (GDAL PNG)."""
    big = np.repeat(np.repeat(rgb, scale, axis=1), scale, axis=2).copy()
    for mask, colour in layers:
        m = np.repeat(np.repeat(mask.astype(bool), scale, axis=0), scale, axis=1)
        inner = m.copy()
        inner[1:, :] &= m[:-1, :]
        inner[:-1, :] &= m[1:, :]
        inner[:, 1:] &= m[:, :-1]
        inner[:, :-1] &= m[:, 1:]
        edge = m & ~inner
        for i in range(3):
            big[i][edge] = colour[i]
    mem = gdal.GetDriverByName("MEM").Create("", big.shape[2], big.shape[1], 3, gdal.GDT_Byte)
    for i in range(3):
        mem.GetRasterBand(i + 1).WriteArray(big[i])
    gdal.GetDriverByName("PNG").CreateCopy(path, mem)
    if os.path.exists(path + ".aux.xml"):
        os.remove(path + ".aux.xml")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--edits", default=DEFAULT_EDITS)
    parser.add_argument("--out-dir", default=HERE)
    parser.add_argument("--check", action="store_true", help="only rebuild and compare with OUT_DIR/reference.tif")
    args = parser.parse_args(argv)
    built = build_reference(args.data_dir, args.edits)
    reference, gt, wkt = built["reference"], built["geotransform"], built["projection"]
    if args.check:
        committed = gdal.Open(os.path.join(args.out_dir, "reference.tif")).ReadAsArray()
        differ = int((committed != reference).sum())
        print(f"{differ} pixels differ from the committed reference.tif")
        return 1 if differ else 0
    os.makedirs(args.out_dir, exist_ok=True)
    write_reference_tif(os.path.join(args.out_dir, "reference.tif"), reference, gt, wkt)
    write_reference_gpkg(os.path.join(args.out_dir, "reference.gpkg"), reference, gt, wkt, built["edits"])
    rows, cols = reference.shape
    write_parts(os.path.join(args.out_dir, "parts.gpkg"), built["edits"], gt, wkt, rows, cols)
    scars = reference == SCAR
    nodata = reference == NOT_ASSESSED
    adapt, _ = part_masks(built["edits"], rows, cols)
    adapt_edge = adapt & ~(np.roll(adapt, 1, 0) & np.roll(adapt, -1, 0) & np.roll(adapt, 1, 1) & np.roll(adapt, -1, 1))
    for when in ("post", "pre"):
        rgb = display_rgb(built[when])
        outline_png(os.path.join(args.out_dir, f"overview_reference{'' if when == 'post' else '_pre'}.png"), rgb,
                    [(nodata, (90, 90, 90)), (adapt_edge, (255, 255, 0)), (scars, (0, 255, 255))])
    summary = reference_summary(reference, gt)
    test_ref = np.where(part_masks(built["edits"], rows, cols)[1], reference, NOT_ASSESSED)
    adapt_ref = np.where(adapt, reference, NOT_ASSESSED)
    summary["adapt_part"] = reference_summary(adapt_ref, gt)
    summary["test_part"] = reference_summary(test_ref, gt)
    summary["rule_px_before_edits"] = int(built["rule"].sum())
    summary["parameters"] = PARAMETERS
    with open(os.path.join(args.out_dir, "reference_summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
