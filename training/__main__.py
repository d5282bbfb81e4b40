"""Command line of the training package: ``python -m training <command> ...``.

Commands:
    build-dataset  cut tile stores from the events of a config (one folder per event)
    train          train (or resume) the combined model of a config
    export         write the trained model to ONNX with its model card
    convert-original  convert the authors' published M_ALL_006.hdf5 to ONNX with its model card
    simulate       write simulated labelled events (pre, post, DEM, inventory, cloud mask)
    evaluate       map labelled events with an ONNX model and score the maps against their inventories
    experiment     conventional, combined and jackknife models per resolution, scored on test areas and unseen events
    adapt          fine-tune a carded model on the landslides an analyst mapped in part of one event
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List, Optional

STARTED_AT = time.time()
"""When this command began: ``adapt``'s time budget counts from here, TensorFlow's loading included."""

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PARITY_TOLERANCE = 1e-4  # the same default as training.export (not imported: keeps --help free of TensorFlow)


def _store_dir(args, config) -> str:
    return args.store or os.path.join(config.run.output_dir, "tiles")


def cmd_build_dataset(args) -> int:
    from .config import load_config
    from .datasets import build_dataset

    config = load_config(args.config)
    summaries = build_dataset(config, _store_dir(args, config), overwrite=args.overwrite, only=args.only)
    for s in summaries:
        state = "built" if s.built else "kept (already built)"
        print(f"{s.event}: {state}, {s.tiles_train} training + {s.tiles_validation} validation tiles, "
              f"{s.landslide_pixels} landslide pixels, {s.polygons_used} polygons used, "
              f"{s.polygons_outside} outside, {s.polygons_repaired} repaired -> {s.path}")
    return 0


def cmd_train(args) -> int:
    from .config import load_config
    from .train import train

    config = load_config(args.config)
    state = train(config, _store_dir(args, config), events=args.events, max_epochs_this_call=args.max_epochs)
    print(json.dumps({"epochs_done": state.epoch, "best_epoch": state.best_epoch + 1,
                      "best_val_loss": state.best_val_loss, "stopped_early": state.stopped_early,
                      **state.best_metrics}, indent=1))
    return 0


def cmd_export(args) -> int:
    import keras

    from . import losses, network  # noqa: F401  (register custom objects)
    from .config import load_config
    from .export import export_onnx
    from .train import BEST_MODEL, CHECKPOINT_DIR, LAST_MODEL, best_validation_metrics, training_card

    config = load_config(args.config)
    run_dir = config.run.output_dir
    path = {"best": os.path.join(run_dir, BEST_MODEL),
            "last": os.path.join(run_dir, CHECKPOINT_DIR, LAST_MODEL)}.get(args.model, args.model)
    if not os.path.exists(path):
        print(f"error: no trained model at {path}; run 'python -m training train {args.config}' first.",
              file=sys.stderr)
        return 2
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as handle:
        run_info = json.load(handle)
    metrics = best_validation_metrics(run_dir)
    card = training_card(config.run, run_info["events"], metrics, name=args.name, trained_on=args.trained_on)
    model = keras.models.load_model(path, compile=False)
    if args.calibrate_threshold:
        card = _calibrated(card, model, args, config, run_info)
    worst = export_onnx(model, card, args.output, overwrite=args.overwrite, tolerance=args.parity_tolerance)
    print(f"wrote {args.output} (onnxruntime vs Keras max difference {worst:.2g})")
    return 0


def _calibrated(card, model, args, config, run_info):
    """``card`` with the threshold of best validation MCC, and the validation scores at that threshold."""
    import dataclasses

    from .tile_store import TileStore
    from .train import calibrate_threshold

    store = TileStore(_store_dir(args, config), run_info["events"])
    threshold, table = calibrate_threshold(model, store, store.indices("validation"), card, config.run.batch_size)
    chosen = table[threshold]
    metrics = dict(card.metrics, mcc=chosen.mcc, f1=chosen.f1, precision=chosen.precision, recall=chosen.recall)
    metrics["threshold_calibration"] = {
        "chosen": threshold, "on": f"the {len(store.indices('validation'))} validation tiles of the training events",
        "mcc_by_threshold": {f"{t:.2f}": round(c.mcc, 4) for t, c in table.items()}}
    print(f"threshold {threshold:.2f} (validation MCC {chosen.mcc:.3f}; at {card.threshold:g}: "
          f"{table.get(float(card.threshold), chosen).mcc:.3f})")
    return dataclasses.replace(card, threshold=threshold, metrics=metrics)


def cmd_convert_original(args) -> int:
    import warnings

    from .convert_original import ConversionWarning, convert_original

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConversionWarning)   # printed below, once
        report = convert_original(args.input, args.output, overwrite=args.overwrite,
                                  tolerance=args.parity_tolerance,
                                  allow_unverified_topology=args.allow_unverified_topology)
    for message in report.warnings:
        print(f"warning: {message}", file=sys.stderr)
    arch = report.architecture
    print(f"{report.file_check.path}: {report.file_check.size_bytes:,} bytes, sha256 {report.file_check.sha256}"
          f"{' (the published file)' if report.file_check.is_published else ''}")
    print(f"network: width {arch.width:g}, {arch.shortcut_kernel_px}x{arch.shortcut_kernel_px} projection shortcuts, "
          f"{arch.head_kernel_px}x{arch.head_kernel_px} head, {arch.upsampling} up-sampling; "
          f"topology {'checked against the file' if arch.topology_checked else 'NOT checked (no model_config)'}; "
          f"{report.loaded_layers} layers loaded"
          + (f"; not exported: {', '.join(report.ignored_layers)}" if report.ignored_layers else ""))
    print(f"wrote {report.output_path} (onnxruntime vs Keras max difference {report.parity_max_abs_diff:.2g})")
    return 0


def _card_changes(card, args):
    """The card with the export options a user gave (provenance texts, threshold, name, test-time augmentation)."""
    import dataclasses

    provenance = dict(card.provenance)
    if args.trained_on:
        provenance["trained_on"] = args.trained_on
    if args.chosen_because:
        provenance["checkpoint_choice"] = args.chosen_because
    changes = {"provenance": provenance}
    if args.threshold is not None:
        changes["threshold"] = args.threshold
    if args.name:
        changes["name"] = args.name
    if args.test_time_augmentation:
        changes["test_time_augmentation"] = args.test_time_augmentation
    return dataclasses.replace(card, **changes)


def cmd_export_weights(args) -> int:
    from .ensemble import load_checkpoint
    from .export import export_onnx

    network, card = load_checkpoint(args.folder, args.weight_parts)
    card = _card_changes(card, args)
    worst = export_onnx(network, card, args.output, overwrite=args.overwrite, tolerance=args.parity_tolerance)
    print(f"wrote {args.output} (onnxruntime vs Keras max difference {worst:.2g})")
    return 0


def cmd_export_ensemble(args) -> int:
    from .ensemble import checkpoints_ensemble
    from .export import export_onnx

    network, card = checkpoints_ensemble(args.folders, args.member_trained_on or ())
    card = _card_changes(card, args)
    worst = export_onnx(network, card, args.output, overwrite=args.overwrite, tolerance=args.parity_tolerance)
    print(f"wrote {args.output}: the mean of {len(args.folders)} networks (onnxruntime vs Keras max difference "
          f"{worst:.2g})")
    return 0


def cmd_simulate(args) -> int:
    from .simulate import simulate_event

    for seed in args.seeds:
        kind = args.family or args.style
        folder = args.folder if len(args.seeds) == 1 else os.path.join(args.folder, f"{kind}_{seed}")
        event = simulate_event(folder, args.style, seed, size_px=args.size, gsd_m=args.gsd,
                               radiometry=args.radiometry, overwrite=args.overwrite, family=args.family)
        print(f"{folder}: {event.style} seed {seed}, {event.landslides} landslides, "
              f"{event.landslide_area_m2 / 1e6:.3f} km2, {event.radiometry}")
    return 0


def cmd_evaluate(args) -> int:
    from .config import load_config
    from .evaluate import evaluate_model, event_from_folder, write_metrics_to_card

    events = []
    for source in args.events:
        if source.endswith(".toml"):
            for event in load_config(source).events:
                if event.test_area is None and not args.whole_events:
                    print(f"note: {event.name} has no test_area: the whole event is scored, training area included",
                          file=sys.stderr)
                events.append(event)
        else:
            events.append(event_from_folder(source))
    report = evaluate_model(args.model, events, use_test_area=not args.whole_events, threads=args.threads)
    pooled = report["pooled"]
    print(f"pooled over {len(events)} events: MCC {pooled['mcc']:.3f}, F1 {pooled['f1']:.3f}, "
          f"precision {pooled['precision']:.3f}, recall {pooled['recall']:.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
        print(f"wrote {args.json}")
    if args.write_card:
        if not args.label:
            print("error: --write-card needs --label (what the events are)", file=sys.stderr)
            return 2
        write_metrics_to_card(args.model, report, args.label)
        print(f"stored the pooled scores in the model card of {args.model}")
    return 0


def cmd_experiment(args) -> int:
    from .experiment_config import load_experiment_config
    from .experiments import run_experiment

    result = run_experiment(load_experiment_config(args.config))
    print(f"results: {result.results_csv}")
    for plot in result.plots:
        print(f"spider plot: {plot}")
    return 0


def cmd_adapt(args) -> int:
    import signal

    from model.adaptation_inputs import AdaptationRequest
    from model.grid import RasterInput
    from model.vectors import VectorInput

    from .adapt import adapt, result_json

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))  # a cancel: stop at the next step, write nothing

    def bands(text, count):
        values = tuple(int(v) for v in text.split(","))
        if len(values) != count:
            raise SystemExit(f"error: give {count} band number(s), comma-separated; got '{text}'")
        return values

    request = AdaptationRequest(
        base_model=args.base_model or _default_model(), pre=RasterInput(args.pre, bands(args.pre_bands, 3)),
        post=RasterInput(args.post, bands(args.post_bands, 3)), dem=RasterInput(args.dem, bands(args.dem_band, 1)),
        landslides=VectorInput.parse(args.landslides), area=VectorInput.parse(args.area), radiometry=args.radiometry,
        mask_raster=RasterInput(args.mask_raster) if args.mask_raster else None,
        mask_polygons=VectorInput.parse(args.mask_polygons) if args.mask_polygons else None,
        mask_buffer_m=args.mask_buffer, minutes=args.minutes, seed=args.seed)
    progress = (lambda f: print(f"PROGRESS {f:.4f}", flush=True)) if args.progress else (lambda f: None)
    result = adapt(request, args.output, name=args.name or "", batch_size=args.batch_size,
                   learning_rate=args.learning_rate, base_weight_share=args.base_weight_share,
                   log=lambda m: print(m, flush=True),
                   progress=progress, is_cancelled=lambda: stop["now"], checks_dir=args.save_checks,
                   started_at=args.started_at)
    if args.result_json:
        with open(args.result_json, "w", encoding="utf-8") as handle:
            handle.write(result_json(result))
    return 0


def _default_model() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "model", "default_model.onnx")


def parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    top = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build-dataset", help="cut tile stores from a config's events")
    p.add_argument("config", help="TOML config (see training/config.py)")
    p.add_argument("--store", help="tile store folder (default: <output_dir>/tiles)")
    p.add_argument("--only", nargs="+", help="build only these events")
    p.add_argument("--overwrite", action="store_true", help="rebuild events that already have a store")
    p.set_defaults(func=cmd_build_dataset)

    p = sub.add_parser("train", help="train or resume the combined model")
    p.add_argument("config")
    p.add_argument("--store", help="tile store folder (default: <output_dir>/tiles)")
    p.add_argument("--events", nargs="+", help="train on these events only (default: all in the config)")
    p.add_argument("--max-epochs", type=int, help="stop after this many epochs in this call (resume later)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export the trained model to ONNX with its model card")
    p.add_argument("config")
    p.add_argument("output", help="destination .onnx file")
    p.add_argument("--model", default="best", help="'best', 'last' or a .keras path (default: best)")
    p.add_argument("--name", default="landslide-resunet", help="model name in the card")
    p.add_argument("--trained-on", help="one sentence on the training data for the card's provenance")
    p.add_argument("--calibrate-threshold", action="store_true",
                   help="set the card's threshold to the one with the best MCC on the validation tiles")
    p.add_argument("--store", help="tile store folder for --calibrate-threshold (default: <output_dir>/tiles)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--parity-tolerance", type=float, default=PARITY_TOLERANCE,
                   help="largest accepted |onnxruntime - Keras| (default %(default)g; keep it for models you ship)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("convert-original",
                       help="convert the authors' published Keras model (M_ALL_006.hdf5) to ONNX with its card")
    p.add_argument("input", help="the authors' Keras HDF5 file (M_ALL_006.hdf5)")
    p.add_argument("output", help="destination .onnx file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--parity-tolerance", type=float, default=PARITY_TOLERANCE,
                   help="largest accepted |onnxruntime - Keras| (default %(default)g)")
    p.add_argument("--allow-unverified-topology", action="store_true",
                   help="convert a weights-only file (no model_config): up-sampling and concatenation order "
                        "are then assumed, not checked")
    p.set_defaults(func=cmd_convert_original)

    from model.card import TTA_MODES  # numpy-free module

    from .simulate_styles import ENCODINGS, STYLES  # no TensorFlow, no SciPy: keeps --help light

    FAMILY_NAMES = ("forested_mountains", "tropical_hills", "agricultural_hills", "semi_arid_ranges",
                    "volcanic_plateau")  # training.simulate_families.FAMILIES (SciPy: not imported for --help)

    p = sub.add_parser("simulate", help="write simulated labelled events")
    p.add_argument("folder", help="event folder (with several seeds: a parent folder of <style>_<seed>/)")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--style", choices=sorted(STYLES), help="a fixed style (the default model before families)")
    kind.add_argument("--family", choices=sorted(FAMILY_NAMES),
                      help="a family, randomised per event (training.simulate_families)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--size", type=int, default=768, help="scene size in pixels (default %(default)s)")
    p.add_argument("--gsd", type=float, default=10.0, help="pixel size in metres (default %(default)s)")
    p.add_argument("--radiometry", default="8bit", choices=ENCODINGS)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("export-weights", help="export a train_generated network (weights + card) to ONNX")
    p.add_argument("folder", help="a width folder of training.train_generated (card.json, state.json, weights)")
    p.add_argument("output", help="ONNX file to write")
    p.add_argument("--threshold", type=float, default=None, help="default threshold to store in the card")
    p.add_argument("--weight-parts", nargs="+", default=None,
                   help="npz parts written by train_generated --parts-dir, instead of the folder's weights file")
    p.add_argument("--name", default=None)
    p.add_argument("--trained-on", default=None, help="what the model was trained on, in words")
    p.add_argument("--test-time-augmentation", choices=TTA_MODES, default=None,
                   help="store in the card: average the probability over the window's flips (flips: 4 runs per "
                        "window) or all its symmetries (dihedral: 8); default: the folder card's (none)")
    p.add_argument("--chosen-because", default=None,
                   help="why this checkpoint was chosen among others, in words (stored as checkpoint_choice)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--parity-tolerance", type=float, default=1e-4)
    p.set_defaults(func=cmd_export_weights)

    p = sub.add_parser("export-ensemble",
                       help="export the mean of several train_generated networks as one ONNX model (an output "
                            "ensemble in one graph)")
    p.add_argument("output", help="ONNX file to write")
    p.add_argument("folders", nargs="+", help="width folders of training.train_generated (two or more), read alike")
    p.add_argument("--member-trained-on", nargs="+", default=None,
                   help="what each member was trained on, in words, one text per folder (default: its card's)")
    p.add_argument("--threshold", type=float, default=None, help="default threshold to store in the card")
    p.add_argument("--name", default=None)
    p.add_argument("--trained-on", default=None, help="what the ensemble was trained on, in words")
    p.add_argument("--test-time-augmentation", choices=TTA_MODES, default=None,
                   help="store in the card: average the ensemble's probability over the window's flips (flips) or "
                        "symmetries (dihedral); each copy runs every member")
    p.add_argument("--chosen-because", default=None, help="why these networks were chosen, in words")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--parity-tolerance", type=float, default=1e-4)
    p.set_defaults(func=cmd_export_ensemble)

    p = sub.add_parser("evaluate", help="score an ONNX model's maps of labelled events against their inventories")
    p.add_argument("model", help="carded ONNX model")
    p.add_argument("events", nargs="+", help="simulated event folders and/or TOML configs (their [[events]])")
    p.add_argument("--whole-events", action="store_true", help="ignore the events' test areas")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = all cores)")
    p.add_argument("--json", help="write per-event and pooled scores to this JSON file")
    p.add_argument("--write-card", action="store_true", help="store the pooled scores in the model's card")
    p.add_argument("--label", help="what the events are, for the card (with --write-card)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("experiment", help="train, export and score conventional, combined and jackknife models "
                                          "at several resolutions (resumable)")
    p.add_argument("config", help="experiment TOML: [experiment], [run], [[events]], [[unseen]] "
                                  "(see training/experiments.py)")
    p.set_defaults(func=cmd_experiment)

    from .adapt import BASE_WEIGHT_SHARE, BATCH_SIZE, LEARNING_RATE  # numpy and GDAL only

    p = sub.add_parser("adapt", help="fine-tune a carded model on the landslides an analyst mapped in part of one "
                                     "event, then write it as ONNX (the Processing algorithm 'Adapt model to event')")
    p.add_argument("--pre", required=True, help="pre-event image")
    p.add_argument("--post", required=True, help="post-event image")
    p.add_argument("--dem", required=True, help="DEM")
    p.add_argument("--landslides", required=True, help="the landslide polygons mapped (file or file|layername=name)")
    p.add_argument("--area", required=True, help="polygons of the area where that mapping is complete")
    p.add_argument("--output", required=True, help="adapted ONNX model to write")
    p.add_argument("--base-model", default="", help="carded ONNX model to start from (default: the shipped one)")
    p.add_argument("--pre-bands", default="1,2,3", help="red, green, blue bands (default %(default)s)")
    p.add_argument("--post-bands", default="1,2,3")
    p.add_argument("--dem-band", default="1")
    p.add_argument("--radiometry", default="auto", choices=("auto", "8bit", "s2_l2a", "s2_l2a_offset"))
    p.add_argument("--mask-raster", default="", help="cloud/snow raster (non-zero = leave out)")
    p.add_argument("--mask-polygons", default="", help="cloud/snow polygons")
    p.add_argument("--mask-buffer", type=float, default=0.0, help="grow the cloud/snow masks by this many metres")
    p.add_argument("--minutes", type=float, default=10.0, help="time budget, start to written model (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="Adam's (default %(default)g)")
    p.add_argument("--base-weight-share", type=float, default=BASE_WEIGHT_SHARE,
                   help="move the adapted weights this far back towards the base model's, 0 to 1 (default "
                        "%(default)g; 0 keeps the adapted weights as trained)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="tiles per step (default %(default)s)")
    p.add_argument("--name", default="", help="model name in the card (default: <base name>-adapted)")
    p.add_argument("--result-json", default="", help="also write the scores and counts to this JSON file")
    p.add_argument("--progress", action="store_true", help="print PROGRESS <fraction> lines (for QGIS)")
    p.add_argument("--started-at", type=float, default=STARTED_AT, metavar="SECONDS",
                   help="when the time budget began, in seconds since 1970 (default: when this command began; the "
                        "Processing algorithm passes its own start, so its checks count too)")
    p.add_argument("--save-checks", default="", metavar="DIR",
                   help="also save the weights of every validation check in DIR (step_<n>.npz; for benchmarks)")
    p.set_defaults(func=cmd_adapt)
    return top


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; returns the exit status."""
    from model.errors import LandslideMapperError

    from .config import ConfigError

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (LandslideMapperError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
