"""The model card: the one contract between the trainer and the plugin.

A card is a versioned JSON document stored in the ONNX file's metadata under
:data:`CARD_METADATA_KEY`. It says which tensors the graph takes and how raw
values are scaled into them, how terrain is derived from the DEM, the ground
resolution and tile sizes the model was trained at, the default threshold and
minimum polygon area, where the model comes from and how well it scored.

This module is the only code that knows the card's key names. The trainer
writes cards with :func:`write_card`; the plugin reads them with
:func:`model.session.read_card` (which needs onnxruntime) and checks them
against the graph with :func:`check_card_matches_graph`. This module imports
no other module of the package but :mod:`model.errors`.

Scaling convention: for every channel, ``model_value = raw_value * scale + offset``
where ``raw_value`` is an 8-bit-equivalent image value (0..255), a gdaldem
hillshade value (0..255) or a slope in degrees.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

from .errors import ModelCardError

CARD_METADATA_KEY = "landslide_mapper.model_card"
SCHEMA_VERSION = 1

ROLE_PRE_IMAGE = "pre_image"
ROLE_POST_IMAGE = "post_image"
ROLE_TERRAIN = "terrain"
ROLES = (ROLE_PRE_IMAGE, ROLE_POST_IMAGE, ROLE_TERRAIN)

INPUT_NAMES = ROLES
"""Tensor names of the standard network's inputs (each named after its role)."""
OUTPUT_NAME = "prediction"
"""Name of the probability output of the standard network and of its exported graph."""
DEEP_SUPERVISION_PREFIX = "conv_out_"
"""Training-only outputs ``conv_out_<level>``; they never reach an exported graph."""
REFLECTANCE_SATURATION = 2000.0
"""Sentinel-2 L2A reflectance (x10000) mapped to 255 in 8-bit images, as in ESA's L2A TCI."""
SIZE_MULTIPLE_PX = 32
"""The standard network halves its input five times: window and tile sizes are multiples of this."""

RGB_CHANNELS = ("red", "green", "blue")
TERRAIN_CHANNELS = ("hillshade", "slope")
CHANNELS_BY_ROLE = {
    ROLE_PRE_IMAGE: RGB_CHANNELS,
    ROLE_POST_IMAGE: RGB_CHANNELS,
    ROLE_TERRAIN: TERRAIN_CHANNELS,
}


@dataclass(frozen=True)
class ChannelScaling:
    """How one raw channel becomes a model value: ``raw * scale + offset``."""

    name: str
    scale: float
    offset: float


@dataclass(frozen=True)
class InputSpec:
    """One input tensor of the graph (NHWC, float32)."""

    tensor_name: str
    role: str
    channels: Tuple[ChannelScaling, ...]


@dataclass(frozen=True)
class TerrainRecipe:
    """How hillshade and slope are derived from the DEM (gdaldem's vocabulary).

    ``hillshade_integer`` rounds hillshade to whole numbers as gdaldem's Byte
    output does. With ``fill_missing_neighbours`` a missing neighbour (nodata,
    or outside the DEM) takes the centre pixel's elevation, which is gdaldem's
    ``-compute_edges`` rule for nodata neighbours (at the raster's own edge
    gdaldem extrapolates instead); terrain, and so predictions, then reach the
    edge of the DEM and of nodata holes.
    """

    gradient: str = "Horn"
    azimuth_deg: float = 315.0
    altitude_deg: float = 45.0
    z_factor: float = 1.0
    slope_units: str = "degrees"
    hillshade_integer: bool = True
    fill_missing_neighbours: bool = True


NORMALISATION_NONE = "none"
NORMALISATION_SCENE = "scene_dark_median"
NORMALISATION_METHODS = (NORMALISATION_NONE, NORMALISATION_SCENE)

TTA_NONE = "none"
TTA_FLIPS = "flips"
TTA_DIHEDRAL = "dihedral"
TTA_MODES = (TTA_NONE, TTA_FLIPS, TTA_DIHEDRAL)
"""``test_time_augmentation``: the network runs once per window (none), on the window and its three flips
(flips: up-down, left-right, both), or on all eight symmetries of the square (dihedral), and the probabilities
are averaged (:mod:`model.orientations`)."""


