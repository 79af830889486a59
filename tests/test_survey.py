"""Survey package: nothing but pixels tells real from fake; the scorer counts what it should, skips the rest."""

import csv
import io
import json
import re
import zipfile

import numpy as np
import pytest
from conftest import assert_one_error_line, run_script
from PIL import Image

from brushwork.evaluation import survey


def make_sets(tmp_path):
    """Fakes and reals that differ in every way except content: format, size, metadata."""
    fakes, reals = tmp_path / "fakes", tmp_path / "reals"
    fakes.mkdir(), reals.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(fakes / f"fake_{i}.png",
                                                                                  pnginfo=_text_chunk("generated"))
        exif = Image.Exif()
        exif[0x010F] = "CameraMaker"
        Image.fromarray(rng.integers(0, 255, (480, 360, 3), dtype=np.uint8)).save(
            reals / f"real_photo_{i}.jpg", quality=97, exif=exif, icc_profile=b"\0" * 128)
    return fakes, reals


def _text_chunk(text):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", text)
    return info


def jpeg_markers(data: bytes) -> set[int]:
    """Marker bytes of the JPEG segments before the scan."""
    markers, i = set(), 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        markers.add(marker)
        if marker == 0xDA:
            break
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return markers


def test_package_leaks_nothing(tmp_path):
    fakes, reals = make_sets(tmp_path)
    out = tmp_path / "pkg" / "survey"
    proc = run_script("eval/survey.py", "build", "--fakes", fakes, "--reals", reals, "--out", out, "--n", 4,
                      "--image_size", 64, "--zip")
    assert proc.returncode == 0, proc.stderr
    key = json.loads((tmp_path / "pkg" / "survey_answers" / "key.json").read_text())
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == ["survey", "survey.zip", "survey_answers"]
    assert sorted(p.name for p in (tmp_path / "pkg" / "survey_answers").iterdir()) == ["build_config.toml", "key.json"]
    page = (out / "index.html").read_text()
    assert page.count('width="64" height="64"') == 8  # shown at their own size, never scaled by the browser
    files = sorted((out / "images").iterdir())
    assert len(files) == 8 and set(key["images"]) == {f.stem for f in files}
    truths = [key["images"][i]["truth"] for i in key["order"]]
    assert truths.count("real") == truths.count("fake") == 4
    # names: random hex ids, nothing from the sources
    assert all(re.fullmatch(r"[0-9a-f]{12}\.jpg", f.name) for f in files)
    # pixel size, file size, encoder settings: identical for every image
    assert {Image.open(f).size for f in files} == {(64, 64)}
    assert len({f.stat().st_size for f in files}) == 1
    assert len({json.dumps(Image.open(f).quantization, sort_keys=True) for f in files}) == 1
    # metadata: no EXIF (APP1), ICC (APP2), comments (COM), text of any kind
    for f in files:
        data = f.read_bytes()
        assert jpeg_markers(data) & {0xE1, 0xE2, 0xFE, 0xED, 0xEE} == set()
        info = Image.open(f).info
        assert not {"exif", "icc_profile", "comment", "Software"} & set(info)
        assert b"CameraMaker" not in data and b"generated" not in data
    # ordering: the page lists images in the shuffled key order, not grouped by truth
    page = (out / "index.html").read_text()
    assert re.findall(r'images/([0-9a-f]{12})\.jpg', page) == key["order"]
    assert truths != sorted(truths) and truths != sorted(truths, reverse=True)
    # html: every figure is the same markup up to its id and number
    figures = re.findall(r"<figure>.*?</figure>", page)
    shapes = {re.sub(r"[0-9a-f]{12}", "ID", re.sub(r"image \d+|>\d+\.", "N", fig)) for fig in figures}
    assert len(figures) == 8 and len(shapes) == 1
    assert "http" not in page.replace("http-equiv", "") and "src=\"images/" in page  # offline: no URL
    # the key is beside the package, never inside it or the zip
    assert not any(p.name.endswith("key.json") for p in out.rglob("*"))
    assert "truth" not in page and "real_photo" not in page and "fake_" not in page
    names = zipfile.ZipFile(tmp_path / "pkg" / "survey.zip").namelist()
    assert sorted(names) == sorted(f"survey/{p.relative_to(out).as_posix()}" for p in out.rglob("*") if p.is_file())
    assert not any("key" in n for n in names)


