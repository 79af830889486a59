"""Scoring what comes back: the page's saved JSON files and Google Forms CSV exports.

Malformed, foreign and duplicate responses are reported and skipped, never fatal. ``score`` gives
per-image Real % / Fake %, the rate at which generated images were judged real with a 95 % Wilson
interval, and each rater's accuracy; ``simulate`` writes synthetic answers for a dry run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from brushwork.core.errors import BrushworkError
from brushwork.core.fileio import atomic_write_text


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
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            tally.problems.append(f"{path}: not a text file (a saved .json response or a .csv export expected); "
                                  "skipped")
            continue
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
        per_image.append({"id": image_id, "truth": key["images"][image_id]["truth"],
                          "source": str(key["images"][image_id].get("source", "")), "votes": len(votes),
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


def read_key(path: str | Path) -> dict:
    """A survey key written by ``build``; one line naming the file when it is not one."""
    try:
        key = json.loads(Path(path).read_text(encoding="utf-8"))
        images, order = key["images"], key["order"]
        shaped = isinstance(key["survey"], str) and isinstance(images, dict) and isinstance(order, list)
        if not shaped or set(order) != set(images) or not all(
                isinstance(v, dict) and v.get("truth") in ("real", "fake") for v in images.values()):
            raise ValueError("its images, order and truths do not agree")
    except FileNotFoundError:
        raise BrushworkError(f"{path}: no such key file (build writes it beside the package, e.g. "
                             "survey_key.json)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise BrushworkError(f"{path}: not a survey key written by 'eval/survey.py build' ({type(e).__name__}: "
                             f"{str(e)[:100]})") from None
    return key


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
