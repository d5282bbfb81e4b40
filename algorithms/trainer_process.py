"""The separate Python that trains (TensorFlow never loads into QGIS), found, checked and run from Processing.

Like the SAGA, GRASS and OTB providers, the plugin names that program in a
Processing setting (*Settings › Options › Processing › Providers › Landslide
Mapper › Python with TensorFlow for "Adapt model to event"*). Left empty, the
repository's ``.venv`` beside the plugin is used when it exists.

The trainer runs ``python -m training adapt`` with the plugin folder as its
only ``PYTHONPATH`` (``training`` and ``model`` are top-level packages there)
and without QGIS's ``PYTHONHOME``. Its ``PROGRESS <fraction>`` lines move the
progress bar, other lines go to the log; Cancel terminates it (then kills it
after :data:`STOP_GRACE_S`).
"""

import os
import queue
import subprocess
import sys
import threading
from collections import deque

from qgis.core import QgsProcessingException

from ..model.errors import CancelledError
from .base import PLUGIN_DIR

SETTING_PYTHON = "LANDSLIDEMAPPER_TRAINER_PYTHON"
SETTING_PYTHON_LABEL = 'Python with TensorFlow for "Adapt model to event" (empty: the .venv beside the plugin)'
REQUIRED_MODULES = ("tensorflow", "keras", "onnx", "onnxruntime", "numpy", "osgeo.gdal", "training.adapt")
STOP_GRACE_S = 3.0
PROBE_TIMEOUT_S = 60.0
INSTALL_HINT = (
    "Create a Python for the trainer: in a clone of the plugin's repository run `bash scripts/setup_debian.sh "
    "training` (Debian/Ubuntu; it makes .venv with TensorFlow, onnx, onnxruntime and GDAL), or make a virtual "
    "environment that sees GDAL's Python bindings (python -m venv --system-site-packages) and run `python -m pip "
    "install -r requirements-training.txt` in it; then enter its python in Settings › Options › Processing › "
    "Providers › Landslide Mapper.")

_checked = {}


def configured_python():
    """The interpreter named in the Processing setting, or ""."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:  # outside QGIS's processing plugin
        return ""
    return (ProcessingConfig.getSetting(SETTING_PYTHON) or "").strip()


def venv_python(root=PLUGIN_DIR):
    """The ``.venv`` interpreter beside the plugin (a repository checkout), or "" when there is none."""
    for relative in (("bin", "python"), ("Scripts", "python.exe")):
        path = os.path.join(root, ".venv", *relative)
        if os.path.isfile(path):
            return path
    return ""


def trainer_environment():
    """The environment of the trainer: QGIS's Python settings removed, the plugin folder as its path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
    env.update(PYTHONPATH=PLUGIN_DIR, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    return env


def missing_modules(python):
    """The modules of :data:`REQUIRED_MODULES` that ``python`` cannot import (found without importing them)."""
    probe = ("import importlib.util, sys\n"
             "missing = []\n"
             f"for name in {REQUIRED_MODULES!r}:\n"
             "    try:\n"
             "        found = importlib.util.find_spec(name) is not None\n"
             "    except Exception:\n"
             "        found = False\n"
             "    if not found:\n"
             "        missing.append(name)\n"
             "print(','.join(missing))\n")
    result = subprocess.run([python, "-c", probe], cwd=PLUGIN_DIR, env=trainer_environment(), capture_output=True,
                            text=True, timeout=PROBE_TIMEOUT_S, **_no_window())
    if result.returncode != 0:
        raise OSError((result.stderr or result.stdout).strip().splitlines()[-1] if (result.stderr or result.stdout)
                      else f"exit status {result.returncode}")
    return [name for name in result.stdout.strip().split(",") if name]


def trainer_python(label):
    """The checked interpreter; raises QgsProcessingException saying what to install when there is none.

    ``label`` names the setting in messages.
    """
    configured = configured_python()
    python = configured or venv_python()
    if not python:
        raise QgsProcessingException(
            f"{label}: no Python with TensorFlow is set and there is no .venv beside the plugin ({PLUGIN_DIR}). "
            + INSTALL_HINT)
    if not os.path.isfile(python):
        raise QgsProcessingException(f"{label}: {python} does not exist. " + INSTALL_HINT)
    key = (python, os.path.getmtime(python))
    if key not in _checked:
        try:
            _checked[key] = missing_modules(python)
        except (OSError, subprocess.SubprocessError) as error:
            raise QgsProcessingException(f"{label}: {python} cannot be run ({error}). " + INSTALL_HINT) from None
    missing = _checked[key]
    if missing:
        raise QgsProcessingException(
            f"{label}: {python} lacks {', '.join(missing)}"
            + (" (the training package is not beside the plugin: install the plugin from its repository or ZIP "
               "again)" if "training.adapt" in missing else "") + ". " + INSTALL_HINT)
    return python


def _no_window():
    """Keep Windows from opening a console for the child."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NO_WINDOW}
    return {}


def run_trainer(command, feedback, progress_start=0.0, progress_share=100.0):
    """Run ``command`` (the trainer), relaying progress and log; returns when it ends successfully.

    Raises:
        CancelledError: The user cancelled (the process is stopped first).
        QgsProcessingException: It failed; the message holds its last error lines.
    """
    process = subprocess.Popen(command, cwd=PLUGIN_DIR, env=trainer_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", bufsize=1,
                               **_no_window())
    lines = queue.Queue()

    def read():
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    tail = deque(maxlen=12)
    try:
        while True:
            if feedback.isCanceled():
                stop(process)
                raise CancelledError("Cancelled: the trainer was stopped and no model was written.")
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("PROGRESS "):
                try:
                    feedback.setProgress(progress_start + progress_share * float(line.split()[1]))
                except (IndexError, ValueError):
                    pass
                continue
            tail.append(line)
            if _is_noise(line):
                feedback.pushConsoleInfo(line)
            else:
                feedback.pushInfo(line)
        process.wait()
    except BaseException:
        stop(process)
        raise
    finally:
        reader.join(STOP_GRACE_S)
        process.stdout.close()
    if process.returncode != 0:
        errors = [line for line in tail if line.startswith("error:") or "Error" in line]
        cause = errors[-1] if errors else " | ".join(list(tail)[-4:])
        raise QgsProcessingException(f"The trainer failed (exit status {process.returncode}): {cause}")


def _is_noise(line):
    """TensorFlow's and absl's start-up chatter, Python warnings: for the console, not the log."""
    return (line.startswith(("WARNING: All log messages", "I0000", "W0000", "E0000", "To enable the following"))
            or "Warning:" in line or line.startswith("  "))


def stop(process):
    """Terminate (the trainer stops at its next step and writes nothing), then kill after a grace time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