@dataclass(frozen=True)
class ImageNormalisation:
    """How each image is normalised over the whole event before it reaches the network.

    ``none``: the 8-bit-equivalent values go in as they are (cards before this
    field). ``scene_dark_median``: per image and band, over the valid pixels of
    the whole event on the model grid, the ``dark_quantile`` (haze, path
    radiance, offsets) maps to 0 and the ``reference_quantile`` (the typical
    surface: gain, sun, season) to ``reference_value``; linear in between and
    beyond, clipped to 0..255. Computed by :mod:`model.preprocess` for the
    plugin and the trainer alike. A scene with fewer than
    ``min_valid_pixels`` valid pixels in an image is refused.
    """

    method: str = NORMALISATION_NONE
    dark_quantile: float = 0.01
    reference_quantile: float = 0.5
    reference_value: float = 48.0
    min_valid_pixels: int = 10000


@dataclass(frozen=True)
class ModelCard:
    """Everything the plugin needs to run a model, and what a user must know of it.

    Attributes:
        name: Short model name shown to users.
        version: Model version string.
        description: One paragraph on what the model is.
        inputs: The graph's input tensors, their roles and scaling.
        output_name: Name of the probability output (N, H, W, 1), values 0..1.
        gsd_m: Ground sampling distance the model was trained at, in metres.
        tile_px: Training tile size in pixels.
        context_px: Margin in pixels discarded on each side of a window.
        size_multiple_px: Window sizes must be a multiple of this.
        threshold: Default probability threshold for the landslide mask.
        min_area_m2: Default minimum polygon area in square metres.
        terrain: Recipe for hillshade and slope.
        reflectance_saturation: Surface reflectance (x10000) mapped to 255 when
            converting Sentinel-2 L2A values to 8-bit (2000 as in ESA's L2A TCI).
        image_normalisation: Scene-adaptive normalisation of both images
            (absent in older cards: none).
        test_time_augmentation: One of :data:`TTA_MODES` (absent in older
            cards: none): the probability of a window is the mean over its
            flipped copies; costs one network run per copy.
        provenance: Free-form facts: trained_on, training_events, created, ...
        metrics: Measured scores (mcc, f1, precision, recall) and evaluated_on.
        schema_version: Version of this card format.
    """

    name: str
    version: str
    description: str
    inputs: Tuple[InputSpec, ...]
    output_name: str
    gsd_m: float
    tile_px: int
    context_px: int
    size_multiple_px: int = SIZE_MULTIPLE_PX
    threshold: float = 0.5
    min_area_m2: float = 100.0
    terrain: TerrainRecipe = field(default_factory=TerrainRecipe)
    reflectance_saturation: float = REFLECTANCE_SATURATION
    image_normalisation: ImageNormalisation = field(default_factory=ImageNormalisation)
    test_time_augmentation: str = TTA_NONE
    provenance: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def input_for_role(self, role: str) -> InputSpec:
        """The input spec that carries ``role``."""
        for spec in self.inputs:
            if spec.role == role:
                return spec
        raise ModelCardError(f"The model card has no input for '{role}'.")

    def to_json(self) -> str:
        """Serialise to the JSON stored in the ONNX metadata."""
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    def __post_init__(self) -> None:
        _check_card(self)


READING_FIELDS: Tuple[str, ...] = ("inputs", "image_normalisation", "terrain", "reflectance_saturation")
"""The card fields that say how a network's input arrays are made from the images and the DEM: two networks
agreeing on all of them can be fed the same arrays (an ensemble's members, a teacher and its student)."""


def reading_differences(card: ModelCard, other: ModelCard, also: Sequence[str] = ()) -> List[str]:
    """The :data:`READING_FIELDS` (and the fields ``also`` names) in which ``other`` differs from ``card``."""
    return [name for name in (*READING_FIELDS, *also) if getattr(card, name) != getattr(other, name)]


def standard_inputs(
    image_scale: float = 1 / 127.5,
    image_offset: float = -1.0,
    hillshade_scale: float = 1 / 127.5,
    hillshade_offset: float = -1.0,
    slope_scale: float = 1 / 45.0,
    slope_offset: float = -1.0,
) -> Tuple[InputSpec, ...]:
    """The three inputs of the paper's network with the authors' scaling.

    RGB and hillshade as ``x / 127.5 - 1``; slope in degrees as ``x / 45 - 1``.
    """

    def rgb(tensor_name: str) -> InputSpec:
        return InputSpec(
            tensor_name,
            tensor_name,
            tuple(ChannelScaling(c, image_scale, image_offset) for c in RGB_CHANNELS),
        )

    terrain = InputSpec(
        ROLE_TERRAIN,
        ROLE_TERRAIN,
        (
            ChannelScaling("hillshade", hillshade_scale, hillshade_offset),
            ChannelScaling("slope", slope_scale, slope_offset),
        ),
    )
    return (rgb(ROLE_PRE_IMAGE), rgb(ROLE_POST_IMAGE), terrain)


