"""The results table and spider plots of an experiment (the paper's Figures 2 and 4).
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any, Dict, List, Sequence, Tuple

METRICS: Tuple[str, ...] = ("precision", "recall", "f1", "mcc")
CSV_COLUMNS: Tuple[str, ...] = ("resolution_m", "kind", "model", "trained_on", "evaluated_event", "relation",
                                "tp", "fp", "fn", "tn", "precision", "recall", "f1", "mcc")


def write_results_csv(rows: Sequence[Dict[str, Any]], path: str) -> str:
    """The table of every model and evaluated event (columns :data:`CSV_COLUMNS`)."""
    partial = path + ".partial"
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for row in rows:
            out = {key: row[key] for key in CSV_COLUMNS}
            out["resolution_m"] = f"{float(row['resolution_m']):g}"
            out["trained_on"] = " + ".join(row["trained_on"])
            for key in METRICS:
                out[key] = f"{float(row[key]):.4f}"
            writer.writerow(out)
    os.replace(partial, path)
    return path


_SHORT_RELATION = {"trained on": "trained on", "left out": "left out", "other training event": "other training",
                   "unseen": "unseen"}
_METRIC_STYLE = {"precision": ("Precision", "#1f77b4"), "recall": ("Recall", "#ff7f0e"),
                 "f1": ("F1", "#2ca02c"), "mcc": ("MCC", "#d62728")}


def spider_plot(rows: Sequence[Dict[str, Any]], path: str, title: str) -> str:
    """One polar panel per model: an axis per evaluated event, a closed line per metric (radius 0..1).

    Negative MCC values are drawn at 0 (the table keeps them).
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models: List[str] = []
    for row in rows:
        if row["model"] not in models:
            models.append(row["model"])
    if not models:
        raise ValueError("No results to plot.")
    columns = min(4, len(models))
    lines = int(math.ceil(len(models) / columns))
    figure = Figure(figsize=(5.0 * columns, 5.2 * lines + 0.8))
    FigureCanvasAgg(figure)
    for index, model_name in enumerate(models):
        mine = [r for r in rows if r["model"] == model_name]
        axes = figure.add_subplot(lines, columns, index + 1, projection="polar")
        angles = np.linspace(0, 2 * np.pi, len(mine), endpoint=False)
        closed = np.concatenate([angles, angles[:1]])
        for metric in METRICS:
            name, colour = _METRIC_STYLE[metric]
            values = np.clip([float(r[metric]) for r in mine], 0.0, 1.0)
            axes.plot(closed, np.concatenate([values, values[:1]]), color=colour, linewidth=1.5, marker="o",
                      markersize=3, label=name)
        axes.set_ylim(0.0, 1.0)
        axes.set_yticks([0.25, 0.5, 0.75, 1.0])
        axes.set_rlabel_position(180.0 / len(mine))  # between the first two event axes
        axes.tick_params(axis="y", labelsize=7)
        axes.set_xticks(angles)
        axes.set_xticklabels([f"{r['evaluated_event']}\n({_SHORT_RELATION[r['relation']]})" for r in mine],
                             fontsize=7)
        axes.tick_params(axis="x", pad=12)
        axes.set_title(model_name, fontsize=9, pad=28)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(METRICS), frameon=False)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout(rect=(0, 0.05, 1, 0.95))
    partial = path + ".partial.png"
    figure.savefig(partial, dpi=110)
    os.replace(partial, path)
    return path
