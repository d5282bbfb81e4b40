"""Shared fixtures: a headless QGIS with the plugin registered, tiny models, scenes."""

import importlib.util
import os
import sys
import tempfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_PACKAGE = "landslide_mapper"
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
HOKKAIDO_DIR = os.path.join(SHARED_DATA, "hokkaido_2018")


TEST_PROCESS_VARIABLE = "LANDSLIDE_TEST_PROCESS"
"""Set by scripts/test.sh: ``qgis`` for the processes that load QGIS (tests/algorithms, tests/gui), ``core`` for the rest."""
FORBIDDEN_MODULES = {"qgis": ("tensorflow", "keras", "h5py"), "core": ("qgis",)}


def qgis_installed():
    """Whether QGIS's Python bindings are installed, without importing them into this process."""
    return importlib.util.find_spec("qgis") is not None


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a process of scripts/test.sh loaded what it must keep apart (QGIS vs TensorFlow/h5py)."""
    part = os.environ.get(TEST_PROCESS_VARIABLE)
    loaded = sorted({name.split(".")[0] for name in sys.modules} & set(FORBIDDEN_MODULES.get(part, ())))
    if loaded:
        sys.stderr.write(f"\nThe '{part}' test process loaded {', '.join(loaded)}, which scripts/test.sh keeps in "
                         "another process.\n")
        session.exitstatus = 1


def plugin_parent_dir():
    """A folder holding the repository as a package named ``landslide_mapper``."""
    parent = os.path.join(tempfile.gettempdir(), f"landslide_mapper_plugin_{os.getuid()}")
    os.makedirs(parent, exist_ok=True)
    link = os.path.join(parent, PLUGIN_PACKAGE)
    if os.path.islink(link) and os.readlink(link) != REPO_ROOT:
        os.remove(link)
    if not os.path.exists(link):
        os.symlink(REPO_ROOT, link)
    return parent


@pytest.fixture(scope="session")
def qgis_app():
    """A headless QgsApplication with Processing and the plugin's provider."""
    pytest.importorskip("qgis.core", reason="QGIS is not installed")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication.instance()
    if app is None:
        app = QgsApplication([], False)
        app.initQgis()
    if "/usr/share/qgis/python/plugins" not in sys.path:
        sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    sys.path.insert(0, plugin_parent_dir())
    import importlib

    plugin_module = importlib.import_module(PLUGIN_PACKAGE)
    plugin = plugin_module.classFactory(None)
    plugin.initProcessing()
    yield app
    plugin.unload()


@pytest.fixture()
def red_model(tmp_path):
    """Path of the red-difference tiny model (see tests/helpers/tiny_models.py)."""
    from tests.helpers.tiny_models import red_difference_model

    return red_difference_model(str(tmp_path / "red_difference.onnx"))


@pytest.fixture()
def event_scene(tmp_path):
    """A small synthetic 8-bit event on a 10 m UTM grid."""
    from tests.helpers.scenes import make_event_scene

    return make_event_scene(str(tmp_path / "scene"))
