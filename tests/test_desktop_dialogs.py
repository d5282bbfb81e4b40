"""Each algorithm's dialog in a real QGIS desktop under Xvfb: found by search, opened from the Toolbox,
filled from loaded layers, run; screenshots saved (copies in docs/screenshots/, shown in the README).

Runs ``qgis --code tests/desktop/dialogs_script.py`` with a fresh profile in which the plugin is
installed from its zip (scripts/make_plugin_zip.py) and enabled. Skipped only when xvfb-run or qgis
is not installed (scripts/setup_debian.sh installs both).
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "tests", "desktop", "dialogs_script.py")
SAMPLE_EVENT = os.path.join(REPO_ROOT, "resources", "sample_event")
SCREENSHOTS = ("toolbox_search_earthquake.png", "map_dialog_opened.png", "map_dialog_filled.png",
               "map_dialog_log.png", "map_window.png", "map_canvas.png", "evaluate_dialog_filled.png",
               "evaluate_dialog_log.png", "evaluate_window.png", "adapt_dialog_opened.png")


def _install_profile(base):
    """A fresh QGIS profile with the plugin installed from its zip and enabled; returns --profiles-path."""
    profiles = base / "qgis"  # --profiles-path: QGIS keeps profiles in <it>/profiles/<name>
    plugins_dir = profiles / "profiles" / "test" / "python" / "plugins"
    plugins_dir.mkdir(parents=True)
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "make_plugin_zip.py"), "--output", str(base)],
                   check=True, capture_output=True)
    (archive,) = list(base.glob("landslide_mapper-*.zip"))
    zipfile.ZipFile(archive).extractall(plugins_dir)  # installed from its zip, as a user does
    ini = profiles / "profiles" / "test" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\nlandslide_mapper=true\nprocessing=true\n\n"
                   "[qgis]\ncheckVersion=false\nshowTips322=false\n\n[core]\nFirstRun=false\n")
    return profiles


def _qgis_command(profiles, script):
    return ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "qgis", "--profiles-path", str(profiles),
            "--profile", "test", "--nologo", "--noversioncheck", "--code", script]


def _missing():
    return [tool for tool in ("xvfb-run", "qgis") if shutil.which(tool) is None]


@pytest.fixture(scope="module")
def desktop_run(tmp_path_factory):
    missing = _missing()
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (bash scripts/setup_debian.sh installs them)")
    base = tmp_path_factory.mktemp("desktop")
    profiles = _install_profile(base)
    out = base / "out"
    out.mkdir()
    env = dict(os.environ)
    env.update({
        "LANDSLIDE_DESKTOP_OUT": str(out),
        "LANDSLIDE_SAMPLE_EVENT": SAMPLE_EVENT,
        # onnxruntime from the venv (the plugin's installer puts it in the profile instead; tested elsewhere)
        "PYTHONPATH": os.pathsep.join(p for p in (sysconfig.get_paths()["purelib"], env.get("PYTHONPATH")) if p),
    })
    env.pop("QT_QPA_PLATFORM", None)  # a real (virtual) display, not offscreen
    done = subprocess.run(_qgis_command(profiles, SCRIPT), env=env, capture_output=True, text=True, timeout=420)
    report_path = out / "report.json"
    assert report_path.is_file(), f"QGIS left no report (rc {done.returncode}):\n{done.stderr[-4000:]}"
    report = json.loads(report_path.read_text())
    assert not report["errors"], "\n".join(report["errors"])
    assert "exit_blocked_by" not in report, report["exit_blocked_by"]  # left through File > Exit
    return report, out


def test_algorithms_are_found_by_search_words(desktop_run):
    report, _ = desktop_run
    search = report["toolbox_search"]
    assert "landslidemapper:mapeventlandslides" in search["earthquake"]
    assert "landslidemapper:mapeventlandslides" in search["ONNX"]
    assert "landslidemapper:evaluatelandslidemap" in search["inventory"]
    assert "earthquake" in report["map_tooltip"]
    assert "landslidemapper:adaptmodeltoevent" in search["fine-tune"]


def test_adapt_dialog_asks_for_the_mapping_and_prefills_the_event(desktop_run):
    report, _ = desktop_run
    facts = report["adapt_dialog"]
    labels = " | ".join(facts["labels"])
    for expected in ("Landslides you mapped", "Area where your mapping is complete", "Time budget", "Adapted model"):
        assert expected in labels, labels
    assert facts["help_enabled"]
    prefilled = report["adapt_prefilled"]
    assert float(prefilled["MINUTES"]) == 10.0
    assert prefilled["MODEL"].endswith("default_model.onnx")
    assert all(prefilled[name] not in ("", "None") for name in ("PRE_IMAGE", "POST_IMAGE", "DEM")), prefilled


def test_map_dialog_shows_plain_defaults_and_reachable_outputs(desktop_run):
    report, _ = desktop_run
    facts = report["map_dialog"]
    labels = " | ".join(facts["labels"])
    assert "band" not in labels.lower() and "Image values" not in labels
    assert facts["help_enabled"]
    prefilled = report["map_prefilled"]
    assert float(prefilled["THRESHOLD"]) == pytest.approx(0.5)  # the default model's card
    assert float(prefilled["MIN_AREA_M2"]) == pytest.approx(100.0)
    assert float(prefilled["MASK_BUFFER"]) == 100.0
    assert report["map_dialog_tall"]["outputs_visible"] == {"OUTPUT_POLYGONS": True, "OUTPUT_PROBABILITY": True,
                                                            "OUTPUT_MASK": True}


def test_map_dialog_runs_and_loads_legible_outputs(desktop_run):
    report, _ = desktop_run
    assert report["map_ok"]
    assert int(float(report["map_results"]["LANDSLIDE_COUNT"])) > 0
    layers = report["layers_after_map"]
    assert [layer["name"] for layer in layers[:3]] == ["Landslides", "Landslide probability", "Landslide mask"]
    assert [layer["visible"] for layer in layers[:3]] == [True, True, False]
    assert report["post_renderer_unchanged"]


def test_evaluate_dialog_runs_with_a_short_layer_name(desktop_run):
    report, _ = desktop_run
    assert report["evaluate_ok"]
    assert report["evaluate_dialog"]["help_enabled"]
    assert 0 < float(report["evaluate_results"]["MCC"]) <= 1
    assert "Map vs inventory" in [layer["name"] for layer in report["layers_after_evaluate"]]


def test_screenshots_are_saved(desktop_run):
    _, out = desktop_run
    for name in SCREENSHOTS:
        path = out / name
        assert path.is_file() and path.stat().st_size > 5000, name
    keep = os.environ.get("LANDSLIDE_SCREENSHOTS_DIR")
    if keep:  # e.g. docs/screenshots to refresh the README's pictures
        os.makedirs(keep, exist_ok=True)
        for name in SCREENSHOTS:
            shutil.copy(out / name, os.path.join(keep, name))


INSTALL_SCRIPT = os.path.join(REPO_ROOT, "tests", "desktop", "install_script.py")


def test_desktop_without_onnxruntime_offers_the_install_and_it_works(tmp_path):
    """QGIS without onnxruntime (no venv on its path): the message bar offers the install; clicking through
    installs it with QGIS's own Python into the profile and the algorithm can run, without a restart."""
    missing = _missing()
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (bash scripts/setup_debian.sh installs them)")
    probe = subprocess.run(["/usr/bin/python3", "-I", "-c", "import onnxruntime"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("QGIS's own Python already has onnxruntime, so the plugin has nothing to offer")
    import socket

    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        pytest.skip("pypi.org is not reachable from this machine")
    profiles = _install_profile(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QT_QPA_PLATFORM", "VIRTUAL_ENV")}
    env["LANDSLIDE_DESKTOP_OUT"] = str(out)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    done = subprocess.run(_qgis_command(profiles, INSTALL_SCRIPT), env=env, capture_output=True, text=True,
                          timeout=720)
    report_path = out / "report.json"
    assert report_path.is_file(), f"QGIS left no report (rc {done.returncode}):\n{done.stderr[-4000:]}"
    report = json.loads(report_path.read_text())
    assert not report["errors"], "\n".join(report["errors"])
    assert report["can_execute_before"][0] is False
    assert "Install onnxruntime" in report["can_execute_before"][1]
    assert report["offered_in_message_bar"] and report["dialog_opened"]
    assert report["install_ok"], report["install_message"]
    target = profiles / "profiles" / "test" / "landslide_mapper" / "python"
    assert str(target) in report["install_message"] and (target / "onnxruntime").is_dir()
    assert report["can_execute_after"][0] is True
    keep = os.environ.get("LANDSLIDE_SCREENSHOTS_DIR")
    for name in ("install_offered.png", "install_dialog_opened.png", "install_dialog_done.png"):
        assert (out / name).is_file(), name
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(out / name, os.path.join(keep, name))
