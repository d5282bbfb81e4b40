"""The plugin as QGIS sees it: metadata, zip contents, loading without onnxruntime."""

import configparser
import os
import re
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO_ROOT, plugin_parent_dir, qgis_installed

REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                     "repository", "tracker", "license", "icon", "tags")


def metadata():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO_ROOT, "metadata.txt"))
    return parser["general"]


def test_metadata_has_every_field_the_plugin_repository_requires():
    general = metadata()
    for key in REQUIRED_METADATA:
        assert general.get(key, "").strip(), key
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert os.path.isfile(os.path.join(REPO_ROOT, general["icon"]))


# PyQt5-only API that QGIS's Qt6 builds (PyQt6) do not have: QVariant type enums, exec_(), unscoped enums
# of Qt classes accessed the PyQt5 way.
PYQT5_ONLY = (
    re.compile(r"\bQVariant\.(Int|Double|String|Bool|LongLong|Date|DateTime|List|Map)\b"),
    re.compile(r"\.exec_\("),
    re.compile(r"from PyQt5\b|import PyQt5\b"),
)


def plugin_sources():
    """The plugin's Python files (what the zip ships)."""
    for folder in ("", "algorithms", "model"):
        directory = os.path.join(REPO_ROOT, folder)
        for name in sorted(os.listdir(directory)):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def test_supports_qt6_is_claimed_only_when_no_pyqt5_only_api_is_used():
    uses = [f"{os.path.relpath(path, REPO_ROOT)}: {pattern.pattern}" for path in plugin_sources()
            for pattern in PYQT5_ONLY if pattern.search(open(path, encoding="utf-8").read())]
    claims_qt6 = metadata().get("supportsQt6", "False").strip().lower() in ("true", "yes", "1")
    assert not (claims_qt6 and uses), f"metadata.txt claims supportsQt6 but the plugin uses PyQt5-only API: {uses}"


def test_the_pyqt5_scan_finds_what_it_looks_for():
    # The check above can fail: each pattern finds its PyQt5-only use, and none fires on Qt6-safe code.
    for pattern, pyqt5_only in zip(PYQT5_ONLY, ("QgsField('id', QVariant.Int)", "dialog.exec_()",
                                                "from PyQt5.QtCore import QVariant")):
        assert pattern.search(pyqt5_only)
    assert not any(p.search("QgsField('id', QMetaType.Int); dialog.exec(); from qgis.PyQt.QtCore import QVariant")
                   for p in PYQT5_ONLY)


def test_zip_holds_the_plugin_and_nothing_else(tmp_path):
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "make_plugin_zip.py"), "--output", str(tmp_path)],
                   check=True, capture_output=True)
    (archive,) = list(tmp_path.glob("landslide_mapper-*.zip"))
    names = zipfile.ZipFile(archive).namelist()
    for required in ("metadata.txt", "__init__.py", "plugin.py", "deps.py", "install_dialog.py",
                     "algorithms/provider.py", "model/pipeline.py",
                     "resources/styles/mask.qml", "resources/help/mapeventlandslides.html"):
        assert f"landslide_mapper/{required}" in names
    assert not [n for n in names if n.split("/")[1] in ("tests", "benchmarks", ".venv") or "__pycache__" in n]
    # the trainer that "Adapt model to event" runs in its own Python: sources only, no checkpoints
    assert "landslide_mapper/training/adapt.py" in names and "landslide_mapper/training/__main__.py" in names
    assert "landslide_mapper/resources/models/adapt_then_map.model3" in names
    assert not [n for n in names if n.startswith("landslide_mapper/training/checkpoints")]


LOAD_WITHOUT_ORT = r"""
import os, sys
sys.modules['onnxruntime'] = None  # as if it were not installed
os.environ['QT_QPA_PLATFORM'] = 'offscreen'
from qgis.core import QgsApplication
app = QgsApplication([], False); app.initQgis()
sys.path.insert(0, {parent!r})
import landslide_mapper
plugin = landslide_mapper.classFactory(None)
plugin.initProcessing()
alg = QgsApplication.processingRegistry().algorithmById('landslidemapper:mapeventlandslides')
ok, message = alg.canExecute()
print('CAN_EXECUTE', ok)
print('MESSAGE', message)
"""


def test_plugin_loads_without_onnxruntime_and_says_how_to_install_it():
    if not qgis_installed():  # QGIS runs in a subprocess: never import it here
        pytest.skip("QGIS is not installed")
    code = LOAD_WITHOUT_ORT.format(parent=plugin_parent_dir())
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "CAN_EXECUTE False" in done.stdout
    assert "onnxruntime is not installed" in done.stdout and "pip install" in done.stdout
