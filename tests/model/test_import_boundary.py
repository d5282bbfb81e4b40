"""The inference core never imports QGIS or TensorFlow."""

import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_model_package_imports_without_qgis_or_tensorflow():
    code = (
        "import sys, pkgutil, importlib, model\n"
        "for info in pkgutil.iter_modules(model.__path__):\n"
        "    importlib.import_module('model.' + info.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('qgis', 'tensorflow', 'keras', 'PyQt5', 'torch'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_root_init_does_not_import_qgis():
    with open(os.path.join(REPO_ROOT, "__init__.py"), encoding="utf-8") as handle:
        top_level = [line for line in handle if line.startswith(("import ", "from "))]
    assert top_level == []
