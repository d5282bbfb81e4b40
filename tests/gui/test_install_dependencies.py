"""Installing onnxruntime into the plugin's own folder with QGIS's Python (pip --target), from the dialog.

The install test runs pip for real (it needs pypi.org); Debian 12 refuses a plain 'pip install' into
its Python (externally managed) but allows --target, which is what the plugin does.
"""

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, plugin_parent_dir

sys.path.insert(0, plugin_parent_dir())
deps = pytest.importorskip("landslide_mapper.deps")

QGIS_PYTHON = "/usr/bin/python3"  # the interpreter Debian's QGIS embeds


def pypi_reachable():
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def qgis_python():
    """Debian's system Python (QGIS's) when it has the same version, else what the plugin would find."""
    if os.path.isfile(QGIS_PYTHON) and deps._version_of(QGIS_PYTHON) == "%d.%d" % sys.version_info[:2]:
        return QGIS_PYTHON
    return deps.find_python()


def test_command_installs_into_the_target_with_numpy_pinned():
    command = deps.install_command("/py", "/target", "1.24.2")
    assert command[:4] == ["/py", "-m", "pip", "install"]
    assert command[command.index("--target") + 1] == "/target"
    assert "onnxruntime" in command and "numpy==1.24.2" in command
    assert "--user" not in command and "--break-system-packages" not in command


def test_finds_an_interpreter_of_the_running_python_version():
    python = deps.find_python()
    assert python is not None
    assert deps._version_of(python) == "%d.%d" % sys.version_info[:2]


def test_folder_is_in_the_qgis_profile_and_goes_after_qgis_packages(tmp_path):
    folder = deps.dependencies_dir(str(tmp_path))
    assert folder == os.path.join(str(tmp_path), "landslide_mapper", "python")
    assert not deps.add_to_path(folder)  # not there yet: nothing added
    os.makedirs(folder)
    try:
        assert deps.add_to_path(folder) and sys.path[-1] == folder
        assert deps.add_to_path(folder) and sys.path.count(folder) == 1
    finally:
        sys.path.remove(folder)


def test_a_missing_pip_is_explained():
    message = deps.failure_message("/usr/bin/python3", "/usr/bin/python3: No module named pip\n")
    assert "has no pip" in message and "python3-pip" in message


@pytest.fixture(scope="module")
def gui_app():
    pytest.importorskip("qgis.core", reason="QGIS is not installed")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication.instance() or QgsApplication([], True)
    return app


def run_dialog(dialog, timeout_s):
    from qgis.PyQt.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    dialog.finished_install.connect(lambda ok, message: loop.quit())
    QTimer.singleShot(timeout_s * 1000, loop.quit)
    dialog.show()
    dialog.install_button.click()
    loop.exec()
    return dialog.succeeded, dialog.message


def test_dialog_reports_a_failed_pip_plainly(gui_app, tmp_path):
    from landslide_mapper.install_dialog import InstallDialog

    fake = tmp_path / "python3"  # an interpreter without pip, as on a Debian without python3-pip
    fake.write_text("#!/bin/sh\necho \"$0: No module named pip\" >&2\nexit 1\n")
    fake.chmod(0o755)
    dialog = InstallDialog(target=str(tmp_path / "deps"), python=str(fake))
    ok, message = run_dialog(dialog, 60)
    assert ok is False
    assert "has no pip" in message and "Not installed." in dialog.result.text()
    assert dialog.close_button.isEnabled() and dialog.install_button.isEnabled()


@pytest.mark.skipif(not pypi_reachable(), reason="pypi.org is not reachable from this machine")
def test_dialog_installs_onnxruntime_for_real_and_qgis_python_imports_it(gui_app, tmp_path):
    from landslide_mapper.install_dialog import InstallDialog

    python = qgis_python()
    target = str(tmp_path / "profile" / "landslide_mapper" / "python")
    dialog = InstallDialog(target=target, python=python)
    ok, message = run_dialog(dialog, 900)
    log = dialog.log.toPlainText()
    assert ok, f"{message}\n{log[-3000:]}"
    assert "installed into" in message and "Installed." in dialog.result.text()
    assert "--target" in log
    assert f"numpy=={deps.numpy_version(python)}" in log  # pinned to that interpreter's numpy
    keep = os.environ.get("LANDSLIDE_SCREENSHOTS_DIR")
    if keep:
        os.makedirs(keep, exist_ok=True)
        dialog.grab().save(os.path.join(keep, "install_onnxruntime.png"))
    assert not os.path.exists(os.path.join(target, "numpy"))  # QGIS's numpy is the one used
    # QGIS's own interpreter, isolated from any venv, runs the default model with it.
    code = ("import sys; sys.path.append(sys.argv[1]); import numpy, onnxruntime; "
            "s = onnxruntime.InferenceSession(sys.argv[2], providers=['CPUExecutionProvider']); "
            "print('INPUTS', len(s.get_inputs()), numpy.__file__)")
    done = subprocess.run([python, "-I", "-c", code, target, os.path.join(REPO_ROOT, "model", "default_model.onnx")],
                          capture_output=True, text=True, env=deps.subprocess_environment(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "INPUTS 3" in done.stdout and target not in done.stdout  # numpy is QGIS's, not a copy
