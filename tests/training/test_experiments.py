"""The experiment runner: conventional, combined and jackknife models, scored per event, resumable.

Small enough for two busy CPU cores: three 192 px simulated events, 64 px tiles,
width 0.0625, one epoch of two steps per model, one resolution, and two trained
models (conventional ones; with two training events each jackknife model is
the other event's conventional model, copied). Most of the time goes into
tracing the training graph (about a minute per model on a busy machine).
"""

import csv
import json
import os
import tomllib

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from model.session import read_card  # noqa: E402
from model.metrics import Confusion  # noqa: E402
from training.__main__ import main  # noqa: E402
from training.config import ConfigError  # noqa: E402
from training.experiment_config import (ExperimentError, ModelSpec, load_experiment_config,  # noqa: E402
                                        model_specs, parse_experiment_config)
from training.experiment_plots import CSV_COLUMNS  # noqa: E402
from training.experiment_pool import train_in_subprocesses  # noqa: E402
from training.experiments import run_experiment  # noqa: E402
from training.simulate import event_config_lines, simulate_event  # noqa: E402

pytestmark = pytest.mark.slow

SIZE = 192
RUN = {"tile_px": 64, "width": 0.0625, "batch_size": 2, "epochs": 1, "steps_per_epoch": 2, "seed": 3,
       "context_px": 8, "validation_fraction": 0.25, "bn_recalibration_batches": 2, "augment": False}
MODELS = ["conventional_alpha", "conventional_beta", "jackknife_without_alpha", "jackknife_without_beta"]
KINDS = ["conventional", "jackknife"]
EXPECTED_RELATIONS = {
    ("conventional_alpha", "alpha"): "trained on", ("conventional_alpha", "beta"): "other training event",
    ("conventional_beta", "alpha"): "other training event", ("conventional_beta", "beta"): "trained on",
    ("jackknife_without_alpha", "alpha"): "left out", ("jackknife_without_alpha", "beta"): "trained on",
    ("jackknife_without_beta", "alpha"): "trained on", ("jackknife_without_beta", "beta"): "left out",
}
EXPECTED_RELATIONS.update({(model, "gamma"): "unseen" for model in MODELS})


def write_experiment(root, events, unseen, experiment=None, run=None) -> str:
    """An experiment TOML beside the simulated events; returns its path."""
    settings = {"output_dir": "out", "resolutions_m": [10.0], **(experiment or {})}
    lines = ["[experiment]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()] + ["", "[run]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in {**RUN, **(run or {})}.items()] + [""]
    for name, event in events.items():
        lines += event_config_lines(event, name, str(root), areas=True)
    for name, event in unseen.items():
        lines += ["[[unseen]]"] + event_config_lines(event, name, str(root))[1:]
    path = root / "experiment.toml"
    path.write_text("\n".join(lines))
    return str(path)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment")
    events = {"alpha": simulate_event(str(root / "alpha"), "temperate_mountains", 11, size_px=SIZE),
              "beta": simulate_event(str(root / "beta"), "tropical_hills", 12, size_px=SIZE, radiometry="s2_l2a")}
    unseen = {"gamma": simulate_event(str(root / "gamma"), "dissected_plateau", 13, size_px=SIZE)}
    path = write_experiment(root, events, unseen, experiment={"kinds": KINDS, "jobs": 2})
    messages = []
    result = run_experiment(load_experiment_config(path), log=messages.append)
    return {"root": root, "config": path, "result": result, "log": messages, "out": root / "out"}


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_model_is_scored_on_every_event_with_its_relation(experiment):
    rows = read_rows(experiment["out"] / "results.csv")
    assert list(rows[0]) == list(CSV_COLUMNS)
    events = ("alpha", "beta", "gamma")  # training events first, then unseen ones
    assert [(r["model"], r["evaluated_event"]) for r in rows] == [(m, e) for m in MODELS for e in events]
    assert {(r["model"], r["evaluated_event"]): r["relation"] for r in rows} == EXPECTED_RELATIONS
    kinds = {r["model"]: (r["kind"], r["trained_on"]) for r in rows}
    assert kinds == {"conventional_alpha": ("conventional", "alpha"), "conventional_beta": ("conventional", "beta"),
                     "jackknife_without_alpha": ("jackknife", "beta"), "jackknife_without_beta": ("jackknife", "alpha")}
    assert {r["resolution_m"] for r in rows} == {"10"}
    for row in rows:
        counts = Confusion(*(int(row[k]) for k in ("tp", "fp", "fn", "tn")))
        for metric in ("precision", "recall", "f1", "mcc"):
            assert float(row[metric]) == pytest.approx(getattr(counts, metric), abs=1e-4)


