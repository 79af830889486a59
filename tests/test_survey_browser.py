"""The survey page in a real headless Chromium: click answers, save, and score the saved file."""

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="no Chromium + ChromeDriver here (apt-get install chromium chromium-driver)")


def browser(download_dir: Path, profile: Path):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=opts)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return driver


def test_answer_save_and_score_in_a_real_browser(tmp_path):
    from selenium.webdriver.common.by import By

    fakes, reals = tmp_path / "fakes", tmp_path / "reals"
    fakes.mkdir(), reals.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 40, 3), 30 * i, np.uint8)).save(fakes / f"f{i}.png")
        Image.fromarray(np.full((40, 40, 3), 200 - 30 * i, np.uint8)).save(reals / f"r{i}.jpg")
    out = tmp_path / "survey"
    assert run_script("eval/survey.py", "build", "--fakes", fakes, "--reals", reals, "--out", out, "--n", 3,
                      "--image_size", 32).returncode == 0
    key = json.loads((tmp_path / "survey_answers" / "key.json").read_text())
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = browser(downloads, tmp_path / "profile")
    try:
        driver.get((out / "index.html").as_uri())
        assert driver.execute_script("return document.images.length") == 6
        assert driver.execute_script("return Array.from(document.images).every(i => i.complete && i.naturalWidth == 32)")
        # answer: everything "real" except the first two images in page order
        for n, image_id in enumerate(key["order"]):
            choice = "fake" if n < 2 else "real"
            driver.find_element(By.CSS_SELECTOR, f'input[name="{image_id}"][value="{choice}"]').click()
        driver.find_element(By.ID, "rater").send_keys("Zoe")
        driver.find_element(By.ID, "save").click()
        deadline = time.time() + 20
        while time.time() < deadline and not list(downloads.glob("*.json")):
            time.sleep(0.1)
        assert "Saved" in driver.find_element(By.ID, "status").text
    finally:
        driver.quit()
    saved = list(downloads.glob("*.json"))
    assert [p.name for p in saved] == ["survey_response_Zoe.json"]
    answers = json.loads(saved[0].read_text())
    assert answers["rater"] == "Zoe" and answers["survey"] == key["survey"] and len(answers["answers"]) == 6
    proc = run_script("eval/survey.py", "score", tmp_path / "survey_answers" / "key.json", saved[0], "--out", tmp_path / "res")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "res" / "results.json").read_text())
    expected_fooled = sum(key["images"][i]["truth"] == "fake" for i in key["order"][2:])
    assert result["responses"] == 1 and result["generated_judged_real"] == expected_fooled


def test_translate_results_page_in_a_real_browser(tmp_path):
    """Like the original test.py page: one row per image, input | output | reconstruction, all images load."""
    import torch

    from brushwork.models.networks import ResnetGenerator, init_weights

    torch.manual_seed(0)
    models = tmp_path / "models.pt"
    torch.save({n: init_weights(ResnetGenerator(ngf=8, n_blocks=2)).state_dict() for n in ("G_A", "G_B")}, models)
    photos = tmp_path / "photos" / "sub"
    photos.mkdir(parents=True)
    for i, (w, h) in enumerate(((40, 30), (24, 36), (33, 33))):
        Image.fromarray(np.full((h, w, 3), 60 * i, np.uint8)).save(photos / f"p {i}.jpg")  # a space in the name
    out = tmp_path / "out"
    proc = run_script("eval/translate.py", models, "--input", tmp_path / "photos", "--out", out, "--results_html",
                      "--reconstruct")
    assert proc.returncode == 0, proc.stderr
    driver = browser(tmp_path / "dl", tmp_path / "profile")
    try:
        driver.get((out / "index.html").as_uri())
        rows = driver.execute_script("return document.querySelectorAll('#results tbody tr').length")
        headers = driver.execute_script("return Array.from(document.querySelectorAll('#results th')).map(t => t.textContent)")
        loaded = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0, i.naturalWidth, i.naturalHeight])")
        names = driver.execute_script(
            "return Array.from(document.querySelectorAll('#results tbody tr td:first-child')).map(t => t.textContent)")
    finally:
        driver.quit()
    assert rows == 3 and headers == ["name", "input", "output", "reconstructed"]
    assert len(loaded) == 9 and all(ok for ok, _, _ in loaded)
    assert sorted(names) == ["sub/p 0.png", "sub/p 1.png", "sub/p 2.png"]
    sizes = {(w, h) for _, w, h in loaded}
    assert sizes == {(40, 30), (24, 36), (33, 33)}  # every column at the image's own resolution
