"""The plugin's own folder for Python packages QGIS does not ship (onnxruntime), and installing into it.

QGIS users cannot always ``pip install`` into the Python QGIS runs: Debian 12 refuses it
(``externally-managed-environment``), and on Windows (OSGeo4W, standalone) and macOS there is no
pip on the command line at hand. The plugin therefore installs onnxruntime with pip **into a folder
of its own** in the QGIS profile (``pip install --target``, which Debian allows) with the very Python
interpreter QGIS runs, and appends that folder to ``sys.path`` when it loads. The packages QGIS already
has keep precedence; numpy is pinned to QGIS's own version, so pip picks an onnxruntime built for it.

No QGIS import at module level: the command and the checks are plain Python, tested without QGIS.
"""

import glob
import os
import shutil
import subprocess
import sys

PACKAGE = "onnxruntime"
FOLDER_NAME = os.path.join("landslide_mapper", "python")


def dependencies_dir(settings_dir=None):
    """``<QGIS profile>/landslide_mapper/python``: where the plugin installs onnxruntime."""
    if settings_dir is None:
        from qgis.core import QgsApplication

        settings_dir = QgsApplication.qgisSettingsDirPath()
    return os.path.join(settings_dir, FOLDER_NAME)


def add_to_path(folder):
    """Append ``folder`` to ``sys.path`` (after QGIS's own packages) when it exists; True if it is there now."""
    if not os.path.isdir(folder):
        return False
    if folder not in sys.path:
        sys.path.append(folder)
        import importlib

        importlib.invalidate_caches()
    return True


def _version_of(python):
    """``'3.11'`` for an interpreter, or None when it does not run."""
    try:
        done = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=60, **_no_window())
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def python_candidates():
    """Interpreters that may be the one QGIS embeds, most likely first.

    Inside QGIS ``sys.executable`` is often QGIS itself (``qgis-bin.exe``, ``/usr/bin/qgis``), so the
    interpreter is looked for beside the running Python's prefix: ``python.exe`` on Windows
    (OSGeo4W: ``apps/Python3x``), ``bin/python3`` in QGIS.app on macOS, ``/usr/bin/python3.x`` on Linux.
    """
    major_minor = "%d.%d" % sys.version_info[:2]
    names = []
    executable = sys.executable or ""
    if os.path.basename(executable).lower().startswith("python"):
        names.append(executable)
    for prefix in dict.fromkeys((sys.exec_prefix, sys.base_exec_prefix, sys.prefix)):
        if sys.platform == "win32":
            names += [os.path.join(prefix, "python.exe"), os.path.join(prefix, "python3.exe")]
        else:
            names += [os.path.join(prefix, "bin", f"python{major_minor}"), os.path.join(prefix, "bin", "python3")]
    if sys.platform == "darwin" and executable:
        names.append(os.path.join(os.path.dirname(executable), "bin", "python3"))  # QGIS.app/Contents/MacOS/bin
    for name in (f"python{major_minor}", "python3", "python"):
        found = shutil.which(name)
        if found:
            names.append(found)
    return list(dict.fromkeys(names))


def find_python():
    """The interpreter of the same Python version QGIS runs (so wheels match), or None."""
    wanted = "%d.%d" % sys.version_info[:2]
    for candidate in python_candidates():
        if os.path.isfile(candidate) and _version_of(candidate) == wanted:
            return candidate
    return None


def numpy_version(python=None):
    """The numpy of ``python`` (default: this process, which inside QGIS is QGIS's), or None.

    onnxruntime must work with it: pip is told to keep exactly this version.
    """
    if python is None:
        try:
            import numpy
        except ImportError:
            return None
        return numpy.__version__
    try:
        done = subprocess.run([python, "-I", "-c", "import numpy; print(numpy.__version__)"], capture_output=True,
                              text=True, timeout=120, env=subprocess_environment(), **_no_window())
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def install_command(python, target, numpy_pin=None):
    """The pip command that installs onnxruntime into ``target``, numpy pinned to QGIS's."""
    command = [python, "-m", "pip", "install", "--target", target, "--upgrade", "--disable-pip-version-check",
               "--no-input", "--progress-bar", "off", PACKAGE]
    if numpy_pin:
        command.append(f"numpy=={numpy_pin}")
    return command


def remove_numpy_copy(target):
    """Remove the numpy pip put into ``target``: QGIS's own (the same version, pinned) is the one used."""
    for path in glob.glob(os.path.join(target, "numpy")) + glob.glob(os.path.join(target, "numpy-*.dist-info")) \
            + glob.glob(os.path.join(target, "numpy.libs")) + glob.glob(os.path.join(target, "bin", "f2py*")):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.isfile(path):
            os.remove(path)


VERIFY_CODE = (
    "import sys; sys.path.append(sys.argv[1]); import numpy, onnxruntime; "
    "print('onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__, "
    "'providers', ','.join(onnxruntime.get_available_providers()))"
)


def verify_command(python, target):
    """Import onnxruntime as QGIS will: the interpreter's own packages first, then ``target`` (isolated mode)."""
    return [python, "-I", "-c", VERIFY_CODE, target]


def pip_missing_hint():
    """What to do when the interpreter has no pip."""
    if sys.platform.startswith("linux"):
        return "Install pip for it first (Debian/Ubuntu: 'sudo apt install python3-pip'), then try again."
    if sys.platform == "win32":
        return "Run 'python -m ensurepip' in the OSGeo4W Shell, then try again."
    return "Run its 'python3 -m ensurepip', then try again."


def subprocess_environment():
    """The environment for pip: without PYTHONPATH / PYTHONHOME, which point at QGIS's or a venv's folders."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONHOME", "PIP_TARGET", "PIP_PREFIX", "PIP_USER"):
        env.pop(key, None)
    return env


def _no_window():
    """On Windows, run console programs without flashing a console window."""
    if sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}


def install(target, python=None, log=print):
    """Install onnxruntime into ``target`` (blocking; the dialog runs the same commands with QProcess).

    Returns:
        ``(ok, message)``: ``message`` says what was installed where, or what failed and what to do.
    """
    python = python or find_python()
    if python is None:
        return False, ("Could not find the Python interpreter QGIS runs (Python %d.%d)." % sys.version_info[:2])
    os.makedirs(target, exist_ok=True)
    command = install_command(python, target, numpy_version(python))
    log(" ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, env=subprocess_environment(), **_no_window())
    log(done.stdout + done.stderr)
    if done.returncode != 0:
        return False, failure_message(python, done.stdout + done.stderr)
    remove_numpy_copy(target)
    return verify(python, target)


def failure_message(python, output):
    """A plain explanation of a failed pip run."""
    if "No module named pip" in output:
        return f"{python} has no pip. {pip_missing_hint()}"
    last = [line for line in output.strip().splitlines() if line.strip()][-3:]
    return f"pip could not install onnxruntime with {python}:\n" + "\n".join(last)


def verify(python, target):
    """``(ok, message)`` after importing onnxruntime from ``target`` in a fresh interpreter."""
    done = subprocess.run(verify_command(python, target), capture_output=True, text=True,
                          env=subprocess_environment(), timeout=300, **_no_window())
    if done.returncode != 0:
        return False, f"onnxruntime was installed into {target} but does not import:\n{done.stderr.strip()[-800:]}"
    return True, f"{done.stdout.strip()}: installed into {target}."