def test_build_refuses_too_few_images_or_a_used_folder(tmp_path):
    fakes, reals = make_sets(tmp_path)
    proc = run_script("eval/survey.py", "build", "--fakes", fakes, "--reals", reals, "--out", tmp_path / "s", "--n", 9)
    assert_one_error_line(proc, "5 image(s), but the survey needs 9; lower --n")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    proc = run_script("eval/survey.py", "build", "--fakes", fakes, "--reals", reals, "--out", tmp_path / "used", "--n", 2)
    assert_one_error_line(proc, "is not empty")


def test_the_key_never_lands_in_the_package_or_its_zip(tmp_path):
    fakes, reals = make_sets(tmp_path)
    work = tmp_path / "parent" / "pkg"
    work.mkdir(parents=True)
    proc = run_script("eval/survey.py", "build", "--fakes", fakes, "--reals", reals, "--out", ".", "--n", 2,
                      "--image_size", 32, "--zip", cwd=work)  # --out . : the folder is named only once resolved
    assert proc.returncode == 0, proc.stderr
    key = tmp_path / "parent" / "pkg_answers" / "key.json"
    assert key.is_file() and str(key) in proc.stdout
    assert not list(work.rglob("*key*")) and not list(work.rglob("*_config.toml"))  # only the package inside
    with zipfile.ZipFile(tmp_path / "parent" / "pkg.zip") as zf:
        assert zf.namelist() and not [n for n in zf.namelist() if "key" in n or "config" in n]
    (tmp_path / "other" / "x").mkdir(parents=True)
    proc = run_script("eval/survey.py", "build", "--fakes", fakes, "--reals", reals, "--out", "x/..", "--n", 2,
                      "--image_size", 32, cwd=tmp_path / "other")  # names other/, which holds x/: a used folder
    assert_one_error_line(proc, "is not empty")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["x"]


KEY = {"survey": "s1", "order": ["aaaaaaaaaaa1", "aaaaaaaaaaa2", "aaaaaaaaaaa3", "aaaaaaaaaaa4"],
       "images": {"aaaaaaaaaaa1": {"truth": "fake", "source": "runs/x/fake, 1.png"},
                  "aaaaaaaaaaa2": {"truth": "real"},
                  "aaaaaaaaaaa3": {"truth": "fake"}, "aaaaaaaaaaa4": {"truth": "real"}}}


def response(tmp_path, name, rater, answers, survey_id="s1"):
    path = tmp_path / name
    path.write_text(json.dumps({"survey": survey_id, "rater": rater, "answers": answers}))
    return str(path)


