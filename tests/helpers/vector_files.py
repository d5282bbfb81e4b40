"""Polygon files in any OGR format (GeoPackage, Shapefile, GeoJSON), several layers, for tests."""

from __future__ import annotations

import os
from typing import Dict, Sequence

from osgeo import ogr, osr

ogr.UseExceptions()


def write_layers(path: str, layers: Dict[str, Sequence[str]], epsg: int, driver_name: str = "GPKG") -> str:
    """Write polygon layers (name -> WKT list) in ``epsg`` to a new vector file.

    Coordinates are x/y in the traditional GIS order (longitude, latitude for
    geographic CRSs). Shapefile and GeoJSON take one layer only.
    """
    driver = ogr.GetDriverByName(driver_name)
    if os.path.exists(path):
        driver.DeleteDataSource(path)
    source = driver.CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    for name, wkts in layers.items():
        layer = source.CreateLayer(name, srs=srs, geom_type=ogr.wkbPolygon)
        for wkt in wkts:
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
            layer.CreateFeature(feature)
    source = None
    return path
