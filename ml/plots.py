"""Curves and a confusion matrix as PNG files, drawn once at the end of a run."""
from __future__ import annotations

from pathlib import Path

from ml.results import TrainResult


def write_plots(result: TrainResult, classes: list[str], out_dir: Path) -> list[Path]:
    """Write loss.png, metric.png and (classifiers) confusion_matrix.png to out_dir; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    epochs = [m.epoch for m in result.epochs]
    written: list[Path] = []

    def save(fig, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(epochs, [m.train_loss for m in result.epochs], marker="o", label="train")
    ax.plot(epochs, [m.val_loss for m in result.epochs], marker="o", label="validation")
    ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax.legend()
    save(fig, "loss.png")

    regression = result.epochs and result.epochs[0].val_accuracy is None
    fig, ax = plt.subplots(figsize=(5, 3.5))
    if regression:
        ax.plot(epochs, [m.train_mse for m in result.epochs], marker="o", label="train MSE")
        ax.plot(epochs, [m.val_mse for m in result.epochs], marker="o", label="validation MSE")
        ax.set(xlabel="epoch", ylabel="MSE", title="Mean squared error")
    else:
        ax.plot(epochs, [m.train_accuracy for m in result.epochs], marker="o", label="train")
        ax.plot(epochs, [m.val_accuracy for m in result.epochs], marker="o", label="validation")
        ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    ax.legend()
    save(fig, "metric.png")

    if result.test is not None and result.test.confusion_matrix:
        cm = result.test.confusion_matrix
        fig, ax = plt.subplots(figsize=(5.5, 5))
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test)")
        top = max(max(row) for row in cm) or 1
        for i, row in enumerate(cm):
            for j, n in enumerate(row):
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="white" if n > top / 2 else "black")
        save(fig, "confusion_matrix.png")
    return written
