"""The plugin as QGIS sees it: metadata, zip contents, loading without onnxruntime."""

import configparser
import os
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
    assert general["supportsQt6"] == "True"
    assert os.path.isfile(os.path.join(REPO_ROOT, general["icon"]))


def test_zip_holds_the_plugin_and_nothing_else(tmp_path):
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "make_plugin_zip.py"), "--output", str(tmp_path)],
                   check=True, capture_output=True)
    (archive,) = list(tmp_path.glob("landslide_mapper-*.zip"))
    names = zipfile.ZipFile(archive).namelist()
    for required in ("metadata.txt", "__init__.py", "plugin.py", "algorithms/provider.py", "model/pipeline.py",
                     "resources/styles/mask.qml", "resources/help/mapeventlandslides.html"):
        assert f"landslide_mapper/{required}" in names
    assert not [n for n in names if n.split("/")[1] in ("training", "tests", "benchmarks", ".venv") or "__pycache__" in n]


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
