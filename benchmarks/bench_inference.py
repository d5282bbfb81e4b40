"""Streaming overlap-tile inference against the method notebook's tiling, on one machine, in one run.

Strategies (each runs in its own child process so its peak memory is its own):

- ``notebook_keras``: the authors' notebook: the whole scene in memory, 224 px
  tiles at stride 112, batch 1, the central 112 px kept, Keras ``predict_on_batch``.
- ``notebook_onnx``: the same tiling with onnxruntime.
- ``streaming_W_M``: this plugin's engine (``model.pipeline.map_landslides``),
  windows of W px with an M px context margin, reading GeoTIFFs by windows.

Throughput is km² of scene per minute at 10 m (the notebook's lost border
counts as mapped, which flatters it); memory is the child's peak resident set
size. Agreement between a streaming run and ``notebook_onnx`` is measured on
the pixels both predicted: IoU of the masks at the card threshold and the mean
absolute probability difference.

Usage::

    .venv/bin/python benchmarks/bench_inference.py                 # defaults below
    .venv/bin/python benchmarks/bench_inference.py --scene-px 1024 --windows 512:32
    .venv/bin/python benchmarks/bench_inference.py --model model/default_model.onnx --keras-weights none
    .venv/bin/python benchmarks/bench_inference.py --model model/default_model.onnx --keras-weights none \
        --event resources/sample_event --windows 512:16,512:32,512:56,1024:32 --tag _sample_default_model

Without ``--model``, the paper's network at full width (20.8 M parameters) is
built with seeded random weights and exported with a card (cached under
``benchmarks/.cache``). Results go to ``benchmarks/results/`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
CACHE = os.path.join(REPO, "benchmarks", ".cache")
RESULTS = os.path.join(REPO, "benchmarks", "results")
NOTEBOOK_TILE_PX = 224
NOTEBOOK_STRIDE_PX = 112
GSD_M = 10.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Read from ``VmHWM`` in /proc (Linux): ``getrusage``'s ``ru_maxrss`` survives
    ``execve``, so a child would report its parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------------------- model

def full_width_model(seed: int = 0):
    """The paper's network at width 1.0, seeded random weights: (keras weights path, onnx path)."""
    os.makedirs(CACHE, exist_ok=True)
    weights = os.path.join(CACHE, f"resunet_w1_seed{seed}.weights.h5")
    onnx_path = os.path.join(CACHE, f"resunet_w1_seed{seed}.onnx")
    if os.path.exists(weights) and os.path.exists(onnx_path):
        return weights, onnx_path
    import keras

    from model.card import OUTPUT_NAME, ModelCard, standard_inputs
    from training.export import export_onnx
    from training.network import build_resunet

    keras.utils.set_random_seed(seed)
    network = build_resunet(width=1.0)
    network.save_weights(weights)
    card = ModelCard(
        name="resunet-random-benchmark", version="0", description="Random weights, for timing only.",
        inputs=standard_inputs(), output_name=OUTPUT_NAME, gsd_m=GSD_M, tile_px=224, context_px=56,
        provenance={"trained_on": "nothing: random weights for benchmarks"},
    )
    # Untrained batch-norm statistics let activations grow through 40 residual blocks, so float32
    # rounding alone separates onnxruntime from Keras by ~4e-3 here: no parity limit for this
    # timing-only model (shipped models keep export's 1e-4).
    worst = export_onnx(network, card, onnx_path, overwrite=True, tolerance=float("inf"))
    print(f"random full-width model exported; onnxruntime vs Keras max difference {worst:.2g}")
    return weights, onnx_path


# ----------------------------------------------------------------------------- scene

def make_scene(folder: str, size_px: int, seed: int = 0):
    """A textured 8-bit pre/post pair and a DEM, size_px square at 10 m in UTM 33N."""
    from osgeo import gdal, osr

    rng = np.random.default_rng(seed)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    gt = (500000.0, GSD_M, 0.0, 5200000.0, 0.0, -GSD_M)
    paths = {}
    for name, bands, dtype in (("pre", 3, gdal.GDT_Byte), ("post", 3, gdal.GDT_Byte), ("dem", 1, gdal.GDT_Float32)):
        path = os.path.join(folder, f"{name}.tif")
        ds = gdal.GetDriverByName("GTiff").Create(path, size_px, size_px, bands, dtype, ["TILED=YES", "COMPRESS=DEFLATE"])
        ds.SetGeoTransform(gt)
        ds.SetProjection(srs.ExportToWkt())
        for row in range(0, size_px, 512):
            rows = min(512, size_px - row)
            y, x = np.mgrid[row:row + rows, 0:size_px].astype(np.float32)
            if name == "dem":
                block = 500 + 300 * np.sin(x / 150.0) * np.cos(y / 110.0) + 40 * np.sin(x / 23.0 + y / 31.0)
                ds.GetRasterBand(1).WriteArray(block.astype(np.float32), 0, row)
                continue
            base = 90 + 40 * np.sin(x / 37.0) * np.cos(y / 29.0)
            for band in range(bands):
                noise = rng.normal(0, 12, base.shape)
                value = base + noise + (25 if name == "post" and band == 0 else 0) * (np.sin(x / 61.0 + y / 47.0) > 0.9)
                ds.GetRasterBand(band + 1).WriteArray(np.clip(value, 0, 255).astype(np.uint8), 0, row)
        ds = None
        paths[name] = path
    return paths


