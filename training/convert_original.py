"""Convert the authors' published Keras model (``M_ALL_006.hdf5``) to a carded ONNX model.

Prakash, Manconi & Loew (2021) published their combined-training model as a
Keras HDF5 file saved with TensorFlow 1.15. This module reads it with h5py
(no TF 1.x Keras needed), rebuilds the paper's network with the authors' layer
names (:func:`training.network.build_resunet`), copies every weight by layer
name and exports the ``prediction`` output with a model card that reproduces
the authors' preprocessing (:func:`original_card`), so the plugin runs it as
it runs any other model.

What the file settles, and how:

* **Width** from the kernel of ``res5a_branch2a`` (256 filters at width 1).
* **Projection shortcut kernel** (1x1 or 3x3) from the kernels of the
  ``*_branch1`` layers; they must all agree.
* **Head kernel** (1x1 or 3x3) from the kernel of ``prediction``.
* **Up-sampling**: a learned up-sampling (``Conv2DTranspose``) shows up as
  weights the network does not have and is refused; with parameter-free
  up-sampling the interpolation (bilinear or nearest) is read from the
  ``model_config`` a full-model save carries.
* **Topology** (what weights cannot show: strides, concatenation order,
  block order, activations): when the file has a ``model_config``, the graph
  that computes ``prediction`` is compared with the rebuilt one, layer by
  layer, up to layer names of parameter-free layers and dropout (an identity
  at inference). Batch-normalisation epsilons are taken from it. A file
  without ``model_config`` (a weights-only save) is refused unless
  ``allow_unverified_topology`` is set, because then interpolation and
  concatenation order are the builder's assumptions.

Anything missing, mis-shaped, extra or different raises
:class:`ConversionError` naming the layers. Deep-supervision heads are not
part of the exported graph and are not read.

The file is read by :mod:`training.original_h5`; the network variant is settled
and the topology checked by :mod:`training.original_topology`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, List, Optional, Sequence

from model.card import OUTPUT_NAME, ModelCard, TerrainRecipe, standard_inputs

from .original_h5 import (
    ConversionError,
    ConversionWarning,
    FileCheck,
    LegacyWeights,
    check_file,
    read_legacy_h5,
)
from .original_topology import (
    Architecture,
    _listing,
    check_topology,
    required_layers,
    settle_architecture,
    unexpected_layers,
)

PAPER = ("Prakash, N., Manconi, A. & Loew, S. (2021). A new strategy to map landslides with a generalized "
         "convolutional neural network. Scientific Reports 11, 9722. https://doi.org/10.1038/s41598-021-89015-8")
AUTHORS_REPOSITORY = "https://github.com/nprksh/landslide-mapping-with-cnn"

# The authors' setting (paper; notebook LS_mapping.ipynb of their repository).
GSD_M = 6.0
TILE_PX = 224
CONTEXT_PX = 56          # 224 px tiles of which the central 112 px are kept
THRESHOLD = 0.5


@dataclasses.dataclass
class ConversionReport:
    """Outcome of :func:`convert_original`."""

    output_path: str
    file_check: FileCheck
    architecture: Architecture
    loaded_layers: int
    ignored_layers: List[str]
    parity_max_abs_diff: float
    warnings: List[str]
    card: ModelCard


# --------------------------------------------------------------------------- network


def build_network(architecture: Architecture) -> Any:
    """The paper's network in the file's variant (regularisation and dropout do not matter at inference)."""
    from training.network import build_resunet

    return build_resunet(l2=0.0, name="resunet_m_all_006", **architecture.builder_kwargs())


def load_weights(model: Any, weights: LegacyWeights, names: Sequence[str]) -> int:
    """Copy the weights of layers ``names`` from the file into ``model``, by layer and weight name.

    Nothing is assigned unless every layer is present with every weight of
    the right shape.

    Returns:
        The number of layers loaded.

    Raises:
        ConversionError: Listing missing layers, missing weights and
            mis-shaped weights.
    """
    missing_layers: List[str] = []
    missing_weights: List[str] = []
    misshaped: List[str] = []
    assignments = []
    for name in names:
        stored = weights.layers.get(name)
        if stored is None:
            missing_layers.append(name)
            continue
        layer = model.get_layer(name)
        expected = {variable.path.split("/")[-1]: variable for variable in layer.weights}
        for short, variable in expected.items():
            if short not in stored:
                missing_weights.append(f"{name}/{short}")
                continue
            value = stored[short]
            if tuple(value.shape) != tuple(variable.shape):
                misshaped.append(f"{name}/{short} (file {tuple(value.shape)}, network {tuple(variable.shape)})")
            else:
                assignments.append((variable, value))
        for short in sorted(set(stored) - set(expected)):
            misshaped.append(f"{name}/{short} (in the file, not in the network)")
    problems = []
    if missing_layers:
        problems.append(f"missing layers: {_listing(missing_layers)}")
    if missing_weights:
        problems.append(f"missing weights: {_listing(missing_weights)}")
    if misshaped:
        problems.append(f"mis-shaped layers: {_listing(misshaped)}")
    if problems:
        raise ConversionError("The file does not fit the paper's network: " + "; ".join(problems) + ".")
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return len(names)


# --------------------------------------------------------------------------- card and conversion


def original_card(file_check: FileCheck, architecture: Architecture) -> ModelCard:
    """The card of the converted model: the authors' preprocessing, tiling and threshold."""
    return ModelCard(
        name="prakash2021-m-all-006",
        version=f"sha256:{file_check.sha256[:12]}",
        description=("The combined-training ResUNet of Prakash, Manconi & Loew (2021), converted without "
                     "retraining from the authors' published Keras file to ONNX. Inputs as in the authors' code: "
                     "8-bit RGB and hillshade scaled x/127.5 - 1, slope in degrees x/45 - 1, 6 m base resolution, "
                     "224 px tiles of which the central 112 px are kept."),
        inputs=standard_inputs(),
        output_name=OUTPUT_NAME,
        gsd_m=GSD_M,
        tile_px=TILE_PX,
        context_px=CONTEXT_PX,
        threshold=THRESHOLD,
        terrain=TerrainRecipe(),
        provenance={
            "source": PAPER,
            "authors_repository": AUTHORS_REPOSITORY,
            "weights_file": os.path.basename(file_check.path),
            "weights_sha256": file_check.sha256,
            "weights_bytes": file_check.size_bytes,
            "is_published_file": file_check.is_published,
            "trained_on": ("the authors' combined training on event landslide inventories (see the paper); "
                           "not retrained or evaluated here"),
            "reported_in_paper": ("MCC up to 0.69 for the combined-training model mapping new, unseen regions "
                                  "(paper abstract); reported by the authors, not measured here"),
            "architecture": dataclasses.asdict(architecture),
            "converted_by": "landslide_mapper training.convert_original",
        },
        metrics={},
    )


