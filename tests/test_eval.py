"""Eval stage: grids, loss plots, FID/KID maths and feature extraction."""

import json

import numpy as np
import pytest
import torch
from conftest import assert_one_error_line, run_script, run_train, synth_shards
from PIL import Image

from brushwork.core.linalg import sqrtm_psd
from brushwork.evaluation import fid


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalrun")
    shards = synth_shards(root)
    run = root / "run"
    proc = run_train(run, shards, "--max_steps", 4, "--num_workers", 0, "--log_every", 1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run


@pytest.mark.slow
def test_grids_for_one_and_several_runs(trained_run, tmp_path):
    proc = run_script("eval/grids.py", trained_run, trained_run, "--out", tmp_path, "--rows", 3, "--cell_size", 32)
    assert proc.returncode == 0, proc.stderr
    a = Image.open(tmp_path / "run_A.png")
    assert a.width == 3 * 32 and 3 * 32 + 8 < a.height <= 3 * 32 + 34  # real | fake | reconstructed, 3 rows, captions
    fig7 = Image.open(tmp_path / "fig7_photo_to_artists.png")
    assert fig7.size == (3 * 32, a.height)  # the photo column + one column per run
    assert (tmp_path / "grids_config.toml").is_file() and "step 4" in proc.stdout
    # the seeded choice is reproducible
    again = tmp_path / "again"
    assert run_script("eval/grids.py", trained_run, "--out", again, "--rows", 3, "--cell_size", 32).returncode == 0
    assert (again / "run_A.png").read_bytes() == (tmp_path / "run_A.png").read_bytes()


@pytest.mark.slow
def test_loss_plot_from_tensorboard(trained_run, tmp_path):
    proc = run_script("eval/plots.py", trained_run, "--out", tmp_path / "plots")
    assert proc.returncode == 0, proc.stderr
    assert "up to 4 images seen" in proc.stdout and Image.open(tmp_path / "plots" / "losses.png").size[0] > 400
    # every component the run logged, not only totals: 4 loss panels (G, D, cycle, identity) and the LR
    drawn = proc.stdout.split("(", 1)[1].split(";")[0].split(", ")
    assert sorted(drawn) == sorted(["G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B", "idt_A", "idt_B",
                                    "learning rate"])
    assert Image.open(tmp_path / "plots" / "losses.png").size[1] > 5 * 1.9 * 120
    assert (tmp_path / "plots" / "losses_config.toml").is_file()
    proc = run_script("eval/plots.py", trained_run, "--out", tmp_path / "mine.png")  # the earlier meaning: a file
    assert proc.returncode == 0 and (tmp_path / "mine.png").is_file() and "--out is a folder" in proc.stderr
    proc = run_script("eval/plots.py", tmp_path)
    assert_one_error_line(proc, "no TensorBoard events")


# The previous implementation, hand-written, kept here as the reference torchmetrics' FID and KID are checked
# against (the library now computes them with torchmetrics).
def reference_frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½), with Tr (Σ1Σ2)^½ = Σ √eig(Σ1^½ Σ2 Σ1^½)."""
    root1 = sqrtm_psd(sigma1.double())
    inner = root1 @ sigma2.double() @ root1
    eig = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0)
    value = float((mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * eig.sqrt().sum())
    return max(value, 0.0)  # a distance: rounding of equal sets gives -1e-12, never shown as -0.000


def reference_fid(f1: torch.Tensor, f2: torch.Tensor) -> float:
    if len(f1) < 2 or len(f2) < 2:
        raise ValueError("FID needs at least 2 images per set (and many more to mean anything)")
    return reference_frechet_distance(f1.mean(0), torch.cov(f1.T), f2.mean(0), torch.cov(f2.T))


def reference_kid(f1: torch.Tensor, f2: torch.Tensor, subsets: int = 10, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD² with the cubic polynomial kernel, mean and std over random subsets of ``subset_size``."""
    n = min(len(f1), len(f2), subset_size)
    if n < 2:
        raise ValueError("KID needs at least 2 images per set")
    d = f1.shape[1]
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = f1[torch.randperm(len(f1), generator=g)[:n]]
        y = f2[torch.randperm(len(f2), generator=g)[:n]]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        mmd = (kxx.sum() - kxx.trace()) / (n * (n - 1)) + (kyy.sum() - kyy.trace()) / (n * (n - 1)) - 2 * kxy.mean()
        values.append(float(mmd))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def test_sqrtm_matches_a_reference():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    vals = torch.tensor([4.0, 1.0, 0.25, 9.0, 2.0, 0.5], dtype=torch.float64)
    a = q @ torch.diag(vals) @ q.T
    expected = q @ torch.diag(vals.sqrt()) @ q.T
    assert torch.allclose(sqrtm_psd(a), expected, atol=1e-12)
    # diagonal covariances: FID = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    s1, s2 = torch.diag(torch.tensor([1.0, 4.0, 9.0])), torch.diag(torch.tensor([4.0, 4.0, 1.0]))
    mu1, mu2 = torch.zeros(3), torch.tensor([1.0, 0.0, 2.0])
    assert abs(reference_frechet_distance(mu1, s1, mu2, s2) - (5 + 1 + 0 + 4)) < 1e-9