def test_scorer_matches_a_hand_computed_example(tmp_path):
    r = ["aaaaaaaaaaa1", "aaaaaaaaaaa2", "aaaaaaaaaaa3", "aaaaaaaaaaa4"]
    files = [
        response(tmp_path, "ann.json", "Ann", {r[0]: "real", r[1]: "real", r[2]: "fake", r[3]: "real"}),
        response(tmp_path, "bob.json", "Bob", {r[0]: "fake", r[1]: "fake", r[2]: "fake", r[3]: "real"}),
        response(tmp_path, "ann_again.json", "ann", {r[0]: "fake", r[1]: "fake", r[2]: "real", r[3]: "fake"}),  # duplicate
        response(tmp_path, "other.json", "Cat", {r[0]: "real"}, survey_id="elsewhere"),                        # other survey
        response(tmp_path, "typo.json", "Dan", {r[0]: "maybe"}),                                               # malformed value
    ]
    (tmp_path / "broken.json").write_text("{not json")
    files.append(str(tmp_path / "broken.json"))
    (tmp_path / "photo.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00" * 20)  # a binary file among the answers
    files.append(str(tmp_path / "photo.json"))
    forms = io.StringIO()
    writer = csv.writer(forms)
    writer.writerow(["Timestamp", "Your name", f"Image 1 [{r[0]}]", f"Image 2 [{r[1]}]", f"Image 3 [{r[2]}]", f"Image 4 [{r[3]}]"])
    writer.writerow(["2019/06/01", "Eve", "REAL", "Real", "REAL", "Fake"])
    writer.writerow(["2019/06/01", "Bob", "FAKE", "FAKE", "FAKE", "FAKE"])  # Bob again: duplicate
    (tmp_path / "forms.csv").write_text(forms.getvalue())
    files.append(str(tmp_path / "forms.csv"))

    tally = survey.read_responses(KEY, files)
    assert [x["rater"] for x in tally.responses] == ["Ann", "Bob", "Eve"]  # the valid ones are all scored
    assert len(tally.problems) == 6 and "photo.json: not a text file" in tally.problems[-2]
    result = survey.score(KEY, tally)
    by_id = {x["id"]: x for x in result["per_image"]}
    # image 1 (fake): Ann real, Bob fake, Eve real -> 2/3 real
    assert by_id[r[0]]["votes"] == 3 and abs(by_id[r[0]]["real_pct"] - 200 / 3) < 1e-9
    # image 3 (fake): Ann fake, Bob fake, Eve real -> 1/3 real
    assert abs(by_id[r[2]]["real_pct"] - 100 / 3) < 1e-9 and abs(by_id[r[2]]["fake_pct"] - 200 / 3) < 1e-9
    # image 2 (real): Ann real, Bob fake, Eve real; image 4 (real): real, real, fake
    assert abs(by_id[r[1]]["real_pct"] - 200 / 3) < 1e-9 and abs(by_id[r[3]]["real_pct"] - 200 / 3) < 1e-9
    # generated judged real: 3 of 6 votes on fakes
    assert (result["generated_judged_real"], result["generated_votes"]) == (3, 6)
    assert [round(x["accuracy"], 4) for x in result["raters"]] == [0.75, 0.75, 0.25]
    (tmp_path / "key.json").write_text(json.dumps(KEY))
    proc = run_script("eval/survey.py", "score", tmp_path / "key.json", *files, "--out", tmp_path / "res")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("skipped:") == 6
    table = (tmp_path / "res" / "results.md").read_text()
    assert "| 1 | aaaaaaaaaaa1 | fake | runs/x/fake, 1.png | 3 | 66.7 | 33.3 |" in table  # each id with its source
    assert "3 of 6 votes = 50.0 % (95 % Wilson interval 18.8–81.2 %)" in table
    assert Image.open(tmp_path / "res" / "survey_chart.png").size[0] > 300
    rows = list(csv.reader(io.StringIO((tmp_path / "res" / "per_image.csv").read_text())))
    assert rows[0] == ["image", "truth", "source", "votes", "real_pct", "fake_pct"]
    assert rows[1] == ["aaaaaaaaaaa1", "fake", "runs/x/fake, 1.png", "3", "66.7", "33.3"]


@pytest.mark.parametrize("k,n,low,high", [(0, 10, 0.0, 0.2775), (1, 10, 0.0179, 0.4042), (5, 10, 0.2366, 0.7634),
                                          (3, 6, 0.1876, 0.8124), (14, 14, 0.7847, 1.0)])
def test_wilson_interval_known_values(k, n, low, high):
    got = survey.wilson(k, n)
    assert abs(got[0] - low) < 1e-4 and abs(got[1] - high) < 1e-4
