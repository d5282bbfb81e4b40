"""Run inside a real QGIS desktop (``qgis --code``) without onnxruntime, by tests/test_desktop_dialogs.py.

Checks that the plugin offers the install in the message bar, clicks that button, clicks Install in the
dialog (pip into the profile's landslide_mapper/python with QGIS's Python), waits for the result and
checks that Map event landslides can run now. Writes ``report.json`` and screenshots into
$LANDSLIDE_DESKTOP_OUT, then leaves through File > Exit.
"""

import json
import os
import traceback

from qgis.core import QgsApplication, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QMessageBox, QPushButton
from qgis.utils import iface

OUT = os.environ["LANDSLIDE_DESKTOP_OUT"]
report = {"errors": []}
state = {}


def save():
    with open(os.path.join(OUT, "report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, default=str)


def guarded(function):
    def run():
        try:
            function()
        except Exception:  # noqa: BLE001
            report["errors"].append(traceback.format_exc())
            leave()
    return run


def install_button():
    for button in iface.messageBar().findChildren(QPushButton):
        if button.text().startswith("Install onnxruntime"):
            return button
    return None


def offered():
    algorithm = QgsApplication.processingRegistry().algorithmById("landslidemapper:mapeventlandslides")
    report["can_execute_before"] = algorithm.canExecute()
    button = install_button()
    report["offered_in_message_bar"] = button is not None
    iface.messageBar().parentWidget().grab().save(os.path.join(OUT, "install_offered.png"))
    if button is None:
        leave()
        return
    button.click()
    QTimer.singleShot(500, guarded(start_install))


def installer():
    for widget in QApplication.topLevelWidgets():
        if widget.isVisible() and type(widget).__name__ == "InstallDialog":
            return widget
    return None


def start_install():
    dialog = installer()
    report["dialog_opened"] = dialog is not None
    dialog.grab().save(os.path.join(OUT, "install_dialog_opened.png"))
    dialog.finished_install.connect(lambda ok, message: state.__setitem__("done", (ok, message)))
    dialog.install_button.click()
    wait_done(0)


def wait_done(waited):
    if "done" in state:
        QTimer.singleShot(500, guarded(after_install))
    elif waited > 600000:
        report["errors"].append("install did not finish in 600 s")
        leave()
    else:
        QTimer.singleShot(500, lambda: wait_done(waited + 500))


def after_install():
    ok, message = state["done"]
    report["install_ok"], report["install_message"] = ok, message
    dialog = installer()
    dialog.grab().save(os.path.join(OUT, "install_dialog_done.png"))
    algorithm = QgsApplication.processingRegistry().algorithmById("landslidemapper:mapeventlandslides")
    report["can_execute_after"] = algorithm.canExecute()
    dialog.close()
    leave()


def leave():
    if state.get("leaving"):
        return
    state["leaving"] = True
    save()
    QgsProject.instance().setDirty(False)
    QTimer.singleShot(1500, answer)
    QTimer.singleShot(20000, lambda: os._exit(2))
    iface.actionExit().trigger()


def answer():
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QMessageBox) and widget.isVisible():
            for choice in (QMessageBox.Discard, QMessageBox.Yes):
                if widget.button(choice) is not None:
                    widget.button(choice).click()
                    break
    QTimer.singleShot(1000, answer)


QTimer.singleShot(4000, guarded(offered))