def card_from_json(text: str) -> ModelCard:
    """Parse and validate a card; raise :class:`ModelCardError` naming the problem."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ModelCardError(f"The model card is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelCardError("The model card is not a JSON object.")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelCardError(
            f"The model card has schema version {version!r}; this plugin reads version "
            f"{SCHEMA_VERSION}. Update the plugin or re-export the model."
        )
    data = _check_field_types(data)
    try:
        inputs = tuple(
            InputSpec(
                spec["tensor_name"],
                spec["role"],
                tuple(ChannelScaling(c["name"], float(c["scale"]), float(c["offset"])) for c in spec["channels"]),
            )
            for spec in data["inputs"]
        )
        terrain = TerrainRecipe(**data.get("terrain", {}))
        normalisation = ImageNormalisation(**data.get("image_normalisation", {}))
        kwargs = {k: data[k] for k in _REQUIRED_SCALARS}
        optional = {k: data[k] for k in _OPTIONAL_SCALARS if k in data}
        return ModelCard(
            inputs=inputs,
            terrain=terrain,
            image_normalisation=normalisation,
            provenance=dict(data.get("provenance", {})),
            metrics=dict(data.get("metrics", {})),
            **kwargs,
            **optional,
        )
    except KeyError as exc:
        raise ModelCardError(f"The model card lacks the field {exc.args[0]!r}.") from exc
    except TypeError as exc:
        raise ModelCardError(f"The model card has a malformed field: {exc}") from exc


# --------------------------------------------------------------------------- field types and ranges (issue 13)

_TEXT_FIELDS = ("name", "version", "description", "output_name", "test_time_augmentation")
_NUMBER_FIELDS = {  # field: (lowest, highest, lowest allowed itself)
    "gsd_m": (0.0, 1000.0, False),
    "threshold": (-float("inf"), float("inf"), True),  # its range is checked with the card (strictly 0..1)
    "min_area_m2": (0.0, 1e12, True),
    "reflectance_saturation": (0.0, 65535.0, False),
}
_WHOLE_FIELDS = {  # field: (lowest, highest)
    "tile_px": (1, 8192),
    "context_px": (0, 4096),
    "size_multiple_px": (1, 1024),
}
_TERRAIN_NUMBERS = {"azimuth_deg": (0.0, 360.0), "altitude_deg": (0.0, 90.0), "z_factor": (1e-9, 1e9)}
_TERRAIN_FLAGS = ("hillshade_integer", "fill_missing_neighbours")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def _check_field_types(data: Dict[str, Any]) -> Dict[str, Any]:
    """Refuse card fields of the wrong JSON type or out of range, naming the field; return the data with
    whole numbers written as floats (``128.0``) turned into ints.

    Runs before the dataclasses are built, so that ``"threshold": "abc"`` or
    ``"size_multiple_px": 100000`` is a message, not a type error or a 40 GB
    window later.
    """
    data = dict(data)

    def refuse(field_name: str, problem: str) -> None:
        raise ModelCardError(f"Invalid model card: the field '{field_name}' {problem}.")

    for key in _TEXT_FIELDS:
        if key in data and not isinstance(data[key], str):
            refuse(key, f"must be text, not {json.dumps(data[key])}")
    for key, (low, high, low_ok) in _NUMBER_FIELDS.items():
        if key not in data:
            continue
        value = data[key]
        if not _is_number(value):
            refuse(key, f"must be a number, not {json.dumps(value)}")
        if value < low or value > high or (value == low and not low_ok):
            refuse(key, f"is {value:g}, outside {'[' if low_ok else '('}{low:g}, {high:g}]")
    for key, (low, high) in _WHOLE_FIELDS.items():
        if key not in data:
            continue
        value = data[key]
        if not _is_number(value) or float(value) != int(value):
            refuse(key, f"must be a whole number of pixels, not {json.dumps(value)}")
        value = data[key] = int(value)
        if not low <= value <= high:
            refuse(key, f"is {value}, outside [{low}, {high}]")
    if "schema_version" in data and not isinstance(data["schema_version"], int):
        refuse("schema_version", f"must be a whole number, not {json.dumps(data['schema_version'])}")
    if "inputs" in data:
        if not isinstance(data["inputs"], list) or not all(isinstance(spec, dict) for spec in data["inputs"]):
            refuse("inputs", "must be a list of objects")
        for index, spec in enumerate(data["inputs"]):
            for key in ("tensor_name", "role"):
                if key in spec and not isinstance(spec[key], str):
                    refuse(f"inputs[{index}].{key}", f"must be text, not {json.dumps(spec[key])}")
            channels = spec.get("channels", [])
            if not isinstance(channels, list) or not all(isinstance(c, dict) for c in channels):
                refuse(f"inputs[{index}].channels", "must be a list of objects")
            for number, channel in enumerate(channels):
                for key in ("scale", "offset"):
                    if key in channel and not _is_number(channel[key]):
                        refuse(f"inputs[{index}].channels[{number}].{key}",
                               f"must be a number, not {json.dumps(channel[key])}")
    terrain = data.get("terrain", {})
    if not isinstance(terrain, dict):
        refuse("terrain", "must be an object")
    for key, (low, high) in _TERRAIN_NUMBERS.items():
        if key in terrain:
            if not _is_number(terrain[key]):
                refuse(f"terrain.{key}", f"must be a number, not {json.dumps(terrain[key])}")
            if not low <= terrain[key] <= high:
                refuse(f"terrain.{key}", f"is {terrain[key]:g}, outside [{low:g}, {high:g}]")
    for key in _TERRAIN_FLAGS:
        if key in terrain and not isinstance(terrain[key], bool):
            refuse(f"terrain.{key}", f"must be true or false, not {json.dumps(terrain[key])}")
    unknown = set(terrain) - set(_TERRAIN_NUMBERS) - set(_TERRAIN_FLAGS) - {"gradient", "slope_units"}
    if unknown:
        refuse(f"terrain.{sorted(unknown)[0]}", "is not a field of the terrain recipe")
    normalisation = data.get("image_normalisation", {})
    if not isinstance(normalisation, dict):
        refuse("image_normalisation", f"must be an object, not {json.dumps(normalisation)}")
    if not isinstance(normalisation.get("method", NORMALISATION_NONE), str):
        refuse("image_normalisation.method", f"must be text, not {json.dumps(normalisation['method'])}")
    for key, (low, high) in (("dark_quantile", (0.0, 1.0)), ("reference_quantile", (0.0, 1.0)),
                             ("reference_value", (1.0, 255.0))):
        if key in normalisation:
            value = normalisation[key]
            if not _is_number(value):
                refuse(f"image_normalisation.{key}", f"must be a number, not {json.dumps(value)}")
            if not low <= value <= high:
                refuse(f"image_normalisation.{key}", f"is {value:g}, outside [{low:g}, {high:g}]")
    if "min_valid_pixels" in normalisation:
        value = normalisation["min_valid_pixels"]
        if not _is_number(value) or float(value) != int(value) or not 1 <= value <= 10**9:
            refuse("image_normalisation.min_valid_pixels",
                   f"must be a whole number of pixels from 1 to 10^9, not {json.dumps(value)}")
        normalisation["min_valid_pixels"] = int(value)
    unknown = set(normalisation) - {f.name for f in fields(ImageNormalisation)}
    if unknown:
        refuse(f"image_normalisation.{sorted(unknown)[0]}", "is not a field of the image normalisation")
    for key in ("provenance", "metrics"):
        if key in data and not isinstance(data[key], dict):
            refuse(key, "must be an object")
    return data


_REQUIRED_SCALARS = ("name", "version", "description", "output_name", "gsd_m", "tile_px", "context_px")
_OPTIONAL_SCALARS = (
    "size_multiple_px",
    "threshold",
    "min_area_m2",
    "reflectance_saturation",
    "test_time_augmentation",
    "schema_version",
)


def _check_card(card: ModelCard) -> None:
    """Refuse values no model can have."""
    roles = [spec.role for spec in card.inputs]
    if sorted(roles) != sorted(ROLES):
        raise ModelCardError(f"The model card must declare exactly the inputs {list(ROLES)}; it declares {roles}.")
    for spec in card.inputs:
        names = tuple(c.name for c in spec.channels)
        if names != CHANNELS_BY_ROLE[spec.role]:
            raise ModelCardError(
                f"Input '{spec.tensor_name}' ({spec.role}) must have channels "
                f"{list(CHANNELS_BY_ROLE[spec.role])}; the card lists {list(names)}."
            )
    checks = (
        (card.gsd_m > 0, "gsd_m must be positive"),
        (card.tile_px > 0, "tile_px must be positive"),
        (card.size_multiple_px > 0, "size_multiple_px must be positive"),
        (0 <= card.context_px and 2 * card.context_px < card.tile_px, "context_px must leave a core inside a tile"),
        (0.0 < card.threshold < 1.0, "threshold must lie strictly between 0 and 1"),
        (card.min_area_m2 >= 0, "min_area_m2 must not be negative"),
        (card.reflectance_saturation > 0, "reflectance_saturation must be positive"),
        (card.terrain.gradient in ("Horn", "ZevenbergenThorne"), "terrain.gradient must be Horn or ZevenbergenThorne"),
        (card.terrain.slope_units == "degrees", "terrain.slope_units must be degrees"),
        (card.image_normalisation.method in NORMALISATION_METHODS,
         f"image_normalisation.method must be one of {', '.join(NORMALISATION_METHODS)}"),
        (0.0 <= card.image_normalisation.dark_quantile < card.image_normalisation.reference_quantile < 1.0,
         "image_normalisation needs 0 <= dark_quantile < reference_quantile < 1"),
        (0.0 < card.image_normalisation.reference_value <= 255.0,
         "image_normalisation.reference_value must lie in (0, 255]"),
        (card.image_normalisation.min_valid_pixels >= 1, "image_normalisation.min_valid_pixels must be at least 1"),
        (card.test_time_augmentation in TTA_MODES,
         f"test_time_augmentation must be one of {', '.join(TTA_MODES)}"),
    )
    for ok, message in checks:
        if not ok:
            raise ModelCardError(f"Invalid model card: {message}.")


def check_card_matches_graph(
    card: ModelCard,
    graph_inputs: Iterable[Tuple[str, Sequence[Any], str]],
    graph_outputs: Iterable[str],
) -> None:
    """Refuse a card whose inputs or output do not match the ONNX graph.

    Args:
        card: The card read from the file.
        graph_inputs: ``(name, shape, type)`` per graph input, as onnxruntime
            reports them (shape entries are ints or symbolic names).
        graph_outputs: Names of the graph outputs.

    Raises:
        ModelCardError: Naming the first mismatch.
    """
    graph = {name: (list(shape), dtype) for name, shape, dtype in graph_inputs}
    declared = {spec.tensor_name for spec in card.inputs}
    if set(graph) != declared:
        raise ModelCardError(
            f"The model card declares inputs {sorted(declared)} but the graph takes {sorted(graph)}."
        )
    for spec in card.inputs:
        shape, dtype = graph[spec.tensor_name]
        if dtype != "tensor(float)":
            raise ModelCardError(f"Graph input '{spec.tensor_name}' is {dtype}; float32 is required.")
        if len(shape) != 4:
            raise ModelCardError(f"Graph input '{spec.tensor_name}' has rank {len(shape)}; NHWC rank 4 is required.")
        channels = shape[3]
        if isinstance(channels, int) and channels != len(spec.channels):
            raise ModelCardError(
                f"Graph input '{spec.tensor_name}' has {channels} channels; the card declares {len(spec.channels)}."
            )
    outputs = list(graph_outputs)
    if card.output_name not in outputs:
        raise ModelCardError(f"The card's output '{card.output_name}' is not a graph output (graph has {outputs}).")


def card_from_metadata(metadata: Mapping[str, str], source: str = "the model") -> ModelCard:
    """The card stored in an ONNX metadata map (``custom_metadata_map``)."""
    text = metadata.get(CARD_METADATA_KEY)
    if text is None:
        raise ModelCardError(
            f"{source} has no model card (metadata key '{CARD_METADATA_KEY}'): export it with "
            "'python -m training export' or add a card with model.card.write_card()."
        )
    return card_from_json(text)


def write_card(onnx_model: Any, card: ModelCard) -> Any:
    """Store ``card`` in an ``onnx.ModelProto`` (replacing any older card).

    Args:
        onnx_model: An ``onnx.ModelProto`` (the ``onnx`` package is needed to
            write; the plugin only reads).
        card: The card to store.

    Returns:
        The same ModelProto, modified in place.
    """
    props = onnx_model.metadata_props
    keep: List[Tuple[str, str]] = [(p.key, p.value) for p in props if p.key != CARD_METADATA_KEY]
    del props[:]
    for key, value in keep + [(CARD_METADATA_KEY, card.to_json())]:
        entry = props.add()
        entry.key = key
        entry.value = value
    return onnx_model


def write_card_to_file(onnx_path: str, card: ModelCard, out_path: str | None = None) -> str:
    """Load an ONNX file, store ``card`` in it and save it (to ``out_path`` or in place)."""
    import onnx

    model = onnx.load(onnx_path)
    write_card(model, card)
    target = out_path or onnx_path
    onnx.save(model, target)
    return target


def card_summary(card: ModelCard) -> Dict[str, Any]:
    """Short facts for logs and the algorithm's help."""
    return {
        "name": card.name,
        "version": card.version,
        "gsd_m": card.gsd_m,
        "tile_px": card.tile_px,
        "context_px": card.context_px,
        "threshold": card.threshold,
        "min_area_m2": card.min_area_m2,
        "trained_on": card.provenance.get("trained_on", "not stated"),
        "metrics": dict(card.metrics),
    }
