"""The real/fake survey of the paper, as a package you can send and a scorer for what comes back.

Package (a folder, optionally zipped): ``index.html`` (inline CSS/JS, works offline from file://) and
``images/{id}.jpg``. Every image is centre-cropped and resized to one size, re-encoded with one
JPEG setting and no metadata, named by a random id, and padded after its end marker to one common
byte length, so nothing but the pixels tells real from generated. The answer key is written beside
the folder, never inside it.

Scoring accepts the page's saved JSON files and Google Forms CSV exports; malformed and duplicate
responses are reported and skipped. Output: per-image Real % / Fake % (CSV + markdown), a bar chart
like the paper's Figs. 6/7, the rate at which generated images were judged real with a 95 % Wilson
interval, and each rater's accuracy.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .errors import BrushworkError, ImageError
from .fileio import atomic_write_bytes, atomic_write_text
from .images import find_images, load_image

PAD_BLOCK = 4096


def key_path(package: Path) -> Path:
    """``survey/`` → ``survey_key.json`` beside it."""
    return package.parent / f"{package.name}_key.json"


def square(img: Image.Image, size: int) -> Image.Image:
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)


def encode_uniform(img: Image.Image, quality: int) -> bytes:
    """Baseline JPEG, 4:2:0, no EXIF/ICC/comments: the same encoder path for every image."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality, subsampling=2, optimize=False,
                            progressive=False, exif=b"", icc_profile=None)
    return buf.getvalue()


def pick(paths: list[Path], n: int, rng: random.Random, what: str) -> list[Path]:
    if len(paths) < n:
        raise BrushworkError(f"{what}: {len(paths)} image(s), but the survey needs {n}; lower --n")
    return sorted(rng.sample(paths, n))


def build(fakes: str, reals: str, out: str, n: int = 10, size: int = 256, quality: int = 90, seed: int = 0,
          title: str = "Real or generated?", make_zip: bool = False) -> dict:
    """Write the package folder (and zip) and its key; returns the key."""
    rng = random.Random(seed)
    out_dir = Path(out)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BrushworkError(f"{out_dir} is not empty; choose a new --out (a survey must not be rebuilt in place)")
    chosen = [(p, "fake") for p in pick(find_images(fakes), n, rng, f"--fakes {fakes}")] + \
             [(p, "real") for p in pick(find_images(reals), n, rng, f"--reals {reals}")]
    rng.shuffle(chosen)
    survey_id = "%016x" % rng.getrandbits(64)
    encoded, key_images = [], {}
    for path, truth in chosen:
        try:
            img = square(load_image(path), size)
        except ImageError as e:
            raise BrushworkError(f"{e}; remove it or choose another folder") from None
        image_id = "%012x" % rng.getrandbits(48)
        encoded.append((image_id, encode_uniform(img, quality)))
        key_images[image_id] = {"truth": truth, "source": str(path)}
    # one byte length for all: trailing zeros after the JPEG end marker are ignored by decoders
    length = -(-max(len(d) for _, d in encoded) // PAD_BLOCK) * PAD_BLOCK
    for image_id, data in encoded:
        atomic_write_bytes(out_dir / "images" / f"{image_id}.jpg", data + b"\0" * (length - len(data)))
    order = [image_id for image_id, _ in encoded]
    atomic_write_text(out_dir / "index.html", page(survey_id, order, title))
    key = {"survey": survey_id, "order": order, "images": key_images, "size": size, "quality": quality, "seed": seed}
    atomic_write_text(key_path(out_dir), json.dumps(key, indent=1) + "\n")
    if make_zip:
        write_zip(out_dir)
    return key


def write_zip(folder: Path) -> Path:
    """``survey.zip`` beside the folder; members in sorted order with fixed timestamps."""
    target = folder.parent / f"{folder.name}.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(f"{folder.name}/{p.relative_to(folder).as_posix()}", (2000, 1, 1, 0, 0, 0))
                zf.writestr(info, p.read_bytes())
    atomic_write_bytes(target, buf.getvalue())
    return target


def page(survey_id: str, order: list[str], title: str) -> str:
    items = "\n".join(
        f'<figure><img src="images/{i}.jpg" alt="image {n}" width="256" height="256">'
        f'<figcaption>{n}. <label><input type="radio" name="{i}" value="real"> Real</label> '
        f'<label><input type="radio" name="{i}" value="fake"> Fake</label></figcaption></figure>'
        for n, i in enumerate(order, 1))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 1em auto; padding: 0 1em; }}