# ----------------------------------------------------------------------------- strategies

def scene_inputs(paths, onnx_path):
    """Whole-scene model inputs, prepared exactly as the engine prepares a window."""
    from model.grid import RasterInput
    from model.pipeline import MappingRequest, EventSources, check_request
    from model.tiling import Window

    request = MappingRequest(onnx_path, RasterInput(paths["pre"], (1, 2, 3)), RasterInput(paths["post"], (1, 2, 3)),
                             RasterInput(paths["dem"], (1,)))
    plan = check_request(request)
    grid = plan.grid
    window = Window(0, 0, 0, max(grid.width_px, grid.height_px), 0, grid.height_px, grid.width_px)
    sources = EventSources(request, grid, plan.dem_metres_per_unit)
    sources.measure_scene(plan.model.card, lambda: None, lambda message: None)  # a normalising card needs it
    inputs, valid = sources.read(window, plan.model.card)
    return inputs, valid, grid, plan.model.card


def notebook_strategy(paths, onnx_path, weights, engine, out_path):
    """224 px tiles, stride 112, batch 1, central 112 px kept; whole scene in memory."""
    inputs, valid, grid, card = scene_inputs(paths, onnx_path)
    rows, cols = valid.shape
    probability = np.full((rows, cols), np.nan, np.float32)
    if engine == "keras":
        from training.network import build_resunet, prediction_model

        network = build_resunet(width=1.0)
        network.load_weights(weights)
        predictor = prediction_model(network)
        run = lambda feed: np.asarray(predictor.predict_on_batch(feed))[0, ..., 0]  # noqa: E731
    else:
        from model.session import LandslideModel

        model = LandslideModel(onnx_path, threads=0)
        run = lambda feed: model.predict(feed)[0]  # noqa: E731
    keep0 = (NOTEBOOK_TILE_PX - NOTEBOOK_STRIDE_PX) // 2
    tiles = 0
    for r in range(0, rows - NOTEBOOK_TILE_PX + 1, NOTEBOOK_STRIDE_PX):
        for c in range(0, cols - NOTEBOOK_TILE_PX + 1, NOTEBOOK_STRIDE_PX):
            feed = {k: v[None, r:r + NOTEBOOK_TILE_PX, c:c + NOTEBOOK_TILE_PX] for k, v in inputs.items()}
            out = run(feed)
            probability[r + keep0:r + keep0 + NOTEBOOK_STRIDE_PX, c + keep0:c + keep0 + NOTEBOOK_STRIDE_PX] = \
                out[keep0:keep0 + NOTEBOOK_STRIDE_PX, keep0:keep0 + NOTEBOOK_STRIDE_PX]
            tiles += 1
    np.save(out_path, probability)
    return {"tiles": tiles, "predicted_fraction": float(np.isfinite(probability).mean())}


def streaming_strategy(paths, onnx_path, window_px, margin_px, batch, threads, out_path, gdal_cache_mb=None):
    """The plugin's engine writing a probability GeoTIFF (and making the polygons, as a run always does)."""
    from model.grid import RasterInput
    from model.pipeline import MappingRequest, map_landslides

    cache = {} if gdal_cache_mb is None else {"gdal_cache_mb": gdal_cache_mb}
    request = MappingRequest(onnx_path, RasterInput(paths["pre"], (1, 2, 3)), RasterInput(paths["post"], (1, 2, 3)),
                             RasterInput(paths["dem"], (1,)), probability_path=out_path, window_px=window_px,
                             margin_px=margin_px, batch_size=batch, threads=threads, **cache)
    # Polygons are made and let go, as when a run hands them to a feature sink.
    result = map_landslides(request, on_polygon=lambda polygon: None)
    return {"windows": result.windows_total, "window_px": result.window_px, "margin_px": result.margin_px,
            "landslides": result.landslide_count, "gdal_cache_mb": request.gdal_cache_mb}


def child(args) -> None:
    """Run one strategy and print a JSON line with its time and peak memory."""
    paths = json.loads(args.paths)
    start = time.perf_counter()
    if args.strategy.startswith("notebook"):
        info = notebook_strategy(paths, args.onnx, args.weights, args.strategy.split("_")[1], args.out)
    else:
        _, window_px, margin_px = args.strategy.split("_")
        info = streaming_strategy(paths, args.onnx, int(window_px), int(margin_px), args.batch, args.threads, args.out,
                                  args.gdal_cache_mb)
    info.update(seconds=time.perf_counter() - start, peak_rss_mb=peak_rss_mb())
    print("RESULT " + json.dumps(info))


