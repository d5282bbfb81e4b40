"""The model card: JSON round trip, validation, ONNX metadata, graph checks."""

import dataclasses
import json
from dataclasses import replace

import pytest

from model.card import (
    CARD_METADATA_KEY,
    ModelCard,
    card_from_json,
    card_from_metadata,
    standard_inputs,
    write_card_to_file,
)
from model.errors import ModelCardError
from model.session import LandslideModel, read_card
from tests.helpers.tiny_models import red_difference_model, tiny_card


def test_json_round_trip_keeps_every_field():
    card = tiny_card(provenance={"trained_on": "x", "training_events": ["a", "b"]}, metrics={"mcc": 0.5})
    assert card_from_json(card.to_json()) == card


def test_standard_inputs_follow_the_authors_scaling():
    pre, post, terrain = standard_inputs()
    assert pre.channels[0].scale == pytest.approx(1 / 127.5) and pre.channels[0].offset == -1.0
    assert [c.name for c in terrain.channels] == ["hillshade", "slope"]
    assert terrain.channels[1].scale == pytest.approx(1 / 45) and terrain.channels[1].offset == -1.0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("gsd_m"), "lacks the field 'gsd_m'"),
        (lambda d: d.update(schema_version=99), "schema version 99"),
        (lambda d: d.update(threshold=1.5), "threshold must lie strictly between 0 and 1"),
        (lambda d: d.update(context_px=40), "context_px must leave a core"),
        (lambda d: d["inputs"].pop(), "must declare exactly the inputs"),
        (lambda d: d["inputs"][2]["channels"].reverse(), "must have channels ['hillshade', 'slope']"),
    ],
)
def test_invalid_cards_are_refused_with_the_reason(mutate, message):
    data = json.loads(tiny_card().to_json())
    mutate(data)
    with pytest.raises(ModelCardError, match=message.replace("[", r"\[").replace("]", r"\]")):
        card_from_json(json.dumps(data))


def test_not_json_is_refused():
    with pytest.raises(ModelCardError, match="not valid JSON"):
        card_from_json("{nope")


def test_missing_card_names_the_metadata_key():
    with pytest.raises(ModelCardError, match=CARD_METADATA_KEY):
        card_from_metadata({}, "model.onnx")


def test_card_survives_the_onnx_file(tmp_path):
    card = tiny_card(metrics={"mcc": 0.71, "evaluated_on": "simulated"})
    path = red_difference_model(str(tmp_path / "m.onnx"), card=card)
    assert read_card(path) == card
    assert LandslideModel(path).card == card


def test_rewriting_the_card_replaces_it(tmp_path):
    path = red_difference_model(str(tmp_path / "m.onnx"))
    write_card_to_file(path, tiny_card(threshold=0.3))
    assert read_card(path).threshold == 0.3


def test_file_without_card_is_refused(tmp_path):
    path = red_difference_model(str(tmp_path / "m.onnx"), with_card=False)
    with pytest.raises(ModelCardError, match="has no model card"):
        read_card(path)


def test_card_output_not_in_graph_is_refused(tmp_path):
    path = red_difference_model(str(tmp_path / "m.onnx"), card=tiny_card(output_name="probability"))
    with pytest.raises(ModelCardError, match="output 'probability' is not a graph output"):
        read_card(path)


def test_card_inputs_not_in_graph_are_refused(tmp_path):
    card = tiny_card()
    renamed = tuple(replace(spec, tensor_name="before") if spec.role == "pre_image" else spec for spec in card.inputs)
    path = red_difference_model(str(tmp_path / "m.onnx"), card=replace(card, inputs=renamed))
    with pytest.raises(ModelCardError, match="declares inputs"):
        read_card(path)


def test_not_an_onnx_file_is_refused(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelCardError, match="not a model onnxruntime can load"):
        read_card(str(path))


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ModelCardError, match="not found"):
        read_card(str(tmp_path / "none.onnx"))


def test_card_is_a_frozen_dataclass():
    card = tiny_card()
    assert isinstance(card, ModelCard)
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.threshold = 0.1  # type: ignore[misc]
    assert card.threshold == tiny_card().threshold


# --------------------------------------------------------------------------- field types and ranges (issue 13)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(threshold="abc"), "the field 'threshold' must be a number, not \"abc\""),
        (lambda d: d.update(tile_px=127.5), "the field 'tile_px' must be a whole number of pixels, not 127.5"),
        (lambda d: d.update(size_multiple_px=100000), "the field 'size_multiple_px' is 100000, outside [1, 1024]"),
        (lambda d: d.update(gsd_m=True), "the field 'gsd_m' must be a number, not true"),
        (lambda d: d.update(gsd_m=0), "the field 'gsd_m' is 0, outside (0, 1000]"),
        (lambda d: d.update(name=3), "the field 'name' must be text, not 3"),
        (lambda d: d.update(context_px=None), "the field 'context_px' must be a whole number of pixels, not null"),
        (lambda d: d["inputs"][0]["channels"][1].update(scale="x"),
         "the field 'inputs[0].channels[1].scale' must be a number, not \"x\""),
        (lambda d: d.update(terrain={"z_factor": "2"}), "the field 'terrain.z_factor' must be a number, not \"2\""),
        (lambda d: d.update(terrain={"hillshade_integer": 1}), "the field 'terrain.hillshade_integer' must be true or false"),
        (lambda d: d.update(terrain={"azimuth": 300}), "the field 'terrain.azimuth' is not a field of the terrain recipe"),
        (lambda d: d.update(metrics=[1]), "the field 'metrics' must be an object"),
    ],
)
def test_card_fields_of_the_wrong_type_or_range_are_named(mutate, message):
    data = json.loads(tiny_card().to_json())
    mutate(data)
    with pytest.raises(ModelCardError, match="Invalid model card: " + message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        card_from_json(json.dumps(data))


def test_whole_numbers_written_as_floats_are_accepted():
    data = json.loads(tiny_card().to_json())
    data["tile_px"] = float(data["tile_px"])
    card = card_from_json(json.dumps(data))
    assert card.tile_px == data["tile_px"] and isinstance(card.tile_px, int)
