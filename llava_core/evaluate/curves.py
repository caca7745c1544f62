"""Training curves for the report: a stage's loss and learning rate against step, from its metrics.json.

The training stage writes ``metrics.json`` with ``history``, one ``{step, loss, learning_rate}``
per logged step (``logging_steps``); the report job draws it, so changing this plot reruns the
report, not training. A file from before ``history`` existed has ``loss_history`` only: its
losses are drawn against the log entry's number, without a learning rate.
"""

from __future__ import annotations

import math
from pathlib import Path

from llava_core.io import atomic_write


def training_history(metrics: dict) -> tuple[list[dict], str]:
    """The logged steps of a stage (``[{step, loss, learning_rate}]``) and the x axis's name."""
    if metrics.get("history"):
        return list(metrics["history"]), "step"
    losses = metrics.get("loss_history") or []
    return [{"step": i, "loss": loss, "learning_rate": None} for i, loss in enumerate(losses, 1)], "logged step (index)"


def _number(x) -> float:
    return float("nan") if x is None else float(x)


def plot_training_curves(metrics: dict, title: str, path: Path) -> None:
    """Write a PNG of the loss (left axis) and the learning rate (right axis) against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history, xlabel = training_history(metrics)
    steps = [int(h["step"]) for h in history]
    loss = [_number(h.get("loss")) for h in history]
    lr = [_number(h.get("learning_rate")) for h in history]
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    if history:
        ax.plot(steps, loss, color="tab:blue", marker="." if len(steps) < 50 else None, label="loss")
        final = next((v for v in reversed(loss) if not math.isnan(v)), float("nan"))
        title += f" ({len(history)} logged steps, final loss {final:.3f})"
    else:
        ax.text(0.5, 0.5, "no training step was logged", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training loss", color="tab:blue")
    ax.tick_params(axis="y", colors="tab:blue")
    if any(not math.isnan(v) for v in lr):
        ax2 = ax.twinx()
        ax2.plot(steps, lr, color="tab:orange", label="learning rate")
        ax2.set_ylabel("learning rate", color="tab:orange")
        ax2.tick_params(axis="y", colors="tab:orange")
        ax2.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        ax2.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)


def plot_note(title: str, note: str, path: Path) -> None:
    """A figure that only says why there is nothing to plot (a released checkpoint has no training
    curves here, but its report has the same outputs as a trained experiment's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 1.6))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, note, ha="center", va="center", wrap=True)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