def convert_original(h5_path: str, out_path: str, overwrite: bool = False,
                     sizes_px: Optional[Sequence[int]] = None, tolerance: Optional[float] = None,
                     allow_unverified_topology: bool = False) -> ConversionReport:
    """Convert the authors' HDF5 model to a carded ONNX file (see the module docstring).

    Args:
        h5_path: The Keras HDF5 file (``M_ALL_006.hdf5``).
        out_path: Destination ``.onnx`` file (written only after the parity check).
        overwrite: Replace an existing output.
        sizes_px: Square sizes of the onnxruntime/Keras parity check
            (default: those of :func:`training.export.export_onnx`).
        tolerance: Largest accepted onnxruntime/Keras difference (default:
            :data:`training.export.PARITY_TOLERANCE`).
        allow_unverified_topology: Convert a file without ``model_config``.

    Returns:
        A :class:`ConversionReport`; warnings are also issued as
        :class:`ConversionWarning`.

    Raises:
        ConversionError: If the file cannot be read or does not fit.
    """
    from training.export import PARITY_SIZES_PX, PARITY_TOLERANCE, ExportError, export_onnx

    if os.path.exists(out_path) and not overwrite:
        raise ConversionError(f"{out_path} exists; pass --overwrite to replace it.")
    messages: List[str] = []

    def note(message: str) -> None:
        messages.append(message)
        warnings.warn(message, ConversionWarning, stacklevel=3)

    file_check = check_file(h5_path)
    if file_check.warning():
        note(file_check.warning())
    weights = read_legacy_h5(h5_path)
    architecture = settle_architecture(weights, allow_unverified_topology)
    if not architecture.topology_checked:
        note("The file has no model_config: only weight names and shapes were checked; up-sampling (bilinear) "
             "and concatenation order are the builder's assumptions.")
    model = build_network(architecture)
    ignored, unknown = unexpected_layers(model, weights)
    if unknown:
        raise ConversionError(
            f"The file has weighted layers the network does not have: {_listing(unknown)} (a learned "
            "up-sampling such as Conv2DTranspose, or another architecture); they cannot be placed.")
    loaded = load_weights(model, weights, required_layers(model))
    for message in check_topology(model, weights):
        note(message)
    card = original_card(file_check, architecture)
    try:
        worst = export_onnx(model, card, out_path, overwrite=overwrite,
                            sizes_px=PARITY_SIZES_PX if sizes_px is None else sizes_px,
                            tolerance=PARITY_TOLERANCE if tolerance is None else tolerance)
    except ExportError as exc:
        raise ConversionError(str(exc)) from exc
    return ConversionReport(output_path=out_path, file_check=file_check, architecture=architecture,
                            loaded_layers=loaded, ignored_layers=ignored, parity_max_abs_diff=worst,
                            warnings=messages, card=card)
