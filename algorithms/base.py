"""What every algorithm of the plugin shares: translation, icon, help, feedback."""

import configparser
import os

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..model.errors import LandslideMapperError
from ..model.session import onnxruntime_missing_reason

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESOURCES_DIR = os.path.join(PLUGIN_DIR, "resources")


def icon():
    """The plugin icon."""
    return QIcon(os.path.join(RESOURCES_DIR, "icons", "icon.svg"))


def resource_path(*parts):
    """Absolute path of a file under ``resources/``."""
    return os.path.join(RESOURCES_DIR, *parts)


def homepage():
    """The plugin's homepage from metadata.txt (its README), or "" when it has none."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    return parser.get("general", "homepage", fallback="").strip()


def read_help(algorithm_id):
    """The HTML help of an algorithm, from ``resources/help/<id>.html``."""
    path = resource_path("help", f"{algorithm_id}.html")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


class FeedbackAdapter:
    """Plain callables for the core, backed by a QgsProcessingFeedback."""

    def __init__(self, feedback, start=0.0, share=100.0):
        self._feedback = feedback
        self._start = start
        self._share = share

    def progress(self, fraction):
        """Report progress as a fraction of this stage."""
        self._feedback.setProgress(self._start + self._share * fraction)

    def is_cancelled(self):
        """True once the user cancelled."""
        return self._feedback.isCanceled()

    def log(self, message):
        """Informative message."""
        self._feedback.pushInfo(message)


def processing_error(error):
    """The QgsProcessingException for a core error (the only place they are converted)."""
    if isinstance(error, LandslideMapperError):  # CancelledError included
        return QgsProcessingException(str(error))
    return QgsProcessingException(f"Unexpected error: {error}")


class LandslideAlgorithm(QgsProcessingAlgorithm):
    """Base of the plugin's algorithms (subclasses QgsProcessingAlgorithm directly).

    Subclasses set ``TAGS`` (Toolbox search words), ``HELP_ANCHOR`` (the README section) and
    ``NEEDS_ONNXRUNTIME`` (refused, with the fix, while onnxruntime is missing). All live in one Toolbox group.
    """

    TAGS = ()
    HELP_ANCHOR = ""
    NEEDS_ONNXRUNTIME = False

    def tr(self, text):
        """Translate ``text`` in the plugin's context."""
        return QCoreApplication.translate("LandslideMapper", text)

    def group(self):
        """Toolbox group."""
        return self.tr("Landslide mapping")

    def groupId(self):  # noqa: N802 (QGIS API name)
        """Stable group id."""
        return "landslidemapping"

    def canExecute(self):  # noqa: N802 (QGIS API name)
        """Refuse to run, with the fix, when the algorithm needs onnxruntime and it is missing."""
        reason = onnxruntime_missing_reason() if self.NEEDS_ONNXRUNTIME else None
        return (False, reason) if reason else (True, "")

    def createInstance(self):  # noqa: N802 (QGIS API name)
        """A fresh instance per run."""
        return type(self)()

    def icon(self):
        """The plugin icon."""
        return icon()

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Help from ``resources/help/<id>.html``."""
        return read_help(self.name())

    def tags(self):
        """Words the Toolbox search finds the algorithm by."""
        return [self.tr(tag) for tag in self.TAGS]

    def helpUrl(self):  # noqa: N802 (QGIS API name)
        """The README section of the algorithm (the dialog's Help button)."""
        base = homepage()
        return f"{base}#{self.HELP_ANCHOR}" if base and self.HELP_ANCHOR else ""
