"""Curves, a confusion matrix and an image grid as PNG: figures built with Matplotlib's object API.

No pyplot: a `Figure` owns its canvas, so the API can draw in several threads at once and nothing
ever opens a window. Epoch rows are anything with the `EpochMetrics` attribute names (the engine's
records or the service's SQL rows).
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.results import TrainResult

# (label, train attribute, validation attribute) of the metric curve, by task
_CLASSIFIER_METRIC = ("accuracy", "train_accuracy", "val_accuracy")
_REGRESSION_METRIC = ("MSE", "train_mse", "val_mse")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def to_png(fig) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _curves(ax, series: Sequence[tuple[str, Sequence[Any], str]], epochs: Sequence[Any]) -> None:
    for label, rows, attr in series:
        points = [(r.epoch, getattr(r, attr)) for r in rows if getattr(r, attr, None) is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    if not epochs:
        ax.text(0.5, 0.5, "no finished epoch yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend()
    ax.set_xlabel("epoch")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers


def is_regression(rows: Sequence[Any]) -> bool:
    """True when the rows carry MSE rather than accuracy."""
    return bool(rows) and getattr(rows[0], "val_accuracy", None) is None and \
        getattr(rows[0], "train_mse", None) is not None


def loss_png(rows: Sequence[Any], title: str = "Loss") -> bytes:
    """Train and validation loss per epoch."""
    fig = _figure(5, 3.5)
    ax = fig.add_subplot()
    _curves(ax, [("train", rows, "train_loss"), ("validation", rows, "val_loss")], rows)
    ax.set(ylabel="loss", title=title)
    return to_png(fig)


def metric_png(rows: Sequence[Any], title: str | None = None) -> bytes:
    """Train and validation accuracy (classifiers) or MSE (regression) per epoch."""
    label, train_attr, val_attr = _REGRESSION_METRIC if is_regression(rows) else _CLASSIFIER_METRIC
    fig = _figure(5, 3.5)
    ax = fig.add_subplot()
    _curves(ax, [("train", rows, train_attr), ("validation", rows, val_attr)], rows)
    ax.set(ylabel=label, title=title or label.capitalize())
    return to_png(fig)


def compare_png(runs: Sequence[tuple[str, Sequence[Any]]], metric: str) -> bytes:
    """One metric (an EpochMetrics attribute) of several runs on shared axes."""
    fig = _figure(6.5, 4)
    ax = fig.add_subplot()
    _curves(ax, [(label, rows, metric) for label, rows in runs], [r for _, rows in runs for r in rows])
    ax.set(ylabel=metric, title=f"{metric} by epoch")
    return to_png(fig)


_STATUS_COLOURS = {"succeeded": "tab:green", "running": "tab:blue", "stopped": "tab:orange",
                   "failed": "tab:red", "cancelled": "tab:gray"}


def leaderboard_png(trials: Sequence[tuple[str, float, str]], metric: str, title: str) -> bytes:
    """A sweep's trials as bars, best first: (label, best metric, status); the colour is the status."""
    fig = _figure(7, 1.2 + 0.32 * max(len(trials), 1))
    ax = fig.add_subplot()
    labels = [label for label, _, _ in trials][::-1]  # barh draws bottom-up: best on top
    values = [value for _, value, _ in trials][::-1]
    colours = [_STATUS_COLOURS.get(status, "tab:purple") for _, _, status in trials][::-1]
    ax.barh(range(len(trials)), values, color=colours)
    ax.set_yticks(range(len(trials)), labels, fontsize=8)
    for y, value in enumerate(values):
        ax.annotate(f"{value:.4g}", (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    low, high = min([0.0, *values]), max([0.0, *values])
    ax.set_xlim(low, high + 0.15 * (high - low or 1.0))  # room for the value labels
    ax.set(xlabel=metric, title=title)
    ax.legend(handles=[_patch(colour, status) for status, colour in _STATUS_COLOURS.items()
                       if status in {s for _, _, s in trials}], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return to_png(fig)


def quality_png(windows: Sequence[Any], label_threshold: float, title: str) -> bytes:
    """A served model's windows: requests (bars), and below the label-mix divergence against its threshold,
    abstain and low-confidence rates, mean confidence and feedback accuracy; drifted windows shaded."""
    fig = _figure(7, 4.5)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    x = [w.start for w in windows]
    width = (windows[1].start - windows[0].start) * 0.8 if len(windows) > 1 else 0.02
    top.bar(x, [w.requests for w in windows], width=width, align="edge", color="#3b7ddd")
    top.set(ylabel="requests", title=title)
    for label, figure, style in (("label JS", lambda w: w.label_js, "o-"),
                                 ("abstain", lambda w: w.abstain_rate, "s--"),
                                 ("low confidence", lambda w: w.low_confidence_rate, "^--"),
                                 ("mean confidence", lambda w: w.confidence.mean, "x-"),
                                 ("feedback accuracy", lambda w: w.feedback_accuracy, "d-")):
        points = [(w.start, figure(w)) for w in windows if figure(w) is not None]
        if points:
            bottom.plot([p[0] for p in points], [p[1] for p in points], style, label=label, markersize=4)
    bottom.axhline(label_threshold, color="#b3261e", linewidth=0.8, linestyle=":", label="JS threshold")
    for w in windows:
        if w.drift:
            for ax in (top, bottom):
                ax.axvspan(w.start, w.end, color="#f8d9d9", zorder=0)
    bottom.set(ylabel="share / divergence", ylim=(0, 1.35), yticks=[0, 0.25, 0.5, 0.75, 1])  # the legend sits above 1
    bottom.legend(fontsize=7, loc="upper left", ncol=3)
    fig.autofmt_xdate()
    return to_png(fig)


def _patch(colour: str, label: str):
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)


def confusion_matrix_png(cm: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> bytes:
    """Counts with rows as the true class and columns as the predicted one."""
    fig = _figure(5.5, 5)
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    top = max(max(row) for row in cm) or 1
    for i, row in enumerate(cm):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if n > top / 2 else "black")
    return to_png(fig)


def image_grid_png(images: Sequence[Any], captions: Sequence[str], title: str, columns: int = 5) -> bytes:
    """HxW (grey) or HxWx3 arrays in [0, 1], one caption under each."""
    rows = max(1, -(-len(images) // columns))
    fig = _figure(2 * columns, 2.3 * rows + 0.4)
    fig.suptitle(title)
    for n, (image, caption) in enumerate(zip(images, captions), start=1):
        ax = fig.add_subplot(rows, columns, n)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    return to_png(fig)


def write_plots(result: TrainResult, classes: list[str], out_dir: Path) -> list[Path]:
    """Write loss.png, metric.png and (classifiers) confusion_matrix.png to out_dir; returns the paths."""
    pngs = {"loss.png": loss_png(result.epochs), "metric.png": metric_png(result.epochs)}
    if result.test is not None and result.test.confusion_matrix:
        pngs["confusion_matrix.png"] = confusion_matrix_png(result.test.confusion_matrix, classes,
                                                            "Confusion matrix (test)")
    written = []
    for name, png in pngs.items():
        path = Path(out_dir) / name
        path.write_bytes(png)
        written.append(path)
    return written