def test_training_events_are_scored_on_their_test_areas_only(experiment):
    rows = read_rows(experiment["out"] / "results.csv")
    test_area_pixels = SIZE * (SIZE - int(round(SIZE * 0.75)))
    for row in rows:
        counted = sum(int(row[k]) for k in ("tp", "fp", "fn", "tn"))
        if row["evaluated_event"] == "gamma":  # unseen and without a test area: the whole event
            assert test_area_pixels < counted <= SIZE * SIZE
        else:
            assert 0 < counted <= test_area_pixels
    # every model sees the same pixels of an event
    for event in ("alpha", "beta", "gamma"):
        totals = {sum(int(r[k]) for k in ("tp", "fp", "fn", "tn")) for r in rows if r["evaluated_event"] == event}
        assert len(totals) == 1


def test_models_are_carded_and_share_one_tile_store_per_resolution(experiment):
    out = experiment["out"] / "10m"
    assert sorted(os.listdir(out / "tiles")) == ["alpha", "beta"]  # unseen events are never tiled
    assert experiment["result"].models_trained == ["10m/conventional_alpha", "10m/conventional_beta"]
    # both trained side by side, each in its own process, their progress logged here
    assert any("training 2 model(s), 2 at a time" in m for m in experiment["log"])
    for name in ("conventional_alpha", "conventional_beta"):
        assert any(m.startswith(f"[10m {name}] epoch 1/1 done") for m in experiment["log"])
    for spec in model_specs(["alpha", "beta"], KINDS):
        card = read_card(str(out / spec.name / "model.onnx"))
        assert card.name == f"experiment-10m-{spec.name}" and card.gsd_m == 10.0 and card.tile_px == 64
        assert card.provenance["training_events"] == list(spec.trained_on)
        assert sorted(os.listdir(out / spec.name / "evaluations")) == ["alpha.json", "beta.json", "gamma.json"]
        if spec.kind == "conventional":
            run_info = json.loads((out / spec.name / "run.json").read_text())
            assert run_info["store_dir"] == str(out / "tiles") and run_info["events"] == list(spec.trained_on)
            assert run_info["run"]["gsd_m"] == 10.0 and run_info["run"]["output_dir"] == str(out / spec.name)
            assert "same_training_as" not in card.provenance


def test_a_jackknife_model_with_a_conventional_twin_is_copied_not_retrained(experiment):
    out = experiment["out"] / "10m"
    assert experiment["result"].models_copied == ["10m/jackknife_without_alpha", "10m/jackknife_without_beta"]
    assert not (out / "jackknife_without_alpha" / "checkpoint").exists()
    card = read_card(str(out / "jackknife_without_alpha" / "model.onnx"))
    assert card.provenance["same_training_as"] == "conventional_beta" and "left out: alpha" in card.description
    rows = read_rows(experiment["out"] / "results.csv")
    counts = {(r["model"], r["evaluated_event"]): [r[k] for k in ("tp", "fp", "fn", "tn")] for r in rows}
    for event in ("alpha", "beta", "gamma"):  # the same network maps the same pixels
        assert counts[("jackknife_without_alpha", event)] == counts[("conventional_beta", event)]
        assert counts[("jackknife_without_beta", event)] == counts[("conventional_alpha", event)]
    assert counts[("conventional_alpha", "alpha")] != counts[("conventional_beta", "alpha")]


def test_spider_plot_has_a_panel_per_model(experiment):
    import matplotlib.image

    plot = experiment["out"] / "spider_10m.png"
    assert experiment["result"].plots == [str(plot)]
    image = matplotlib.image.imread(str(plot))
    # four panels on one row: much wider than high, and not blank
    assert image.shape[1] > 2.5 * image.shape[0] and image[..., :3].std() > 0.05


def test_a_second_run_retrains_and_reevaluates_nothing(experiment, capsys):
    out = experiment["out"] / "10m"
    onnx = {m: os.stat(out / m / "model.onnx").st_mtime_ns for m in MODELS}
    scores = {m: os.stat(out / m / "evaluations" / "gamma.json").st_mtime_ns for m in MODELS}
    assert experiment["result"].evaluations_done == 12
    before = read_rows(experiment["out"] / "results.csv")
    assert main(["experiment", experiment["config"]]) == 0
    printed = capsys.readouterr().out
    assert printed.count("skipped") >= len(MODELS) and "models trained 0, copied 0, skipped 4" in printed
    assert "evaluations computed 0, reused 12" in printed
    assert {m: os.stat(out / m / "model.onnx").st_mtime_ns for m in MODELS} == onnx
    assert {m: os.stat(out / m / "evaluations" / "gamma.json").st_mtime_ns for m in MODELS} == scores
    assert read_rows(experiment["out"] / "results.csv") == before