main {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; border: 1px solid #ccc; padding: 6px; }}
figure img {{ display: block; width: 256px; height: 256px; }}
#status {{ margin-left: 1em; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>For each picture, say whether you think it is a <b>real</b> photograph or painting, or one
<b>generated</b> by a computer. When you are done, press <i>Save answers</i> and send back the file it saves.</p>
<p><label>Your name (optional): <input id="rater" type="text"></label></p>
<main>
{items}
</main>
<p><button id="save" type="button">Save answers</button><span id="status"></span></p>
<script>
const SURVEY = "{survey_id}";
const ORDER = {json.dumps(order)};
document.getElementById("save").addEventListener("click", () => {{
  const answers = {{}};
  for (const id of ORDER) {{
    const picked = document.querySelector('input[name="' + id + '"]:checked');
    if (picked) answers[id] = picked.value;
  }}
  const rater = document.getElementById("rater").value.trim();
  const missing = ORDER.length - Object.keys(answers).length;
  const body = JSON.stringify({{survey: SURVEY, rater: rater, answers: answers,
                                saved_at: new Date().toISOString()}}, null, 1);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([body], {{type: "application/json"}}));
  const safe = (rater || "anonymous").replace(/[^A-Za-z0-9_-]+/g, "_");
  link.download = "survey_response_" + safe + ".json";
  document.body.appendChild(link);
  link.click();
  link.remove();
  document.getElementById("status").textContent =
    "Saved" + (missing ? " (" + missing + " unanswered)" : "") + ". Please send the file back.";
}});
</script>
</body></html>
"""


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass
class Tally:
    responses: list[dict] = field(default_factory=list)   # {"rater", "answers": {id: real|fake}, "source"}
    problems: list[str] = field(default_factory=list)


def _normalise(value: str) -> str | None:
    v = str(value).strip().lower()
    if v.startswith("real"):
        return "real"
    if v.startswith("fake") or v.startswith("generated"):
        return "fake"
    return None


def read_responses(key: dict, files: list[str]) -> Tally:
    """Every valid response; each malformed or duplicate one becomes a line in ``problems``."""
    tally = Tally()
    seen_raters: set[str] = set()
    seen_answers: set[str] = set()
    ids = set(key["images"])

    def accept(rater: str, answers: dict, source: str) -> None:
        fingerprint = json.dumps(answers, sort_keys=True)
        if rater and rater.lower() in seen_raters:
            tally.problems.append(f"{source}: duplicate response from rater {rater!r}; skipped")
            return
        if not rater and fingerprint in seen_answers:
            tally.problems.append(f"{source}: identical to an earlier anonymous response; skipped as duplicate")
            return
        if rater:
            seen_raters.add(rater.lower())
        seen_answers.add(fingerprint)
        tally.responses.append({"rater": rater or f"anonymous {len(tally.responses) + 1}", "answers": answers,
                                "source": source})

    for name in files:
        path = Path(name)
        try:
            text = path.read_text()
        except OSError as e:
            tally.problems.append(f"{path}: unreadable ({e.strerror}); skipped")
            continue
        if path.suffix.lower() == ".csv":
            _read_forms_csv(text, path, ids, accept, tally)
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            tally.problems.append(f"{path}: not valid JSON ({e.msg}); skipped")
            continue
        if not isinstance(data, dict) or not isinstance(data.get("answers"), dict):
            tally.problems.append(f"{path}: no 'answers' object; skipped")
            continue
        if data.get("survey") != key["survey"]:
            tally.problems.append(f"{path}: answers a different survey ({data.get('survey')!r}); skipped")
            continue
        answers, bad = {}, []
        for image_id, value in data["answers"].items():
            verdict = _normalise(value)
            if image_id not in ids or verdict is None:
                bad.append(image_id)
            else:
                answers[image_id] = verdict
        if bad:
            tally.problems.append(f"{path}: unknown image ids or answers ({', '.join(map(str, bad[:3]))}); skipped")
            continue
        if not answers:
            tally.problems.append(f"{path}: no answers; skipped")
            continue
        accept(str(data.get("rater") or ""), answers, str(path))
    return tally


def _read_forms_csv(text: str, path: Path, ids: set, accept, tally: Tally) -> None:
    """Google Forms export: a Timestamp column, an optional name column, one column per image (its id in the title)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        tally.problems.append(f"{path}: empty CSV; skipped")
        return
    columns = {}
    for header in rows[0].keys():
        match = [i for i in ids if i in (header or "")]
        if len(match) == 1:
            columns[header] = match[0]
    name_column = next((h for h in rows[0] if h and "name" in h.lower() and h not in columns), None)
    if not columns:
        tally.problems.append(f"{path}: no column title contains an image id of this survey; skipped")
        return
    for n, row in enumerate(rows, 2):
        answers = {}
        for header, image_id in columns.items():
            verdict = _normalise(row.get(header) or "")
            if verdict:
                answers[image_id] = verdict
        if not answers:
            tally.problems.append(f"{path}:{n}: no answers in this row; skipped")
            continue
        accept((row.get(name_column) or "").strip() if name_column else "", answers, f"{path}:{n}")


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval for k successes out of n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def score(key: dict, tally: Tally) -> dict:
    """Per-image percentages, the fooled rate with its interval, and per-rater accuracy."""
    per_image = []
    for image_id in key["order"]:
        votes = [r["answers"][image_id] for r in tally.responses if image_id in r["answers"]]
        real = sum(v == "real" for v in votes)
        per_image.append({"id": image_id, "truth": key["images"][image_id]["truth"], "votes": len(votes),
                          "real_pct": 100.0 * real / len(votes) if votes else 0.0,
                          "fake_pct": 100.0 * (len(votes) - real) / len(votes) if votes else 0.0})
    fake_votes = [(r["answers"][i] == "real") for r in tally.responses for i in r["answers"]
                  if key["images"][i]["truth"] == "fake"]
    fooled, n = sum(fake_votes), len(fake_votes)
    low, high = wilson(fooled, n)
    raters = [{"rater": r["rater"], "answered": len(r["answers"]),
               "accuracy": sum(v == key["images"][i]["truth"] for i, v in r["answers"].items()) / len(r["answers"])}
              for r in tally.responses]
    return {"per_image": per_image, "generated_judged_real": fooled, "generated_votes": n,
            "generated_judged_real_rate": fooled / n if n else 0.0, "wilson95": [low, high], "raters": raters,
            "responses": len(tally.responses), "problems": tally.problems}


