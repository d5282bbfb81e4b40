"""Processing algorithm "Adapt model to event" (id ``adaptmodeltoevent``).

Thin over the trainer: the inputs are checked here with the core
(:func:`model.adaptation_inputs.check_adaptation`: no TensorFlow), then
``python -m training adapt`` runs in the trainer's own Python
(:mod:`.trainer_process`) and writes into a scratch folder; the model gets its
final name only when the trainer succeeded.
"""

import json
import os
import shutil
import tempfile
import time

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
)

from ..model.adaptation_inputs import AdaptationRequest, check_adaptation
from ..model.errors import LandslideMapperError
from .base import LandslideAlgorithm, processing_error
from .default_model import default_model_path
from .event_inputs import EventInputs
from .inputs import optional_raster_input, optional_vector_input, raster_input, work_dir
from .naming import parameter_label
from .trainer_process import SETTING_PYTHON_LABEL, run_trainer, trainer_python

DEFAULT_MINUTES = 10.0


class AdaptModelToEvent(EventInputs, LandslideAlgorithm):
    """Fine-tune a carded model on the landslides an analyst mapped in part of one event."""

    LANDSLIDES = "LANDSLIDES"
    AREA = "AREA"
    MODEL = "MODEL"
    MINUTES = "MINUTES"
    SEED = "SEED"
    OUTPUT = "OUTPUT"
    MCC = "MCC"
    F1 = "F1"
    PRECISION = "PRECISION"
    RECALL = "RECALL"
    THRESHOLD = "THRESHOLD"
    BASE_MCC = "BASE_MCC"

    HELP_ANCHOR = "adapt-model-to-event"
    NEEDS_ONNXRUNTIME = True  # the checks read the base model
    TAGS = ("landslide", "landslides", "fine-tune", "fine-tuning", "transfer learning", "adapt", "train", "training",
            "deep learning", "cnn", "resunet", "onnx", "event", "inventory")

    def name(self):
        """Stable id; never change it."""
        return "adaptmodeltoevent"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Name in the Toolbox."""
        return self.tr("Adapt model to event")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Toolbox tooltip."""
        return self.tr("Fine-tunes a landslide model on the landslides you mapped in part of one event, so that it "
                       "maps the rest of that event better; writes a new ONNX model with its scores.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Parameters as in *Map event landslides*, plus the analyst's mapping, the budget and the output model."""
        for parameter in self.event_parameters():
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.LANDSLIDES, self.tr("Landslides you mapped (polygons)"), [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.AREA, self.tr("Area where your mapping is complete (polygons)"), [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(self.mask_polygons_parameter())
        default_model = default_model_path()
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, self.tr("Base model (ONNX file with a model card; empty: the default model)"),
            extension="onnx", defaultValue=default_model, optional=default_model is not None))
        self.addParameter(QgsProcessingParameterNumber(
            self.MINUTES, self.tr("Time budget, start to adapted model (minutes)"), QgsProcessingParameterNumber.Double,
            DEFAULT_MINUTES, minValue=0.5, maxValue=24 * 60.0))
        advanced = self.event_advanced_parameters() + (
            QgsProcessingParameterNumber(self.SEED, self.tr("Random seed (validation split and training)"),
                                         QgsProcessingParameterNumber.Integer, 0, optional=True, minValue=0),
        )
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, self.tr("Adapted model"), self.tr("ONNX model (*.onnx)")))
        for name, description in (
            (self.MCC, "Validation MCC of the adapted model"),
            (self.F1, "Validation F1 of the adapted model"),
            (self.PRECISION, "Validation precision of the adapted model"),
            (self.RECALL, "Validation recall of the adapted model"),
            (self.THRESHOLD, "Threshold chosen on the validation part (in the new model's card)"),
            (self.BASE_MCC, "Validation MCC of the base model (its own threshold)"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(description)))

    def _request(self, parameters, context, feedback):
        """The core request; raises QgsProcessingException on unusable parameters."""
        model = self.parameterAsFile(parameters, self.MODEL, context) or default_model_path()
        if not model:
            raise QgsProcessingException(f"{parameter_label(self, self.MODEL)}: no base model given and no default "
                                         "model is installed; choose an ONNX model file.")
        return AdaptationRequest(
            base_model=model,
            pre=raster_input(self, parameters, context, self.PRE_IMAGE, self.band_numbers(parameters, context, self.PRE_BANDS),
                             parameter_label(self, self.PRE_BANDS)),
            post=raster_input(self, parameters, context, self.POST_IMAGE,
                              self.band_numbers(parameters, context, self.POST_BANDS),
                              parameter_label(self, self.POST_BANDS)),
            dem=self.dem_input(parameters, context),
            landslides=optional_vector_input(self, parameters, context, self.LANDSLIDES, feedback),
            area=optional_vector_input(self, parameters, context, self.AREA, feedback),
            radiometry=self.radiometry(parameters, context),
            mask_raster=optional_raster_input(self, parameters, context, self.MASK_RASTER),
            mask_polygons=optional_vector_input(self, parameters, context, self.MASK_POLYGONS, feedback),
            mask_buffer_m=self.mask_buffer_m(parameters, context),
            minutes=self.parameterAsDouble(parameters, self.MINUTES, context),
            seed=self.parameterAsInt(parameters, self.SEED, context) if parameters.get(self.SEED) not in (None, "") else 0,
        )

    def _output_path(self, parameters, context):
        path = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        label = parameter_label(self, self.OUTPUT)
        if not path:
            raise QgsProcessingException(f"{label}: choose the ONNX file to write.")
        if os.path.splitext(path)[1].lower() != ".onnx":
            raise QgsProcessingException(f"{label}: {path}: the adapted model is an ONNX file; use a .onnx file name.")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise QgsProcessingException(f"{label}: the folder {folder} does not exist or cannot be written.")
        return path

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Refuse before running: polygons outside the area, no landslide, an area smaller than a tile..."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            check_adaptation(self._request(parameters, context, None))
        except (QgsProcessingException, LandslideMapperError) as error:
            return False, str(error)
        except Exception as error:  # noqa: BLE001 - an exception escaping this C++ virtual aborts qgis_process
            return False, f"The inputs cannot be checked: {error}"
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Check the inputs and the trainer's Python, run the trainer, then give the model its final name."""
        started_at = time.time()  # the budget counts from here: the checks below and the trainer's start-up included
        output = self._output_path(parameters, context)
        request = self._request(parameters, context, feedback)
        try:
            plan = check_adaptation(request)
        except LandslideMapperError as error:
            raise processing_error(error) from None
        for note in plan.notes:
            feedback.pushInfo(note)
        python = trainer_python(SETTING_PYTHON_LABEL)
        feedback.pushInfo(f"Training runs in {python}, at most {request.minutes:g} minutes.")
        scratch = tempfile.mkdtemp(prefix="landslide_adapt_", dir=work_dir())
        try:
            model = os.path.join(scratch, "adapted.onnx")
            result_path = os.path.join(scratch, "result.json")
            command = [python, "-m", "training", "adapt", "--progress", "--output", model, "--result-json", result_path,
                       "--started-at", f"{started_at:.3f}", *_request_arguments(request)]
            try:
                run_trainer(command, feedback)
            except LandslideMapperError as error:
                raise processing_error(error) from None
            with open(result_path, encoding="utf-8") as handle:
                result = json.load(handle)
            _move_into_place(model, output)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        scores = result["scores"]
        feedback.pushInfo(f"Wrote {output}: validation MCC {scores['mcc']:.3f} (base model "
                          f"{result['base_scores']['mcc']:.3f}), threshold {result['threshold']:g}.")
        return {self.OUTPUT: output, self.MCC: scores["mcc"], self.F1: scores["f1"],
                self.PRECISION: scores["precision"], self.RECALL: scores["recall"], self.THRESHOLD: result["threshold"],
                self.BASE_MCC: result["base_scores"]["mcc"]}


def _request_arguments(request):
    """The command-line arguments of ``python -m training adapt`` for a request."""
    def source(vector):
        return vector.path + (f"|layername={vector.layer}" if vector.layer else "")

    arguments = ["--base-model", request.base_model, "--pre", request.pre.path,
                 "--pre-bands", ",".join(str(b) for b in request.pre.bands), "--post", request.post.path,
                 "--post-bands", ",".join(str(b) for b in request.post.bands), "--dem", request.dem.path,
                 "--dem-band", str(request.dem.bands[0]), "--landslides", source(request.landslides),
                 "--area", source(request.area), "--radiometry", request.radiometry,
                 "--mask-buffer", repr(float(request.mask_buffer_m)), "--minutes", repr(float(request.minutes)),
                 "--seed", str(request.seed)]
    if request.mask_raster is not None:
        arguments += ["--mask-raster", request.mask_raster.path]
    if request.mask_polygons is not None:
        arguments += ["--mask-polygons", source(request.mask_polygons)]
    return arguments


def _move_into_place(source, destination):
    """Give the written model its final name in one step (a copy then a rename when across file systems)."""
    partial = destination + ".partial"
    shutil.copyfile(source, partial)
    os.replace(partial, destination)