def image_set(seed, n=12, shift=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(np.clip(rng.normal(110 + shift, 40, (48, 48, 3)), 0, 255).astype(np.uint8))
            for _ in range(n)]


def test_fid_and_kid_identical_vs_shifted():
    net = fid.random_feature_net()
    base = fid.features(net, image_set(0))
    same = fid.features(net, image_set(0))
    other = fid.features(net, image_set(1))
    shifted = fid.features(net, image_set(1, shift=60))
    numbers = {name: fid.scores(base, f, kid_subsets=3, kid_subset_size=12)
               for name, f in (("same", same), ("other", other), ("shifted", shifted))}
    assert numbers["same"]["fid"] < 1e-6
    assert numbers["shifted"]["fid"] > 10 * numbers["other"]["fid"] > 0
    assert numbers["shifted"]["kid"] > numbers["other"]["kid"]
    # torchmetrics against the previous, hand-written implementation: the same FID, and with subsets of the
    # whole set the same KID; so the same ordering of every pair of sets
    for name, f in (("same", same), ("other", other), ("shifted", shifted)):
        assert abs(numbers[name]["fid"] - reference_fid(base, f)) <= 1e-6 * max(1.0, reference_fid(base, f))
        assert abs(numbers[name]["kid"] - reference_kid(base, f, subsets=3, subset_size=12)[0]) < 1e-9


def test_inception_weights_from_a_file(tmp_path):
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    torch.save(state, tmp_path / "inception.pth")
    net = fid.inception(tmp_path / "inception.pth")
    assert fid.features(net, image_set(0, n=2)).shape == (2, 2048)
    with pytest.raises(Exception, match=r"nope.pth does not exist; fetch them with python -m brushwork.pretrained inception \(or download "
                                           r"https://download.pytorch.org/models/inception"):
        fid.inception(tmp_path / "nope.pth")


