#!/usr/bin/env python3
"""The paper's real/fake survey: build a package to send out, then score the answers.

  python eval/survey.py build --fakes translated/ --reals data/raw/monet2photo/testB --out survey/ [--n 10] [--zip]
  python eval/survey.py score survey_answers/key.json responses/*.json forms_export.csv --out survey_results/
  python eval/survey.py simulate survey_answers/key.json --raters 14 --out responses/    # dry run of the scorer

build mixes N generated and N real images (seeded; fakes from any method: CycleGAN translations,
Gatys renders, fast-style outputs), crops/resizes them to one size, re-encodes them identically
without metadata, names them by random ids and pads them to one file size; it writes
survey/index.html (works offline: open it in any browser, answer, press Save) and, BESIDE the folder
(never inside it), survey_answers/ with the answer key (key.json) and the build settings. --zip also
writes survey.zip (the package alone) beside it.

score reads the saved JSON files and/or Google Forms CSV exports (column titles must contain the
image ids; answers Real/Fake), skips malformed and duplicate responses with a line each, and writes
per_image.csv, results.md (the per-image Real %/Fake % table, the rate at which generated images
were judged real with a 95 % Wilson interval, per-rater accuracy), results.json and survey_chart.png.
"""

import sys
from pathlib import Path

from brushwork import cli
from brushwork.core import presets
from brushwork.core.errors import BrushworkError
from brushwork.schemas.eval import SurveyBuildConfig, SurveyScoreConfig, SurveySimulateConfig


def build(cfg: SurveyBuildConfig) -> int:
    from brushwork.evaluation import survey  # numpy and PIL: imported once the flags are good

    if not cfg.fakes or not cfg.reals:
        raise BrushworkError("build needs --fakes DIR (generated images) and --reals DIR (real images)")
    # resolved first: with --out . or DIR/.. the folder's name and parent are only known that way, and the key,
    # config and zip go beside the package, never into it
    out = Path(cfg.out).resolve()
    key = survey.build(cfg.fakes, cfg.reals, str(out), cfg.n, cfg.image_size, cfg.quality, cfg.seed, cfg.title, cfg.zip)
    presets.write_resolved(cfg, survey.answers_dir(out), "build_config.toml")
    print(f"survey package: {out}/index.html ({len(key['order'])} images)" + (f", {out}.zip" if cfg.zip else ""))
    print(f"answer key (keep it, do not send it): {survey.key_path(out)}")
    return 0


def score(cfg: SurveyScoreConfig) -> int:
    from brushwork.evaluation import survey

    if not cfg.key or not cfg.responses:
        raise BrushworkError("score needs the key file and at least one response file")
    key = survey.read_key(cfg.key)
    tally = survey.read_responses(key, list(cfg.responses))
    for problem in tally.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if not tally.responses:
        raise BrushworkError(f"no valid responses among {len(cfg.responses)} file(s)")
    result = survey.score(key, tally)
    written = survey.write_report(result, cfg.out)
    presets.write_resolved(cfg, cfg.out, "score_config.toml")
    low, high = result["wilson95"]
    print(f"{result['responses']} responses: generated images judged real {100 * result['generated_judged_real_rate']:.1f} % "
          f"(95 % CI {100 * low:.1f}-{100 * high:.1f} %); wrote {', '.join(str(p) for p in written)}")
    return 0


def simulate(cfg: SurveySimulateConfig) -> int:
    from brushwork.evaluation import survey

    if not cfg.key:
        raise BrushworkError("simulate needs the key file")
    paths = survey.simulate(survey.read_key(cfg.key), cfg.raters, cfg.out, cfg.accuracy, cfg.seed)
    presets.write_resolved(cfg, cfg.out, "simulate_config.toml")
    print(f"{len(paths)} synthetic responses in {cfg.out}")
    return 0


COMMANDS = {"build": cli.Command(SurveyBuildConfig, build, SurveyBuildConfig.__doc__ + "\n\n" + cli.subcommand_doc(__doc__, "build")),
            "score": cli.Command(SurveyScoreConfig, score, SurveyScoreConfig.__doc__ + "\n\n" + cli.subcommand_doc(__doc__, "score")),
            "simulate": cli.Command(SurveySimulateConfig, simulate, SurveySimulateConfig.__doc__ + "\n\n" + cli.subcommand_doc(__doc__, "simulate"))}

if __name__ == "__main__":
    sys.exit(cli.main(COMMANDS, doc=__doc__))
