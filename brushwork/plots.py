"""Loss and learning-rate curves from a run's TensorBoard event files (the paper's Fig. 8)."""

from __future__ import annotations

from pathlib import Path

from .errors import BrushworkError
from .fileio import save_figure


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


def loss_plot(scalars: dict, path: str | Path, title: str = "") -> tuple[Path, list[str]]:
    """Generator and discriminator losses (top) and learning rate (bottom); returns (path, series drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), dpi=120, sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    drawn = []
    generator = [t for t in scalars if t.startswith("loss/") and not t.startswith("loss/D")]
    if generator:  # total generator objective, as the paper plots "G loss"
        steps = [s for s, _ in scalars[generator[0]]]
        totals = [sum(dict(scalars[t]).get(s, 0.0) for t in generator) for s in steps]
        label = f"G (total of {len(generator)} losses)" if len(generator) > 1 else generator[0].split("/", 1)[1]
        top.plot(steps, totals, label=label, color="#4c72b0")
        drawn.append(label)
    for tag, colour in (("loss/D_A", "#dd8452"), ("loss/D_B", "#c44e52")):
        if tag in scalars:
            top.plot(*zip(*scalars[tag]), label=tag.split("/")[1], color=colour)
            drawn.append(tag.split("/")[1])
    top.set_ylabel("loss")
    top.set_title(title or "CycleGAN training losses")
    top.legend(fontsize=8)
    if "lr" in scalars:
        bottom.plot(*zip(*scalars["lr"]), color="#55a868")
        drawn.append("learning rate")
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("step")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return Path(path), drawn
