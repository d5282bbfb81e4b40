"""The dialog that installs onnxruntime into the plugin's folder: pip's output as it comes, then a clear result."""

import os
import sys

from qgis.PyQt.QtCore import QProcess, QProcessEnvironment, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from . import deps


class InstallDialog(QDialog):
    """Runs :func:`deps.install_command`, then :func:`deps.verify_command`, with QProcess (the UI stays live).

    Signals:
        finished_install(bool, str): success and the message shown to the user.
    """

    finished_install = pyqtSignal(bool, str)

    def __init__(self, target=None, python=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Landslide Mapper: install onnxruntime")
        self.target = target or deps.dependencies_dir()
        self.python = python or deps.find_python()
        self.succeeded = None
        self.message = ""
        self._process = None
        self._step = None
        self._output = []

        layout = QVBoxLayout(self)
        self.intro = QLabel(self._intro_text())
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMinimumSize(640, 220)
        layout.addWidget(self.log, 1)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        layout.addWidget(self.result)
        self.buttons = QDialogButtonBox()
        self.install_button = QPushButton("Install")
        self.install_button.setEnabled(self.python is not None)
        self.buttons.addButton(self.install_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.install_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(760, 520)

    def _intro_text(self):
        if self.python is None:
            return ("Landslide Mapper needs the Python package onnxruntime, but the Python interpreter QGIS runs "
                    "(Python %d.%d) was not found, so it cannot be installed from here." % sys.version_info[:2])
        return (f"Landslide Mapper runs its network with the Python package <b>onnxruntime</b>. Install it with "
                f"pip into the plugin's own folder<br><tt>{self.target}</tt><br>using QGIS's Python "
                f"<tt>{self.python}</tt> (downloads about 20 MB from pypi.org). Nothing else in QGIS or the "
                "system changes.")

    # ------------------------------------------------------------------ steps

    def start(self):
        """Run pip (step 1 of 2)."""
        self.install_button.setEnabled(False)
        self.close_button.setEnabled(False)
        self.progress.setRange(0, 0)  # busy: pip does not report a fraction
        self.progress.setFormat("Installing...")
        os.makedirs(self.target, exist_ok=True)
        self._run("pip", deps.install_command(self.python, self.target, deps.numpy_version(self.python)))

    def _run(self, step, command, shown=None):
        self._step = step
        self._output = []
        self.log.appendPlainText("$ " + (shown or " ".join(command)))
        process = QProcess(self)
        environment = QProcessEnvironment()
        for key, value in deps.subprocess_environment().items():
            environment.insert(key, value)
        process.setProcessEnvironment(environment)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._read)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self._process = process
        process.start(command[0], command[1:])

    def _read(self):
        text = bytes(self._process.readAllStandardOutput()).decode("utf-8", "replace")
        self._output.append(text)
        self.log.appendPlainText(text.rstrip("\n"))

    def _error(self, error):
        if error == QProcess.ProcessError.FailedToStart:
            self._done(False, f"Could not start {self.python}: {self._process.errorString()}")

    def _finished(self, exit_code, _status=None):
        output = "".join(self._output)
        if self._step == "pip":
            if exit_code != 0:
                self._done(False, deps.failure_message(self.python, output))
                return
            deps.remove_numpy_copy(self.target)
            self._run("verify", deps.verify_command(self.python, self.target),
                      f"{self.python}: import onnxruntime from {self.target}")
        elif self._step == "verify":
            if exit_code != 0:
                self._done(False, f"onnxruntime was installed into {self.target} but does not import:\n"
                                  f"{output.strip()[-800:]}")
                return
            deps.add_to_path(self.target)
            self._done(True, f"{output.strip()}: installed into {self.target}. "
                             "Map event landslides can run now (no restart needed).")

    def _done(self, ok, message):
        self._step = None
        self.succeeded = ok
        self.message = message
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if ok else 0)
        self.progress.setFormat("Done" if ok else "Failed")
        colour = "#1a7f37" if ok else "#b42318"
        title = "Installed." if ok else "Not installed."
        self.result.setText(f"<b style='color:{colour}'>{title}</b> " + message.replace("\n", "<br>"))
        self.layout().activate()
        self.resize(self.width(), max(self.height(), self.sizeHint().height()))
        self.close_button.setEnabled(True)
        self.install_button.setEnabled(not ok and self.python is not None)
        self.finished_install.emit(ok, message)
