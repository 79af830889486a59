"""Loss and learning-rate curves from a run's TensorBoard event files (the paper's Fig. 8)."""

from __future__ import annotations

from pathlib import Path

from brushwork.core.errors import BrushworkError
from brushwork.core.fileio import save_figure


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = Path(run_dir) / "tb"
    if not tb.is_dir() or not any(tb.rglob("events.*")):
        raise BrushworkError(f"{run_dir}: no TensorBoard events under {tb}; is this a run dir of a trainer "
                             "(train/cyclegan.py, train/fast_style.py)?")
    out: dict[str, list[tuple[int, float]]] = {}
    for events in sorted({p.parent for p in tb.rglob("events.*")}):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    for tag in out:  # a resumed run logs into the same folder: keep the last value per step
        out[tag] = sorted(dict(out[tag]).items())
    return out


GROUP_TITLES = {"G": "generators (adversarial)", "D": "discriminators", "cycle": "cycle consistency",
                "idt": "identity", "content": "content", "style": "style", "tv": "total variation"}


def loss_groups(scalars: dict) -> dict[str, list[str]]:
    """Every loss tag, grouped by what it measures: ``G_A``/``G_B`` together, ``cycle_A``/``cycle_B`` together,
    ... (the domain suffix dropped), in the order the run logged them."""
    groups: dict[str, list[str]] = {}
    for tag in scalars:
        if tag.startswith("loss/"):
            name = tag.split("/", 1)[1]
            key = name[:-2] if name[-2:] in ("_A", "_B") else name
            groups.setdefault(key, []).append(tag)
    return groups


def loss_plot(scalars: dict, path: str | Path, title: str = "") -> tuple[Path, list[str]]:
    """One panel per loss group (every component the run logged, each of its domains a line), then the
    learning rate; the axis is images seen. Returns (path, series drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = loss_groups(scalars)
    if not groups:
        raise BrushworkError(f"no loss curves in the events ({', '.join(sorted(scalars)) or 'no scalars'}); was the "
                             "run logged with --log_with tensorboard?")
    panels = len(groups) + ("lr" in scalars)
    fig, axes = plt.subplots(panels, 1, figsize=(7, 1.9 * panels + 0.8), dpi=120, sharex=True, squeeze=False)
    axes = axes[:, 0]
    drawn = []
    for ax, (key, tags) in zip(axes, groups.items()):
        for tag in tags:
            name = tag.split("/", 1)[1]
            ax.plot(*zip(*scalars[tag]), label=name, linewidth=1)
            drawn.append(name)
        ax.set_ylabel("loss", fontsize=8)
        ax.set_title(GROUP_TITLES.get(key, key), fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="upper right")
    if "lr" in scalars:
        axes[-1].plot(*zip(*scalars["lr"]), color="#55a868")
        axes[-1].set_ylabel("learning rate", fontsize=8)
        axes[-1].set_title("learning rate", fontsize=9, loc="left")
        drawn.append("learning rate")
    axes[-1].set_xlabel("images seen")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return Path(path), drawn
