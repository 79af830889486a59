"""The survey's report: per-image CSV and markdown, results.json and the bar chart of the paper's Figs. 6/7."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from brushwork.core.fileio import atomic_write_text, save_figure


def write_report(result: dict, out: str) -> list[Path]:
    out_dir = Path(out)
    rows = result["per_image"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")  # a source path may hold commas or quotes
    writer.writerow(["image", "truth", "source", "votes", "real_pct", "fake_pct"])
    writer.writerows([r["id"], r["truth"], r.get("source", ""), r["votes"], f"{r['real_pct']:.1f}",
                      f"{r['fake_pct']:.1f}"] for r in rows)
    atomic_write_text(out_dir / "per_image.csv", buf.getvalue())
    low, high = result["wilson95"]
    cell = lambda text: str(text).replace("|", "\\|")
    md = ["| # | image | truth | source | votes | Real % | Fake % |", "| --- | --- | --- | --- | --- | --- | --- |"]
    md += [f"| {n} | {r['id']} | {r['truth']} | {cell(r.get('source', ''))} | {r['votes']} | {r['real_pct']:.1f} | "
           f"{r['fake_pct']:.1f} |" for n, r in enumerate(rows, 1)]
    md += ["", f"Generated images judged real: {result['generated_judged_real']} of {result['generated_votes']} votes "
           f"= {100 * result['generated_judged_real_rate']:.1f} % "
           f"(95 % Wilson interval {100 * low:.1f}–{100 * high:.1f} %), "
           f"{result['responses']} responses.", "", "| rater | answered | accuracy |", "| --- | --- | --- |"]
    md += [f"| {r['rater']} | {r['answered']} | {100 * r['accuracy']:.0f} % |" for r in result["raters"]]
    if result["problems"]:
        md += ["", "Skipped:"] + [f"- {p}" for p in result["problems"]]
    atomic_write_text(out_dir / "results.md", "\n".join(md) + "\n")
    atomic_write_text(out_dir / "results.json", json.dumps(result, indent=1) + "\n")
    chart = out_dir / "survey_chart.png"
    bar_chart(rows, chart)
    return [out_dir / "per_image.csv", out_dir / "results.md", out_dir / "results.json", chart]


def bar_chart(rows: list[dict], path: Path) -> None:
    """Per image, Real % and Fake % side by side (as the paper's Figs. 6 and 7)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(rows)), 3.6), dpi=120)
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["real_pct"] for r in rows], width=0.4, label="judged Real", color="#4c72b0")
    ax.bar([x + 0.2 for x in xs], [r["fake_pct"] for r in rows], width=0.4, label="judged Fake", color="#dd8452")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{n + 1}\n({r['truth']})" for n, r in enumerate(rows)], fontsize=7)
    ax.set_ylabel("% of raters")
    ax.set_ylim(0, 100)
    ax.set_title("Survey: Real vs Fake per image")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