def write_report(result: dict, out: str) -> list[Path]:
    out_dir = Path(out)
    rows = result["per_image"]
    lines = ["image,truth,votes,real_pct,fake_pct"] + [
        f"{r['id']},{r['truth']},{r['votes']},{r['real_pct']:.1f},{r['fake_pct']:.1f}" for r in rows]
    atomic_write_text(out_dir / "per_image.csv", "\n".join(lines) + "\n")
    low, high = result["wilson95"]
    md = ["| # | image | truth | votes | Real % | Fake % |", "| --- | --- | --- | --- | --- | --- |"]
    md += [f"| {n} | {r['id']} | {r['truth']} | {r['votes']} | {r['real_pct']:.1f} | {r['fake_pct']:.1f} |"
           for n, r in enumerate(rows, 1)]
    md += ["", f"Generated images judged real: {result['generated_judged_real']} of {result['generated_votes']} votes "
           f"= {100 * result['generated_judged_real_rate']:.1f} % (95 % Wilson interval {100 * low:.1f}–{100 * high:.1f} %), "
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)
    plt.close(fig)


def simulate(key: dict, raters: int, out: str, accuracy: float = 0.6, seed: int = 0) -> list[Path]:
    """Synthetic response files (each rater right with probability ``accuracy``): a dry run of the scorer."""
    rng = random.Random(seed)
    flip = {"real": "fake", "fake": "real"}
    paths = []
    for r in range(raters):
        answers = {i: (v["truth"] if rng.random() < accuracy else flip[v["truth"]]) for i, v in key["images"].items()}
        path = Path(out) / f"survey_response_rater{r + 1:02d}.json"
        atomic_write_text(path, json.dumps({"survey": key["survey"], "rater": f"rater {r + 1}", "answers": answers}))
        paths.append(path)
    return paths