def test_the_standard_fid_inception_from_a_file(tmp_path, monkeypatch):
    """The FID Inception (torch-fidelity's network) loads from a local file, never the network, and takes images
    of any size (it resizes inside, as TensorFlow did); a missing file is one line naming the command."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    with monkeypatch.context() as m:  # a random-weights file of the right layout, made without a download
        m.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(torch.nn.Module, "load_state_dict", lambda self, state, strict=True: None)
        torch.manual_seed(0)
        state = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    torch.save(state, tmp_path / "fid_inception.pth")
    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: pytest.fail("downloaded"))
    net = fid.feature_net("fid_inception", tmp_path / "fid_inception.pth")
    mixed = image_set(0, n=3) + [image.resize((64, 40)) for image in image_set(1, n=2)]  # two sizes: two batches
    assert fid.features(net, mixed, batch_size=8).shape == (5, 2048)
    with pytest.raises(Exception, match=r"nope.pth does not exist; fetch them with python -m brushwork.pretrained "
                                        r"fid_inception \(or download https://github.com/toshas/torch-fidelity"):
        fid.feature_net("fid_inception", tmp_path / "nope.pth")


def test_fid_cli_flags_random_inception_and_writes_into_its_out_folder(tmp_path):
    for name, seed, shift in (("a", 0, 0), ("b", 1, 60)):
        (tmp_path / name).mkdir()
        for i, img in enumerate(image_set(seed, n=6, shift=shift)):
            img.save(tmp_path / name / f"{i}.png")
    proc = run_script("eval/fid.py", "--fakes", tmp_path / "a", "--reals", tmp_path / "b", "--random_inception",
                      "--out", tmp_path / "numbers", "--kid_subset_size", 6)
    assert proc.returncode == 0, proc.stderr
    result_file = tmp_path / "numbers" / "fid.json"
    assert "NOT COMPARABLE" in proc.stdout and "NOT COMPARABLE" in result_file.read_text()
    assert (tmp_path / "numbers" / "fid_config.toml").is_file() and not proc.stderr
    # the earlier spellings: --fake/--real/--random_features, and --out naming the JSON file itself
    old = run_script("eval/fid.py", "--fake", tmp_path / "a", "--real", tmp_path / "b", "--random_features",
                     "--out", tmp_path / "old.json", "--kid_subset_size", 6)
    assert old.returncode == 0, old.stderr
    assert old.stderr.count("note:") == 4 and "--fake is spelled --fakes now" in old.stderr
    assert json.loads((tmp_path / "old.json").read_text())["fid"] == json.loads(result_file.read_text())["fid"]
    result = json.loads(result_file.read_text())
    assert result["small_sample"] and result["kid_subset_size"] == 3  # 6 images: subsets of half, so they differ
    assert result["kid_std"] > 0 and "warning: fewer than 50 images per side" in proc.stdout
    proc = run_script("eval/fid.py", "--fakes", tmp_path / "a", "--reals", tmp_path / "b",
                      "--inception_weights", tmp_path / "missing.pth")
    assert_one_error_line(proc, "missing.pth does not exist")


def test_kid_subsets_shrink_to_half_the_smaller_set():
    assert fid.kid_subset_size(8, 100, 1000) == 4
    assert fid.kid_subset_size(5000, 4000, 1000) == 1000
    assert fid.kid_subset_size(3, 3, 1000) == 2


def test_captions_fit_their_column_at_every_size():
    from brushwork.evaluation.grids import fit_text, fitted_font, labelled_grid, text_width

    labels = ["real A", "reconstructed A", "CycleGAN: vangogh (runs/cyclegan-vangogh-2)", "Gatys: starry_night"]
    for side in (16, 32, 64, 128, 256):
        columns = [torch.zeros(1, 3, side, side) for _ in labels]
        grid = labelled_grid(columns, labels)
        assert grid.width == side * len(labels) and grid.height > side
        font = fitted_font(labels, side - 4)
        for label in labels:
            assert text_width(fit_text(label, font, side - 4), font) <= side - 4
    assert fit_text("short", fitted_font(["short"], 200), 200) == "short"  # nothing cut when it fits


def test_fig7_columns_are_labelled_by_run_when_domains_repeat():
    from brushwork.evaluation import grid_figures as grids

    assert grids.column_labels(["runs/a", "runs/b"], ["monet", "cezanne"]) == ["monet", "cezanne"]
    assert grids.column_labels(["runs/m1", "runs/m2", "runs/c"], ["monet", "monet", "cezanne"]) == \
        ["monet (m1)", "monet (m2)", "cezanne"]
    assert grids.column_labels(["x/run", "y/run"], ["monet", "monet"]) == ["monet (x/run)", "monet (y/run)"]

