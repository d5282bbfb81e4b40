"""Train the ResUNet on events generated on the fly (families and real backgrounds), within a time budget.

Worker processes draw events (:mod:`training.generated`), cut and augment
tiles (:func:`training.augment.augment_sample`, the paper's recipe) and
compute the network inputs exactly as the plugin does; the main process
trains. Every event is new, so there is no epoch and no overfitting to a
fixed set; held-out families are never drawn. Weights are saved every few
minutes and at the end (``weights_<step>_part<k>.npz``, parts of at most
15 MB that the GPU machine can hand back and git can keep, named in
``state.json``, which is replaced last), and a run given the same ``--out``
resumes from them (optimizer state restarts; the learning rate schedule
follows the step count). ``--anneal-steps`` instead gives one run its own
schedule, for a fine-tune from a checkpoint: a linear warm-up over
``--warmup-steps`` (Adam's moments start from zero), then a half cosine from
``--learning-rate`` down to ``--anneal-to`` of it, held after that
(:class:`LearningRatePlan`). ``--teachers`` replaces (part of) each tile's
landslide mask by the mean probability of carded ONNX models on the same
inputs (knowledge distillation, :class:`Teachers`), so that one network can
learn what an output ensemble computes at a fraction of its cost.

Runs with any Keras 3 backend: ``KERAS_BACKEND=jax`` on a GPU machine without
TensorFlow or GDAL, TensorFlow on the CPU here. Export afterwards with
``python -m training export-weights`` (TensorFlow), which writes the ONNX
model with its card.

    KERAS_BACKEND=jax python -m training.train_generated --out runs/generated --minutes 8 \\
        --width 0.5 --pairs runs/oscd_rgb.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import sys
import time
from typing import Dict, List, Sequence

import numpy as np

from model.card import ImageNormalisation, ModelCard, NORMALISATION_SCENE, reading_differences, standard_inputs
from model.metrics import mcc_of_counts, threshold_counts

from .real_backgrounds import REAL_BACKGROUNDS
from .simulate_families import HELD_OUT_FAMILIES, TRAINING_FAMILIES, Widenings

DEFAULT_KINDS = TRAINING_FAMILIES + (REAL_BACKGROUNDS,)
WEIGHTS_PREFIX = "weights"
STATE_FILE = "state.json"


class LearningRatePlan:
    """The learning rate of each step of one run.

    Without annealing (``anneal_steps == 0``) it is the long schedule every run
    followed so far: a cosine over ``LONG_DECAY_STEPS`` global steps from
    ``learning_rate`` to a tenth of it (Keras ``CosineDecay``, alpha 0.1). With
    annealing, the run's own steps count from ``first_step``: a linear warm-up
    over ``warmup_steps``, then a half cosine over ``anneal_steps`` from
    ``learning_rate`` down to ``anneal_to * learning_rate``, held afterwards.
    """

    LONG_DECAY_STEPS = 20_000
    LONG_ALPHA = 0.1

    def __init__(self, learning_rate: float, first_step: int = 0, anneal_steps: int = 0, anneal_to: float = 0.1,
                 warmup_steps: int = 0):
        if learning_rate <= 0 or anneal_steps < 0 or warmup_steps < 0 or not 0 < anneal_to <= 1:
            raise ValueError("learning_rate > 0, anneal_steps >= 0, warmup_steps >= 0 and 0 < anneal_to <= 1")
        self.learning_rate, self.first_step = learning_rate, first_step
        self.anneal_steps, self.anneal_to, self.warmup_steps = anneal_steps, anneal_to, warmup_steps

    @staticmethod
    def _cosine(progress: float, floor: float) -> float:
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))

    def at(self, step: int) -> float:
        """The rate of the step taken when ``step`` steps are done (global count)."""
        if not self.anneal_steps:
            return self.learning_rate * self._cosine(step / self.LONG_DECAY_STEPS, self.LONG_ALPHA)
        own = step - self.first_step
        if own < self.warmup_steps:
            return self.learning_rate * (own + 1) / self.warmup_steps
        return self.learning_rate * self._cosine((own - self.warmup_steps) / self.anneal_steps, self.anneal_to)

    def describe(self) -> Dict[str, object]:
        return {"learning_rate": self.learning_rate, "from_step": self.first_step, "anneal_steps": self.anneal_steps,
                "anneal_to": self.anneal_to, "warmup_steps": self.warmup_steps}


class TeacherError(ValueError):
    """A teacher model cannot give targets for the tiles of this run."""


class Teachers:
    """Soft targets from carded ONNX models: the mean of their probabilities (each with its card's test-time
    augmentation) on the very inputs the network trains on, mixed into the mask by ``share``.

    Every teacher must read the tiles as the trainee does (same inputs and scaling, same image normalisation and
    terrain recipe): its card is checked against the trainee's before the run starts. The validity weight (the
    target's second channel) is left as it is, so nodata and cloud pixels still do not count.
    """

    def __init__(self, paths: Sequence[str], share: float, card: ModelCard, threads: int = 0):
        from model.session import LandslideModel

        if not 0.0 < share <= 1.0:
            raise TeacherError(f"the teachers' share of the target must be in (0, 1], not {share:g}")
        self.paths = list(paths)
        self.share = float(share)
        self.models = [LandslideModel(path, threads) for path in self.paths]
        for path, model in zip(self.paths, self.models):
            differences = reading_differences(card, model.card)
            if differences:
                raise TeacherError(f"the teacher {path} reads its inputs otherwise than the network trained here "
                                   f"(its card's {differences[0]} differs), so its probability is no target for these "
                                   "tiles")

    def targets(self, inputs: Dict[str, np.ndarray], target: np.ndarray) -> np.ndarray:
        """``target`` (N, H, W, 2: mask, validity) with the mask mixed with the teachers' mean probability.

        Args:
            inputs: The batch's model-scaled inputs keyed by role (``pre_image``, ``post_image``, ``terrain``).
        """
        soft = np.mean([model.predict(inputs) for model in self.models], axis=0)
        out = np.array(target, dtype=np.float32, copy=True)
        out[..., 0] = (1.0 - self.share) * out[..., 0] + self.share * soft
        return out

    def describe(self) -> Dict[str, object]:
        return {"teachers": [os.path.basename(p) for p in self.paths], "teacher_share": self.share,
                "teacher_test_time_augmentation": [m.card.test_time_augmentation for m in self.models]}


def generated_card(width: float, tile_px: int = 224, context_px: int = 32, gsd_m: float = 10.0,
                   kinds: Sequence[str] = DEFAULT_KINDS) -> ModelCard:
    """The card of a network trained here (threshold and scores are set at export and evaluation)."""
    return ModelCard(
        name="landslide-resunet-families",
        version="2",
        description=f"ResUNet (width {width:g}) trained on generated events of the families {', '.join(kinds)}; "
                    "images normalised per scene.",
        inputs=standard_inputs(),
        output_name="prediction",
        gsd_m=gsd_m,
        tile_px=tile_px,
        context_px=context_px,
        image_normalisation=ImageNormalisation(method=NORMALISATION_SCENE),
        provenance={"training_kinds": list(kinds), "held_out_families": list(HELD_OUT_FAMILIES), "width": width},
    )


def _worker(worker_id: int, seed: int, kinds: List[str], card_json: str, tile_px: int, tiles_per_event: int,
            size_px: int, pairs_path: str, out: "mp.Queue", widenings: Widenings = Widenings()) -> None:
    """Produce (inputs, target) batches of single samples forever."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from model.card import card_from_json

    from .augment import AugmentSettings, augment_sample, sample_inputs
    from .generated import cut_samples, event_layers
    from .real_backgrounds import load_pairs

    card = card_from_json(card_json)
    pairs = load_pairs(pairs_path) if pairs_path and REAL_BACKGROUNDS in kinds else None
    settings = AugmentSettings()
    event_seed = seed * 100_000 + worker_id
    while True:
        event_seed += 1000
        kind = kinds[event_seed // 1000 % len(kinds)]
        rng = np.random.default_rng([event_seed, 5])
        try:
            layers = event_layers(kind, event_seed, card, size_px, pairs, widenings)
        except Exception as exc:  # a degenerate draw (e.g. too few valid pixels): skip it, say so
            print(f"worker {worker_id}: event {kind} {event_seed} skipped: {exc}", file=sys.stderr, flush=True)
            continue
        for sample in cut_samples(layers, tile_px, tiles_per_event, rng):
            sample = augment_sample(sample, rng, settings)
            inputs, target = sample_inputs(sample, card, card.gsd_m)
            out.put(({k: v.astype(np.float16) for k, v in inputs.items()}, target.astype(np.uint8), kind))


NPZ_PART_BYTES = 15_000_000


def save_weight_parts(network, prefix: str) -> List[str]:
    """The network's weights as ``<prefix>_part<k>.npz`` files of at most about 15 MB (float32, in order)."""
    return write_weight_parts(network.get_weights(), prefix)


def write_weight_parts(weights: Sequence[np.ndarray], prefix: str) -> List[str]:
    """Weights, in the network's order, as ``<prefix>_part<k>.npz`` files of at most about 15 MB."""
    parts: List[List[np.ndarray]] = [[]]
    size = 0
    for array in weights:
        if parts[-1] and size + array.nbytes > NPZ_PART_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(array)
        size += array.nbytes
    paths = []
    offset = 0
    for k, part in enumerate(parts):
        path = f"{prefix}_part{k}.npz"
        np.savez(path, **{f"w{offset + i:04d}": array for i, array in enumerate(part)})
        offset += len(part)
        paths.append(path)
    return paths


def load_weight_parts(network, paths: Sequence[str]) -> None:
    """Set the weights written by :func:`save_weight_parts`."""
    network.set_weights(read_weight_parts(paths))


def read_weight_parts(paths: Sequence[str]) -> List[np.ndarray]:
    """The weights written by :func:`write_weight_parts`, in the network's order."""
    arrays: Dict[str, np.ndarray] = {}
    for path in paths:
        with np.load(path) as data:
            arrays.update({key: data[key] for key in data.files})
    return [arrays[key] for key in sorted(arrays)]


def width_dir(out_dir: str, width: float) -> str:
    """Where the network of ``width`` keeps its weights, card and state."""
    return os.path.join(out_dir, f"width_{width:g}")


class _Trainee:
    """One network of the run, its folder and its resumable state."""

    def __init__(self, out_dir: str, width: float, tile_px: int, kinds: Sequence[str], learning_rate: float, log,
                 anneal_steps: int = 0, anneal_to: float = 0.1, warmup_steps: int = 0):
        import keras

        from .losses import loss_weights, output_losses
        from .network import OUTPUT_NAMES, build_resunet

        self.folder = width_dir(out_dir, width)
        os.makedirs(self.folder, exist_ok=True)
        self.card = generated_card(width, tile_px=tile_px, kinds=kinds)
        with open(os.path.join(self.folder, "card.json"), "w", encoding="utf-8") as handle:
            handle.write(self.card.to_json())
        self.state_path = os.path.join(self.folder, STATE_FILE)
        self.state = {"steps": 0, "tiles": 0, "seconds": 0.0, "width": width, "runs": 0, "tiles_by_kind": {}}
        if os.path.exists(self.state_path):
            with open(self.state_path, encoding="utf-8") as handle:
                self.state.update(json.load(handle))
        self.network = build_resunet(width=width, l2=1e-5)
        if self.state.get("weights"):
            load_weight_parts(self.network, [os.path.join(self.folder, p) for p in self.state["weights"]])
            log(f"width {width:g}: resumed from {self.folder} after {self.state['steps']} steps")
        self.plan = LearningRatePlan(learning_rate, self.state["steps"], anneal_steps, anneal_to, warmup_steps)
        self.network.compile(optimizer=keras.optimizers.Adam(learning_rate=self.plan.at(self.state["steps"])),
                             loss=output_losses(OUTPUT_NAMES), loss_weights=loss_weights(OUTPUT_NAMES))
        self.output_names = OUTPUT_NAMES
        self.running = None

    def step(self, x, target) -> float:
        self.network.optimizer.learning_rate.assign(self.plan.at(self.state["steps"]))
        logs = self.network.train_on_batch(x, {name: target for name in self.output_names}, return_dict=True)
        loss = float(logs["loss"])
        self.running = loss if self.running is None else 0.98 * self.running + 0.02 * loss
        self.state["steps"] += 1
        self.state["tiles"] += len(target)
        return loss

    def save(self) -> None:
        """New weight parts first, then the state that names them; then the old parts go."""
        old = list(self.state.get("weights", []))
        prefix = os.path.join(self.folder, f"{WEIGHTS_PREFIX}_{self.state['steps']:07d}")
        self.state["weights"] = [os.path.basename(p) for p in save_weight_parts(self.network, prefix)]
        with open(self.state_path + ".partial", "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=1)
        os.replace(self.state_path + ".partial", self.state_path)
        for name in set(old) - set(self.state["weights"]):
            if os.path.exists(os.path.join(self.folder, name)):
                os.remove(os.path.join(self.folder, name))


def _book(trainees: Dict[float, "_Trainee"], counts: Dict[str, int], seconds: float) -> None:
    """Add the time and the tiles per kind since the last save to every state (a killed run keeps its books)."""
    for trainee in trainees.values():
        trainee.state["seconds"] += seconds
        for kind, count in counts.items():
            trainee.state["tiles_by_kind"][kind] = trainee.state["tiles_by_kind"].get(kind, 0) + count
    counts.clear()


def train(out_dir: str, minutes: float, widths: Sequence[float] = (0.5,), batch_size: int = 16, workers: int = 0,
          kinds: Sequence[str] = DEFAULT_KINDS, pairs_path: str = "", tile_px: int = 224, size_px: int = 512,
          tiles_per_event: int = 12, learning_rate: float = 3e-4, seed: int = 42, save_every_s: float = 120.0,
          log=print, widenings: Widenings = Widenings(), anneal_steps: int = 0, anneal_to: float = 0.1,
          warmup_steps: int = 0, teachers: Sequence[str] = (), teacher_share: float = 1.0) -> Dict[float, "_Trainee"]:
    """Train one network per width on the same batches for ``minutes`` (wall clock); returns them by width.

    ``widenings``: the shares of family events drawn with pale dry grass and little forest, or with snow under a
    bare winter forest (:class:`training.simulate_families.Widenings`); each run's values are kept in ``state.json``.
    ``anneal_steps``, ``anneal_to``, ``warmup_steps``: see :class:`LearningRatePlan` (kept in ``state.json`` too).
    ``teachers``, ``teacher_share``: carded ONNX models whose mean probability makes that share of the target
    (:class:`Teachers`; kept in ``state.json`` as ``teachers_by_run``).
    """
    trainees = {w: _Trainee(out_dir, w, tile_px, kinds, learning_rate, log, anneal_steps, anneal_to, warmup_steps)
                for w in widths}
    first = next(iter(trainees.values()))
    # One onnxruntime thread, so that its pool does not compete with TensorFlow's for the cores. The teachers
    # still cost: a first distillation run here trained at 1.7 tiles/s (two one-pass teachers, batch 8).
    teacher = Teachers(teachers, teacher_share, first.card, threads=1) if teachers else None
    for trainee in trainees.values():
        run = {"run": trainee.state["runs"], "from_step": trainee.state["steps"]}
        trainee.state.setdefault("widenings_by_run", []).append({**run, **dataclasses.asdict(widenings)})
        trainee.state.setdefault("learning_rate_by_run", []).append({"run": run["run"], **trainee.plan.describe()})
        trainee.state.setdefault("teachers_by_run", []).append(
            {**run, **(teacher.describe() if teacher else {"teachers": []})})
    workers = workers or max(1, (os.cpu_count() or 2) - 1)
    context = mp.get_context("spawn")
    samples: "mp.Queue" = context.Queue(maxsize=batch_size * 16)
    processes = [context.Process(target=_worker, daemon=True,
                                 args=(i, seed + first.state["runs"], list(kinds), first.card.to_json(), tile_px,
                                       tiles_per_event, size_px, pairs_path, samples, widenings))
                 for i in range(workers)]
    for process in processes:
        process.start()
    names = {spec.role: spec.tensor_name for spec in first.card.inputs}
    start = time.time()
    last_save = last_log = start
    counts: Dict[str, int] = {}
    steps = 0
    try:
        while time.time() - start < minutes * 60:
            batch = [samples.get(timeout=600) for _ in range(batch_size)]
            x = {names[role]: np.stack([b[0][role] for b in batch]).astype(np.float32) for role in names}
            target = np.stack([b[1] for b in batch]).astype(np.float32)
            if teacher is not None:
                target = teacher.targets({role: x[name] for role, name in names.items()}, target)
            for b in batch:
                counts[b[2]] = counts.get(b[2], 0) + 1
            for trainee in trainees.values():
                trainee.step(x, target)
            steps += 1
            if steps % 50 == 0:
                now = time.time()
                losses = "  ".join(f"w{w:g} {t.running:.4f}" for w, t in trainees.items())
                rate = first.plan.at(first.state["steps"])
                log(f"step {first.state['steps']}  loss {losses}  lr {rate:.2e}  "
                    f"{batch_size * 50 / max(1e-6, now - last_log):.1f} tiles/s  elapsed {now - start:.0f} s  queue {samples.qsize()}")
                last_log = now
            if time.time() - last_save > save_every_s:
                _book(trainees, counts, time.time() - last_save)
                for trainee in trainees.values():
                    trainee.save()
                last_save = time.time()
    finally:
        for process in processes:
            process.terminate()
        _book(trainees, counts, time.time() - last_save)
        for trainee in trainees.values():
            trainee.state["runs"] += 1
            trainee.save()
            log(f"width {trainee.state['width']:g}: saved {trainee.folder}: {trainee.state['steps']} steps, "
                f"{trainee.state['tiles']} tiles, {trainee.state['seconds']:.0f} s in all, running loss {trainee.running}")
    return trainees


def _validation_scene(args):
    """Whole-scene network inputs, label and a change-index baseline of one generated event (worker side)."""
    kind, seed, card_json, size_px, pairs_path = args
    from model.card import card_from_json
    from model.terrain import HALO_PX

    from .augment import sample_inputs
    from .generated import event_layers
    from .real_backgrounds import load_pairs

    card = card_from_json(card_json)
    pairs = load_pairs(pairs_path) if kind == REAL_BACKGROUNDS else None
    layers = event_layers(kind, seed, card, size_px, pairs)
    sample = {"pre": np.moveaxis(layers["pre"], 0, -1), "post": np.moveaxis(layers["post"], 0, -1),
              "dem": np.pad(layers["dem"], HALO_PX, constant_values=np.nan),
              "mask": layers["mask"].astype(np.uint8), "valid": layers["valid"].astype(np.uint8)}
    inputs, target = sample_inputs(sample, card, card.gsd_m)
    brightening = (layers["post"].astype(np.float32).mean(0) - layers["pre"].astype(np.float32).mean(0))
    slope = (inputs["terrain"][..., 1] + 1.0) * 45.0
    return kind, inputs, target, brightening, slope


def validate(network, card: ModelCard, groups: Dict[str, Sequence[str]], events_per_kind: int, size_px: int,
             pairs_path: str, workers: int, log=print) -> Dict[str, object]:
    """Best-MCC threshold on generated events of the training kinds; MCC of held-out families at that threshold.

    Beside each figure, the change-index baseline (post minus pre brightness of
    the normalised images, on slopes of at least 10 degrees) at its own best
    threshold on the same events.
    """
    thresholds = np.round(np.arange(0.05, 1.0, 0.01), 2)
    baseline_thresholds = np.arange(0.0, 120.0, 2.0)
    jobs = [(kind, 900_000 + k, card.to_json(), size_px, pairs_path)
            for group in groups.values() for kind in group for k in range(events_per_kind)]
    context = mp.get_context("spawn")
    confusion: Dict[str, np.ndarray] = {}
    baseline: Dict[str, np.ndarray] = {}
    names = {spec.role: spec.tensor_name for spec in card.inputs}
    with context.Pool(workers) as pool:
        for kind, inputs, target, brightening, slope in pool.imap_unordered(_validation_scene, jobs):
            x = {names[role]: array[None].astype(np.float32) for role, array in inputs.items()}
            outputs = network.predict_on_batch(x)
            probability = np.asarray(outputs["prediction"] if isinstance(outputs, dict) else outputs[0])[0, ..., 0]
            label, valid = target[..., 0] > 0.5, target[..., 1] > 0.5
            confusion[kind] = confusion.get(kind, 0) + threshold_counts(probability[valid], label[valid], thresholds)
            index = np.where(slope >= 10.0, brightening, -1e9)
            baseline[kind] = baseline.get(kind, 0) + threshold_counts(index[valid], label[valid], baseline_thresholds)
    result: Dict[str, object] = {}
    calibration = sum(confusion[k] for k in groups["training"])
    best = int(np.argmax(mcc_of_counts(calibration)))
    threshold = float(thresholds[best])
    result["threshold"] = threshold
    result["calibration_mcc"] = float(mcc_of_counts(calibration)[best])
    for group, kinds_ in groups.items():
        pooled = sum(confusion[k] for k in kinds_)
        pooled_baseline = sum(baseline[k] for k in kinds_)
        result[group] = {
            "pooled_mcc": float(mcc_of_counts(pooled)[best]),
            "baseline_pooled_mcc": float(mcc_of_counts(pooled_baseline).max()),
            "per_kind": {k: {"mcc": float(mcc_of_counts(confusion[k])[best]),
                             "baseline_mcc": float(mcc_of_counts(baseline[k]).max()),
                             "baseline_threshold": float(baseline_thresholds[int(np.argmax(mcc_of_counts(baseline[k])))])}
                         for k in kinds_},
        }
    log(json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--widths", type=float, nargs="+", default=[0.5],
                        help="one network per width, trained on the same batches")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="data processes (default: cores - 1)")
    parser.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS))
    parser.add_argument("--pairs", default="", help="the .npz of training.real_backgrounds.pack_pairs")
    parser.add_argument("--tile-px", type=int, default=224)
    parser.add_argument("--size-px", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--anneal-steps", type=int, default=0,
                        help="this run's own schedule: a half cosine over this many steps from --learning-rate to "
                             "--anneal-to of it, held after (0: the long cosine over the global step count)")
    parser.add_argument("--anneal-to", type=float, default=0.1, help="with --anneal-steps: the final share of the rate")
    parser.add_argument("--warmup-steps", type=int, default=0,
                        help="with --anneal-steps: linear warm-up over this run's first steps")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dry-grassland-chance", type=float, default=0.0,
                        help="share of family events drawn with pale dry grass and little forest, where a scar can be "
                             "darker than its slope (training.simulate_families.with_dry_grassland)")
    parser.add_argument("--forest-snow-chance", type=float, default=0.0,
                        help="share of family events with a leaf-off winter image holding partial snow under the "
                             "bare forest, mostly in the pre image (training.simulate_families.with_forest_snow)")
    parser.add_argument("--teachers", nargs="+", default=[],
                        help="carded ONNX models whose mean probability on each batch becomes the target "
                             "(knowledge distillation; each with its card's test-time augmentation)")
    parser.add_argument("--teacher-share", type=float, default=1.0,
                        help="with --teachers: the teachers' share of the target, the rest the simulated mask")
    parser.add_argument("--parts-dir", default="",
                        help="also write each width's weights as npz parts of at most 15 MB here")
    parser.add_argument("--validate-events", type=int, default=0,
                        help="after training: this many generated events per kind to calibrate and score")
    args = parser.parse_args(argv)
    if args.warmup_steps and not args.anneal_steps:
        parser.error("--warmup-steps needs --anneal-steps (the long schedule has no warm-up)")
    bad = sorted(set(args.kinds) & set(HELD_OUT_FAMILIES))
    if bad:
        parser.error(f"{', '.join(bad)} are held out of training (training.simulate_families.HELD_OUT_FAMILIES)")
    log = lambda m: print(m, flush=True)  # noqa: E731
    trainees = train(args.out, args.minutes, args.widths, args.batch_size, args.workers, args.kinds, args.pairs,
                     args.tile_px, args.size_px, learning_rate=args.learning_rate, seed=args.seed, log=log,
                     widenings=Widenings(args.dry_grassland_chance, args.forest_snow_chance),
                     anneal_steps=args.anneal_steps,
                     anneal_to=args.anneal_to, warmup_steps=args.warmup_steps, teachers=args.teachers,
                     teacher_share=args.teacher_share)
    for width, trainee in trainees.items() if args.parts_dir else ():
        log(f"wrote {save_weight_parts(trainee.network, os.path.join(args.parts_dir, f'width_{width:g}'))}")
    for width, trainee in trainees.items() if args.validate_events else ():
        log(f"validation of width {width:g}")
        result = validate(trainee.network, trainee.card,
                          {"training": list(args.kinds), "held_out": list(HELD_OUT_FAMILIES)},
                          args.validate_events, args.size_px, args.pairs,
                          args.workers or max(1, (os.cpu_count() or 2) - 1), log)
        with open(os.path.join(trainee.folder, "validation.json"), "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
