"""QGIS entry point: only classFactory, which imports the plugin lazily.

Keeping this file free of QGIS imports lets ``model`` and ``training`` be
imported (and tested) without QGIS.
"""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Create the plugin for QGIS (and make the onnxruntime it may have installed importable)."""
    from . import deps

    deps.add_to_path(deps.dependencies_dir())
    from .plugin import LandslideMapperPlugin

    return LandslideMapperPlugin(iface)
