"""Training throughput (tiles per second) of the paper's ResUNet, full and light widths.

Measures the compiled Keras train step on 224 px tiles (batch 4 by default),
after a warm-up that absorbs graph tracing, and separately the cost of
preparing tiles (augmentation + terrain + scaling) on this machine, so a
user can size a run: ``epoch time ~ tiles / min(train rate, data rate)``.

Usage::

    .venv/bin/python benchmarks/bench_training.py                  # widths 1.0 and 0.25
    .venv/bin/python benchmarks/bench_training.py --widths 0.25 --steps 10

Results go to ``benchmarks/results/training.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def random_sample(rng: np.random.Generator, tile_px: int) -> dict:
    """A tile-store sample with plausible values."""
    y, x = np.mgrid[0:tile_px + 2, 0:tile_px + 2]
    return {
        "pre": rng.integers(20, 200, (tile_px, tile_px, 3)).astype(np.uint8),
        "post": rng.integers(20, 200, (tile_px, tile_px, 3)).astype(np.uint8),
        "dem": (400 + 3.0 * x + 20 * np.sin(y / 9.0)).astype(np.float32),
        "mask": (rng.random((tile_px, tile_px)) > 0.9).astype(np.uint8),
        "valid": np.ones((tile_px, tile_px), np.uint8),
    }


def data_rate(tile_px: int, count: int) -> float:
    """Tiles per second of augmentation + terrain + scaling on one core."""
    from tests.helpers.tiny_models import tiny_card
    from training.augment import AugmentSettings, augment_sample, sample_inputs

    card = tiny_card(tile_px=tile_px, context_px=56)
    rng = np.random.default_rng(0)
    samples = [random_sample(rng, tile_px) for _ in range(count)]
    start = time.perf_counter()
    for sample in samples:
        sample_inputs(augment_sample(sample, rng, AugmentSettings()), card, 10.0)
    return count / (time.perf_counter() - start)


def train_rate(width: float, tile_px: int, batch: int, steps: int) -> dict:
    """Tiles per second of the compiled train step at ``width``."""
    import keras

    from training.config import RunConfig
    from training.network import OUTPUT_NAMES
    from training.train import build_model

    keras.utils.set_random_seed(0)
    network = build_model(RunConfig(output_dir="unused", width=width))
    rng = np.random.default_rng(0)
    x = {"pre_image": rng.uniform(-1, 1, (batch, tile_px, tile_px, 3)).astype(np.float32),
         "post_image": rng.uniform(-1, 1, (batch, tile_px, tile_px, 3)).astype(np.float32),
         "terrain": rng.uniform(-1, 1, (batch, tile_px, tile_px, 2)).astype(np.float32)}
    target = np.stack([(rng.random((batch, tile_px, tile_px)) > 0.9), np.ones((batch, tile_px, tile_px))], -1)
    y = {name: target.astype(np.float32) for name in OUTPUT_NAMES}
    started = time.perf_counter()
    network.train_on_batch(x, y)
    warmup = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        network.train_on_batch(x, y)
    seconds = time.perf_counter() - started
    return {"width": width, "params": int(network.count_params()), "batch": batch, "tile_px": tile_px,
            "steps": steps, "first_step_seconds": warmup, "seconds_per_step": seconds / steps,
            "tiles_per_second": batch * steps / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1.0,0.25", help="width multipliers to measure")
    parser.add_argument("--tile-px", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up step")
    args = parser.parse_args()
    report = {"machine": platform.platform(), "cpu_count": os.cpu_count(),
              "data_tiles_per_second_one_core": data_rate(args.tile_px, 40), "train": []}
    print(f"data preparation: {report['data_tiles_per_second_one_core']:.1f} tiles/s (one core)", flush=True)
    for width in (float(w) for w in args.widths.split(",")):
        result = train_rate(width, args.tile_px, args.batch, args.steps)
        report["train"].append(result)
        print(f"width {width:g}: {result['params']:,} parameters, {result['tiles_per_second']:.2f} tiles/s "
              f"({result['seconds_per_step']:.2f} s per step of {args.batch}; first step {result['first_step_seconds']:.0f} s)",
              flush=True)
    os.makedirs(os.path.join(REPO, "benchmarks", "results"), exist_ok=True)
    target = os.path.join(REPO, "benchmarks", "results", "training.json")
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    print(f"written {target}")


if __name__ == "__main__":
    main()
