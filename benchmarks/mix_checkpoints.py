"""A checkpoint whose weights lie part of the way from one committed checkpoint to another (weight-space mixing).

    python benchmarks/mix_checkpoints.py FROM_DIR TO_DIR --share 0.5 --out runs/mix

Each weight becomes ``(1 - share) * from + share * to`` (``training.adapt.interpolated_weights``, the function
*Adapt model to event* uses to move adapted weights back to the base's). FROM_DIR and TO_DIR are checkpoint
folders of ``training.train_generated`` (``state.json`` naming its npz parts, ``card.json``) of the same
network; the output folder is one too, with TO_DIR's card and state, so ``python -m training export-weights``
exports it. This made the "mix" rows of the README's *Scars darker than the slope they strip*, e.g.

    python benchmarks/mix_checkpoints.py training/checkpoints/default_model training/checkpoints/dry_grassland \\
        --share 0.5 --out runs/mix_7118_half

Needs numpy only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from training.adapt import interpolated_weights  # noqa: E402
from training.train_generated import STATE_FILE, read_weight_parts, write_weight_parts  # noqa: E402


def checkpoint_weights(folder: str):
    with open(os.path.join(folder, STATE_FILE), encoding="utf-8") as handle:
        state = json.load(handle)
    return state, read_weight_parts([os.path.join(folder, p) for p in state["weights"]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("from_dir")
    parser.add_argument("to_dir")
    parser.add_argument("--share", type=float, required=True, help="0: FROM_DIR's weights, 1: TO_DIR's")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    _, start = checkpoint_weights(args.from_dir)
    state, end = checkpoint_weights(args.to_dir)
    if [w.shape for w in start] != [w.shape for w in end]:
        parser.error(f"{args.from_dir} and {args.to_dir} hold different networks (their weight shapes differ)")
    os.makedirs(args.out, exist_ok=True)
    mixed = interpolated_weights(start, end, args.share)
    state["weights"] = [os.path.basename(p) for p in write_weight_parts(mixed, os.path.join(args.out, "weights_mix"))]
    state["mixed"] = {"from": args.from_dir, "to": args.to_dir, "share_of_to": args.share}
    with open(os.path.join(args.out, STATE_FILE), "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=1)
    shutil.copy(os.path.join(args.to_dir, "card.json"), args.out)
    print(f"wrote {args.out}: {args.share:g} of the way from {args.from_dir} to {args.to_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