def test_a_missing_evaluation_is_recomputed_alone(experiment):
    target = experiment["out"] / "10m" / "jackknife_without_beta" / "evaluations" / "beta.json"
    record = json.loads(target.read_text())
    target.unlink()
    messages = []
    result = run_experiment(load_experiment_config(experiment["config"]), log=messages.append)
    assert result.models_trained == [] and (result.evaluations_done, result.evaluations_skipped) == (1, 11)
    again = json.loads(target.read_text())
    assert {k: again[k] for k in ("tp", "fp", "fn", "tn", "relation")} == \
        {k: record[k] for k in ("tp", "fp", "fn", "tn", "relation")}


def test_a_failed_training_is_reported_with_its_model(experiment):
    config = load_experiment_config(experiment["config"])
    bogus = ModelSpec("conventional", "conventional_nowhere", ("nowhere",))
    with pytest.raises(ExperimentError, match=r"\[10m conventional_nowhere\] .*nowhere"):
        train_in_subprocesses(config, 10.0, [bogus], str(experiment["out"] / "10m" / "tiles"), log=lambda _: None)
    assert not (experiment["out"] / "10m" / "conventional_nowhere" / "model.onnx").exists()


def _parse(root, **changes):
    data = tomllib.loads(open(write_experiment(root, {}, {})).read())
    event = {"name": "a", "pre": "a.tif", "post": "b.tif", "dem": "d.tif", "inventory": "i.gpkg",
             "test_area": "areas.gpkg|layername=test"}
    data["events"] = [event, dict(event, name="b")]
    for section, values in changes.items():
        if values is None:
            data.pop(section, None)
        elif isinstance(values, dict):
            data[section] = {**data.get(section, {}), **values}
        else:
            data[section] = values
    return parse_experiment_config(data, str(root), "experiment.toml")


def test_configuration_is_checked(tmp_path):
    config = _parse(tmp_path)
    assert config.experiment.output_dir == str(tmp_path / "out") and config.experiment.resolutions_m == (10.0,)
    assert config.run.output_dir == str(tmp_path / "out") and config.events[1].test_area.layer == "test"
    assert config.experiment.kinds == ("conventional", "combined", "jackknife")
    event = {"name": "a", "pre": "a.tif", "post": "b.tif", "dem": "d.tif", "inventory": "i.gpkg"}
    cases = [
        ({"experiment": None}, "[experiment] section is missing"),
        ({"run": {"gsd_m": 20.0}}, "resolutions_m"),
        ({"run": {"output_dir": "x"}}, "[experiment] output_dir"),
        ({"experiment": {"kinds": ["combined", "loo"]}}, "kinds"),
        ({"experiment": {"resolutions_m": [10.0, -5.0]}}, "positive"),
        ({"experiment": {"resolution": 10}}, "unknown setting"),
        ({"experiment": {"jobs": 0}}, "jobs"),
        ({"events": [event, dict(event, name="b", test_area="t.gpkg")]}, "needs a test_area"),
        ({"events": [dict(event, test_area="t.gpkg")]}, "at least two training events"),
        ({"unseen": [dict(event, name="b")]}, "unique"),
        ({"unseen": [dict(event, name="u", colour="red")]}, "[[unseen]] #1 (u): unknown setting"),
    ]
    for changes, message in cases:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            _parse(tmp_path, **changes)
    one = _parse(tmp_path, events=[dict(event, test_area="t.gpkg")], experiment={"kinds": ["conventional"]})
    assert [e.name for e in one.events] == ["a"]


def test_model_specs_follow_the_paper():
    specs = model_specs(["a", "b", "c"])
    assert [(s.kind, s.name, s.trained_on, s.left_out) for s in specs] == [
        ("conventional", "conventional_a", ("a",), None), ("conventional", "conventional_b", ("b",), None),
        ("conventional", "conventional_c", ("c",), None), ("combined", "combined", ("a", "b", "c"), None),
        ("jackknife", "jackknife_without_a", ("b", "c"), "a"), ("jackknife", "jackknife_without_b", ("a", "c"), "b"),
        ("jackknife", "jackknife_without_c", ("a", "b"), "c")]
    assert [s.name for s in model_specs(["a", "b"], ["combined"])] == ["combined"]
    jackknife = specs[-1]
    assert [jackknife.relation(e, ["a", "b", "c"]) for e in ("a", "c", "u")] == ["trained on", "left out", "unseen"]
    assert specs[0].relation("b", ["a", "b", "c"]) == "other training event"
    assert np.all([s.relation("u", ["a", "b", "c"]) == "unseen" for s in specs])
