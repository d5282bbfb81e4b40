"""Processing algorithm "Evaluate landslide map" (id ``evaluatelandslidemap``).

A thin layer over :mod:`model.evaluation`: parameters become an
:class:`~model.evaluation.EvaluationRequest`, the core streams the comparison
window by window and writes the outputs; this class reports them.
"""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..model.errors import LandslideMapperError
from ..model.evaluation import DEFAULT_PIXEL_SIZE_M, DEFAULT_WINDOW_PX, EvaluationRequest, check_request, evaluate
from .base import FeedbackAdapter, LandslideAlgorithm, processing_error
from .inputs import optional_raster_input, optional_vector_input, raster_destination, work_dir
from .naming import parameter_label
from .styling import apply_style_on_load


class EvaluateLandslideMap(LandslideAlgorithm):
    """Compare a landslide map (mask raster or polygons) with an inventory."""

    PREDICTION_RASTER = "PREDICTION_RASTER"
    PREDICTION_POLYGONS = "PREDICTION_POLYGONS"
    INVENTORY = "INVENTORY"
    EVALUATION_AREA = "EVALUATION_AREA"
    MASK_RASTER = "MASK_RASTER"
    VALID_MASK = "VALID_MASK"  # the first release's convention (non-zero = valid); hidden, still accepted
    PIXEL_SIZE = "PIXEL_SIZE"
    WINDOW_SIZE = "WINDOW_SIZE"
    OUTPUT_CONFUSION = "OUTPUT_CONFUSION"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    TP, FP, FN, TN = "TP", "FP", "FN", "TN"
    PRECISION, RECALL, F1, MCC = "PRECISION", "RECALL", "F1", "MCC"

    HELP_ANCHOR = "evaluate-a-landslide-map"
    TAGS = ("landslide", "landslides", "inventory", "accuracy", "validation", "confusion matrix", "precision",
            "recall", "f1", "mcc", "score", "compare", "earthquake", "storm")

    def name(self):
        """Stable id; never change it."""
        return "evaluatelandslidemap"

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Toolbox tooltip."""
        return self.tr("Scores a landslide map (mask or polygons) against a landslide inventory: true and false "
                       "detections, misses, precision, recall, F1, MCC.")

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Name in the Toolbox."""
        return self.tr("Evaluate landslide map")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declare parameters and outputs."""
        polygons = [QgsProcessing.TypeVectorPolygon]
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.PREDICTION_RASTER, self.tr("Predicted landslide mask (raster: 1 landslide, 0 none, nodata not evaluated)"),
            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.PREDICTION_POLYGONS, self.tr("Predicted landslide polygons (instead of a mask raster)"), polygons,
            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INVENTORY, self.tr("Landslide inventory (reference polygons)"), polygons))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.EVALUATION_AREA, self.tr("Evaluation area"), polygons, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.MASK_RASTER, self.tr("Areas to leave out (raster: non-zero = leave out, as for mapping)"),
            optional=True))
        legacy = QgsProcessingParameterRasterLayer(
            self.VALID_MASK, self.tr("Valid-data mask raster (non-zero = valid; old parameter)"), optional=True)
        legacy.setFlags(legacy.flags() | QgsProcessingParameterDefinition.FlagHidden)
        self.addParameter(legacy)
        self.addParameter(QgsProcessingParameterNumber(
            self.PIXEL_SIZE, self.tr("Pixel size for predicted polygons (m)"), QgsProcessingParameterNumber.Double,
            DEFAULT_PIXEL_SIZE_M, optional=True, minValue=0.01))  # optional with a default: see the window size
        window = QgsProcessingParameterNumber(
            self.WINDOW_SIZE, self.tr("Window size (px)"), QgsProcessingParameterNumber.Integer, DEFAULT_WINDOW_PX,
            optional=True, minValue=16, maxValue=16384)
        # Optional with a default: QGIS 3.22's modeler refuses a child whose non-optional number is left unset.
        window.setFlags(window.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(window)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFUSION, self.tr("Map vs inventory"),
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Evaluation report"), self.tr("HTML files (*.html)"),
            optional=True, createByDefault=True))
        for name, description in (
            (self.TP, "True positives (pixels)"),
            (self.FP, "False positives (pixels)"),
            (self.FN, "False negatives (pixels)"),
            (self.TN, "True negatives (pixels)"),
            (self.PRECISION, "Precision"),
            (self.RECALL, "Recall"),
            (self.F1, "F1 score"),
            (self.MCC, "Matthews correlation coefficient"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(description)))

    # ------------------------------------------------------------------ parameters -> request

    def _gdal_raster(self, parameters, context, name):
        """Band 1 of a raster layer parameter that GDAL reads and its layer name, or (None, None) when not set."""
        raster = optional_raster_input(self, parameters, context, name)
        return (None, None) if raster is None else (raster, self.parameterAsRasterLayer(parameters, name, context).name())

    def _vector_name(self, parameters, context, name, source):
        """The layer's name in QGIS, else the file's."""
        layer = self.parameterAsVectorLayer(parameters, name, context)
        if layer is not None and layer.name():
            return layer.name()
        return source.layer or os.path.basename(source.path)

    def _request(self, parameters, context, feedback, with_outputs):
        """The core request; raises QgsProcessingException on unusable parameters."""
        has_raster = bool(parameters.get(self.PREDICTION_RASTER))
        has_polygons = bool(parameters.get(self.PREDICTION_POLYGONS))
        if has_raster == has_polygons:
            raise QgsProcessingException(
                f"{parameter_label(self, self.PREDICTION_RASTER)} / {parameter_label(self, self.PREDICTION_POLYGONS)}: "
                "give the prediction either as a mask raster or as polygons: "
                + ("not both." if has_raster else "neither is set."))
        names = []
        prediction_raster, raster_name = self._gdal_raster(parameters, context, self.PREDICTION_RASTER)
        valid_mask, valid_name = self._gdal_raster(parameters, context, self.VALID_MASK)
        exclude_mask, exclude_name = self._gdal_raster(parameters, context, self.MASK_RASTER)
        vectors = {}
        for key in (self.PREDICTION_POLYGONS, self.INVENTORY, self.EVALUATION_AREA):
            vectors[key] = optional_vector_input(self, parameters, context, key, feedback)
        if vectors[self.INVENTORY] is None:
            raise QgsProcessingException(f"{parameter_label(self, self.INVENTORY)}: the inventory is required.")
        if prediction_raster is not None:
            names.append(("Predicted mask", raster_name))
        for key, role in ((self.PREDICTION_POLYGONS, "Predicted polygons"), (self.INVENTORY, "Inventory"),
                          (self.EVALUATION_AREA, "Evaluation area")):
            if vectors[key] is not None:
                names.append((role, self._vector_name(parameters, context, key, vectors[key])))
        if exclude_mask is not None:
            names.append(("Left out (non-zero)", exclude_name))
        if valid_mask is not None:
            names.append(("Valid-data mask", valid_name))
        report = None
        if with_outputs and parameters.get(self.OUTPUT_REPORT) is not None:
            report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None
            if report and os.path.splitext(report)[1].lower() not in (".html", ".htm"):
                raise QgsProcessingException(
                    f"{parameter_label(self, self.OUTPUT_REPORT)}: {report}: the report is an HTML page; "
                    "use a .html file name.")
        return EvaluationRequest(
            inventory=vectors[self.INVENTORY],
            prediction_raster=prediction_raster,
            prediction_polygons=vectors[self.PREDICTION_POLYGONS],
            evaluation_area=vectors[self.EVALUATION_AREA],
            valid_mask=valid_mask,
            exclude_mask=exclude_mask,
            pixel_size_m=self.parameterAsDouble(parameters, self.PIXEL_SIZE, context),
            window_px=self.parameterAsInt(parameters, self.WINDOW_SIZE, context),
            confusion_path=raster_destination(self, parameters, context, self.OUTPUT_CONFUSION) if with_outputs else None,
            report_path=report,
            input_names=tuple(names),
            work_dir=work_dir(),
        )

    # ------------------------------------------------------------------ run

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Refuse before running: both or neither prediction, missing CRS, disjoint inputs, empty area."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            # A real feedback: exporting a layer OGR cannot read (a memory layer) dereferences it.
            check_request(self._request(parameters, context, QgsProcessingFeedback(), with_outputs=False))
        except (QgsProcessingException, LandslideMapperError) as error:
            return False, str(error)
        except Exception as error:  # noqa: BLE001 - an exception escaping this C++ virtual aborts qgis_process
            return False, f"The inputs cannot be checked: {error}"
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Resolve inputs, run the core's streaming comparison, return every output."""
        request = self._request(parameters, context, feedback, with_outputs=True)
        adapter = FeedbackAdapter(feedback)
        try:
            result = evaluate(request, adapter.progress, adapter.is_cancelled, adapter.log)
        except LandslideMapperError as error:
            raise processing_error(error)
        counts = result.confusion
        outputs = {
            self.OUTPUT_CONFUSION: result.confusion_path,
            self.OUTPUT_REPORT: result.report_path,
            self.TP: counts.tp,
            self.FP: counts.fp,
            self.FN: counts.fn,
            self.TN: counts.tn,
            self.PRECISION: counts.precision,
            self.RECALL: counts.recall,
            self.F1: counts.f1,
            self.MCC: counts.mcc,
        }
        if result.confusion_path:
            apply_style_on_load(context, result.confusion_path, "confusion.qml")
        areas = result.areas_m2
        feedback.pushInfo(
            f"TP {counts.tp} ({areas['tp']:.0f} m²), FP {counts.fp} ({areas['fp']:.0f} m²), "
            f"FN {counts.fn} ({areas['fn']:.0f} m²), TN {counts.tn} ({areas['tn']:.0f} m²); precision "
            f"{counts.precision:.4f}, recall {counts.recall:.4f}, F1 {counts.f1:.4f}, MCC {counts.mcc:.4f}.")
        return outputs