def run_child(strategy, paths, onnx_path, weights, out, batch, threads, gdal_cache_mb=None):
    """Start a child for one strategy; return its result dict."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", strategy, "--paths", json.dumps(paths),
           "--onnx", onnx_path, "--weights", weights or "", "--out", out, "--batch", str(batch), "--threads", str(threads)]
    if gdal_cache_mb is not None:
        cmd += ["--gdal-cache-mb", str(gdal_cache_mb)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{strategy} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def agreement(streaming_tif, notebook_npy, threshold):
    """IoU of the masks and mean |dp| where both strategies predicted."""
    from osgeo import gdal

    a = gdal.Open(streaming_tif).ReadAsArray().astype(np.float32)
    b = np.load(notebook_npy)
    both = np.isfinite(b) & (a >= 0)
    mask_a, mask_b = a[both] >= threshold, b[both] >= threshold
    union = np.count_nonzero(mask_a | mask_b)
    return {
        "mask_iou": float(np.count_nonzero(mask_a & mask_b) / union) if union else 1.0,
        "mean_abs_probability_difference": float(np.mean(np.abs(a[both] - b[both]))),
        "compared_fraction": float(both.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene-px", type=int, default=1344, help="square scene size in pixels (10 m)")
    parser.add_argument("--windows", default="512:56,512:32,768:56,1024:56", help="streaming variants W:M")
    parser.add_argument("--batch", type=int, default=1, help="streaming windows per batch")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = all cores)")
    parser.add_argument("--model", help="a carded ONNX model instead of the random full-width network")
    parser.add_argument("--event", help="an event folder (pre.tif, post.tif, dem.tif) instead of the synthetic scene")
    parser.add_argument("--keras-weights", default=None, help="'none' skips the Keras baseline")
    parser.add_argument("--only-streaming", action="store_true", help="skip both notebook baselines")
    parser.add_argument("--gdal-cache-mb", type=int, default=None, help="streaming: GDAL block cache cap (default: the engine's)")
    parser.add_argument("--tag", default="", help="suffix of the results file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for hidden in ("--paths", "--onnx", "--weights", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.strategy = args.child
        child(args)
        return

    weights, onnx_path = (None, args.model) if args.model else full_width_model()
    if args.keras_weights:
        weights = None if args.keras_weights == "none" else args.keras_weights
    from model.session import read_card

    card = read_card(onnx_path)
    work = tempfile.mkdtemp(prefix="bench_")
    if args.event:  # a real or simulated event folder instead of the synthetic scene
        from osgeo import gdal

        paths = {name: os.path.join(args.event, f"{name}.tif") for name in ("pre", "post", "dem")}
        pre = gdal.Open(paths["pre"])
        x_size, y_size = pre.RasterXSize * abs(pre.GetGeoTransform()[1]), pre.RasterYSize * abs(pre.GetGeoTransform()[5])
        area_km2 = x_size * y_size / 1e6
        args.scene_px = pre.RasterXSize
        pre = None
    else:
        paths = make_scene(work, args.scene_px)
        area_km2 = (args.scene_px * GSD_M / 1000.0) ** 2
    strategies = [] if args.only_streaming else (["notebook_keras"] if weights else []) + ["notebook_onnx"]
    strategies += [f"streaming_{w.split(':')[0]}_{w.split(':')[1]}" for w in args.windows.split(",") if w]
    results = {}
    for strategy in strategies:
        out = os.path.join(work, strategy + (".npy" if strategy.startswith("notebook") else ".tif"))
        info = run_child(strategy, paths, onnx_path, weights, out, args.batch, args.threads, args.gdal_cache_mb)
        info["km2_per_min"] = area_km2 / (info["seconds"] / 60.0)
        info["output"] = out
        results[strategy] = info
        print(f"{strategy:24s} {info['seconds']:8.1f} s  {info['km2_per_min']:7.1f} km²/min  "
              f"peak {info['peak_rss_mb']:7.0f} MiB", flush=True)
    baseline = results.get("notebook_keras") or results.get("notebook_onnx")
    for name, info in results.items():
        if baseline:
            info["speed_vs_baseline"] = info["km2_per_min"] / baseline["km2_per_min"]
        if name.startswith("streaming") and "notebook_onnx" in results:
            info.update(agreement(info["output"], results["notebook_onnx"]["output"], card.threshold))
    report = {
        "scene_px": args.scene_px, "gsd_m": GSD_M, "area_km2": area_km2, "model": os.path.basename(onnx_path),
        "model_card_name": card.name, "baseline": "notebook_keras" if "notebook_keras" in results else "notebook_onnx",
        "cpu_count": os.cpu_count(), "machine": platform.platform(), "threads": args.threads, "batch": args.batch,
        "results": results,
    }
    os.makedirs(RESULTS, exist_ok=True)
    target = os.path.join(RESULTS, f"inference_{args.scene_px}px{args.tag}.json")
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    print(json.dumps({k: {m: round(v, 4) if isinstance(v, float) else v for m, v in r.items() if m != "output"}
                      for k, r in results.items()}, indent=1))
    print(f"written {target}")


if __name__ == "__main__":
    main()
