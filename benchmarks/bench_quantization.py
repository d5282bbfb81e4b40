"""Does onnxruntime int8 quantization make a model faster on this machine? Float against int8, in one run.

    .venv/bin/python benchmarks/bench_quantization.py [--model model/default_model.onnx] [--window-px 1088] \
        [--json benchmarks/results/quantization_default_model.json]

The model is quantized statically (onnxruntime.quantization: QDQ with unsigned 8-bit activations and signed
8-bit per-channel weights, and the older operator format with both unsigned) after onnxruntime's own
pre-processing, calibrated on smooth random fields in [-1, 1] (``training.export.random_fields``, those of the
export's parity check). Each model then runs one window (batch 1, the network alone: one pass, no test-time
augmentation, no reading or writing) on the same inputs with the plugin's session options
(``model.session.open_session``, 2 threads by default); the best of ``--repeats`` timings is kept. Reported:
seconds per window, the ratio to the float model (above 1: slower) and the mean and largest difference of the
probabilities. Int8 convolutions are fast only where the CPU has dot-product instructions for 8-bit integers
(AVX-512 VNNI or AVX-VNNI); the CPU flags are recorded beside the timings.

The probability differences are on random fields, with a calibration on random fields: they show that the copy
computes something close or not, and say nothing of its accuracy on events. Accuracy is not scored here: a
quantized model that is slower than its float model is not worth shipping, and one that is faster must still be
scored with ``score_families.py`` and ``score_hokkaido.py`` (at most 0.01 MCC lost, issue 11).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from model.session import open_session  # noqa: E402
from training.export import random_fields  # noqa: E402  (numpy only; no TensorFlow)

INT8_FLAGS = ("avx512_vnni", "avx_vnni", "avx512f", "avx2")


def cpu_flags() -> List[str]:
    """Which of :data:`INT8_FLAGS` this CPU has (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in INT8_FLAGS if f in flags]
    except OSError:
        pass
    return []


def quantized_copies(model_path: str, inputs: Dict[str, int], folder: str) -> Dict[str, str]:
    """The model quantized in two formats, written to ``folder``; name -> path."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Fields(CalibrationDataReader):
        def __init__(self):
            self.seeds = iter(range(8))

        def get_next(self):
            seed = next(self.seeds, None)
            return None if seed is None else random_fields(inputs, 256, 1, seed)

    prepared = os.path.join(folder, "prepared.onnx")
    quant_pre_process(model_path, prepared, skip_symbolic_shape=True)
    out = {}
    for name, quant_format, activations, weights in (
            ("int8_qdq_u8s8", QuantFormat.QDQ, QuantType.QUInt8, QuantType.QInt8),
            ("int8_operators_u8u8", QuantFormat.QOperator, QuantType.QUInt8, QuantType.QUInt8)):
        path = os.path.join(folder, f"{name}.onnx")
        quantize_static(prepared, path, Fields(), quant_format=quant_format, activation_type=activations,
                        weight_type=weights, per_channel=True)
        out[name] = path
    return out


def seconds_per_window(session, feed: Dict[str, np.ndarray], repeats: int):
    output = session.run(None, feed)[0]  # warm-up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        timings.append(time.perf_counter() - start)
    return min(timings), np.asarray(output, dtype=np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.path.join(REPO_ROOT, "model", "default_model.onnx"))
    parser.add_argument("--window-px", type=int, default=1088, help="the plugin's 1024 px window with its margins")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    float_session = open_session(args.model, args.threads)
    inputs = {i.name: int(i.shape[-1]) for i in float_session.get_inputs()}
    feed = random_fields(inputs, args.window_px, 1, seed=100)
    report = {"what": "one window through the network alone (batch 1, one pass), float model against int8 copies, "
                      "best of the repeats, same inputs, same run",
              "model": os.path.relpath(os.path.abspath(args.model), REPO_ROOT), "window_px": args.window_px,
              "threads": args.threads, "repeats": args.repeats, "machine": platform.processor() or platform.machine(),
              "cpu_int8_flags": cpu_flags(), "models": {}}
    float_seconds, float_output = seconds_per_window(float_session, feed, args.repeats)
    report["models"]["float32"] = {"seconds_per_window": round(float_seconds, 4), "ratio_to_float": 1.0}
    print(f"float32: {float_seconds:.3f} s per {args.window_px} px window", flush=True)
    with tempfile.TemporaryDirectory(prefix="quantization_") as folder:
        for name, path in quantized_copies(args.model, inputs, folder).items():
            seconds, output = seconds_per_window(open_session(path, args.threads), feed, args.repeats)
            entry = {"seconds_per_window": round(seconds, 4), "ratio_to_float": round(seconds / float_seconds, 3),
                     "max_abs_probability_difference": round(float(np.max(np.abs(output - float_output))), 4),
                     "mean_abs_probability_difference": round(float(np.mean(np.abs(output - float_output))), 4),
                     "bytes": os.path.getsize(path)}
            report["models"][name] = entry
            print(f"{name}: {seconds:.3f} s per window, {entry['ratio_to_float']:.2f} x the float model's time, "
                  f"probability difference mean {entry['mean_abs_probability_difference']:.3f}, largest "
                  f"{entry['max_abs_probability_difference']:.3f}", flush=True)
    print(f"CPU int8 flags here: {', '.join(report['cpu_int8_flags']) or 'none of ' + ', '.join(INT8_FLAGS)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
