#!/usr/bin/env python3
"""The paper's real/fake survey: build a package to send out, then score the answers.

  python eval/survey.py build --fakes translated/ --reals data/raw/monet2photo/testB --out survey/ [--n 10] [--zip]
  python eval/survey.py score survey_key.json responses/*.json forms_export.csv --out survey_results/
  python eval/survey.py simulate survey_key.json --raters 14 --out responses/     # dry run of the scorer

build mixes N generated and N real images (seeded), crops/resizes them to one size, re-encodes them
identically without metadata, names them by random ids and pads them to one file size; it writes
survey/index.html (works offline: open it in any browser, answer, press Save) and the answer key
survey_key.json BESIDE the folder, never inside it. --zip also writes survey.zip (without the key).

score reads the saved JSON files and/or Google Forms CSV exports (column titles must contain the image
ids; answers Real/Fake), skips malformed and duplicate responses with a line each, and writes
per_image.csv, results.md (the per-image Real %/Fake % table, the rate at which generated images
were judged real with a 95 % Wilson interval, per-rater accuracy), results.json and survey_chart.png.
"""

import json
import sys
from pathlib import Path

from brushwork import cli, survey
from brushwork.errors import BrushworkError


def build(fakes: str = "", reals: str = "", out: str = "survey", n: int = 10, size: int = 256, quality: int = 90,
          seed: int = 0, title: str = "Real or generated?", zip: bool = False):
    if not fakes or not reals:
        raise BrushworkError("build needs --fakes DIR (generated images) and --reals DIR (real images)")
    key = survey.build(fakes, reals, out, int(n), int(size), int(quality), int(seed), str(title), bool(zip))
    print(f"survey package: {out}/index.html ({len(key['order'])} images)" + (f", {out.rstrip('/')}.zip" if zip else ""))
    print(f"answer key (keep it, do not send it): {survey.key_path(Path(out))}")


def score(key: str = "", *responses: str, out: str = "survey_results"):
    if not key or not responses:
        raise BrushworkError("score needs the key file and at least one response file")
    try:
        key_data = json.loads(Path(key).read_text())
        key_data["images"], key_data["order"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BrushworkError(f"{key}: not a survey key written by 'eval/survey.py build' ({e})") from None
    tally = survey.read_responses(key_data, list(responses))
    for problem in tally.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if not tally.responses:
        raise BrushworkError(f"no valid responses among {len(responses)} file(s)")
    result = survey.score(key_data, tally)
    written = survey.write_report(result, out)
    low, high = result["wilson95"]
    print(f"{result['responses']} responses: generated images judged real {100 * result['generated_judged_real_rate']:.1f} % "
          f"(95 % CI {100 * low:.1f}-{100 * high:.1f} %); wrote {', '.join(str(p) for p in written)}")


def simulate(key: str = "", raters: int = 14, out: str = "survey_responses", accuracy: float = 0.6, seed: int = 0):
    """Write synthetic response files (a dry run of the scorer before the real answers arrive)."""
    if not key:
        raise BrushworkError("simulate needs the key file")
    paths = survey.simulate(json.loads(Path(key).read_text()), int(raters), out, float(accuracy), int(seed))
    print(f"{len(paths)} synthetic responses in {out}")


if __name__ == "__main__":
    sys.exit(cli.run({"build": build, "score": score, "simulate": simulate}, help_text=__doc__))
