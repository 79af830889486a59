"""Fast style: the published network, conditional instance norm, the shared trainer (DDP, exact resume), learning,
stylize and ONNX."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import (
    REPO,
    SAMPLES,
    TRAIN_ENV,
    assert_one_error_line,
    free_port,
    kill_at_first_checkpoint,
    run_script,
    synth_shards,
)
from PIL import Image

from brushwork.core.errors import BrushworkError
from brushwork.models.style_net import ConditionalInstanceNorm2d, TransformerNet
from brushwork.schemas.train import FastStyleConfig
from brushwork.training.fast_style import FastStyleTrainer

STYLES = SAMPLES / "gatys" / "style"
TINY = ["--random_vgg", "--width", "8", "--size", "32", "--batch_size", "2", "--log_every", "2", "--sample_every", "4"]


def test_the_papers_network_has_the_published_parameter_count():
    # Johnson et al. 2016, supplementary Table 1, with instance norm in place of batch norm (Ulyanov et al.),
    # as pytorch/examples fast_neural_style/neural_style/transformer_net.py: 1,679,235 parameters.
    assert sum(p.numel() for p in TransformerNet(width=32).parameters()) == 1_679_235
    x = torch.rand(2, 3, 64, 48)
    assert TransformerNet(width=8)(x).shape == x.shape


def test_k_styles_have_k_affine_sets_and_an_index_equals_a_single_style_net():
    torch.manual_seed(0)
    multi = TransformerNet(width=8, n_styles=3)
    norms = [m for m in multi.modules() if isinstance(m, ConditionalInstanceNorm2d)]
    assert norms and all(m.weight.shape[0] == 3 and m.bias.shape[0] == 3 for m in norms)
    with torch.no_grad():
        for m in norms:
            m.weight.normal_(1, 0.3)
            m.bias.normal_(0, 0.3)
    x = torch.rand(2, 3, 32, 32)
    for k in range(3):
        single = TransformerNet(width=8, n_styles=1)
        state = {name: (v[k:k + 1] if name.endswith(("norm.weight", "norm.bias")) else v)
                 for name, v in multi.state_dict().items()}
        single.load_state_dict(state)
        with torch.no_grad():
            assert torch.allclose(multi(x, k), single(x), atol=1e-6)
            assert torch.allclose(multi(x, torch.tensor([k, k])), single(x), atol=1e-6)
    with torch.no_grad():  # mixing styles mixes their (gamma, beta): half and half is neither style
        mixed = multi(x, torch.tensor([0.5, 0.5, 0.0]))
        assert not torch.allclose(mixed, multi(x, 0), atol=1e-3) and not torch.allclose(mixed, multi(x, 1), atol=1e-3)


def test_samples_show_every_style_with_its_image_above_its_result():
    from brushwork.data.images import cover_crop, from_unit_tensor
    from brushwork.evaluation.grids import labelled_grid

    styles = (str(STYLES / "the_scream.jpg"), str(STYLES / "starry_night.jpg"))
    trainer = FastStyleTrainer(FastStyleConfig(style=styles, random_vgg=True, width=8, size=32, style_size=64))
    photo = torch.rand(2, 3, 32, 40)
    columns, labels = trainer.sample({"content": photo, "stylized": photo, "styles": torch.tensor([1, 1])})
    assert labels == ["content", "style the_scream", "style starry_night"]
    assert [tuple(c.shape) for c in columns] == [(2, 3, 32, 40)] * 3  # each: the style image above the result
    assert torch.equal(columns[0][1], photo[0] * 2 - 1) and torch.equal(columns[0][0], torch.ones(3, 32, 40))
    with torch.no_grad():
        for k in range(2):
            assert torch.allclose(columns[1 + k][1], trainer.plain(photo[:1], k)[0].clamp(0, 1) * 2 - 1, atol=1e-5)
            top = cover_crop(from_unit_tensor(trainer.style_images[k][0]), (32, 40))[0]
            assert torch.allclose(columns[1 + k][0], top * 2 - 1)
    grid = labelled_grid(columns, labels)
    assert grid.width == 3 * 40 and grid.height > 2 * 32  # 3 columns of 2 rows under a caption strip


def style_loss_of(trainer, net, photos):
    with torch.no_grad():
        y = net(photos, torch.zeros(len(photos), dtype=torch.long))
        losses = trainer.losses(photos, y, torch.zeros(len(photos), dtype=torch.long))
    return float(losses["style"]), float(losses["content"])


@pytest.mark.slow
def test_training_learns_the_style_on_held_out_photos():
    torch.manual_seed(0)
    cfg = FastStyleConfig(style=(str(STYLES / "starry_night.jpg"),), random_vgg=True, width=8, size=48, lr=1e-2,
                          style_size=48, tv_weight=0.0, content_weight=1e4)
    trainer = FastStyleTrainer(cfg)
    train = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB").resize((48, 48)))).permute(2, 0, 1)
                         for p in sorted((SAMPLES / "monet2photo" / "trainB").glob("*.jpg"))]).float() / 255
    held_out = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB").resize((48, 48)))).permute(2, 0, 1)
                            for p in sorted((SAMPLES / "monet2photo" / "testB").glob("*.jpg"))]).float() / 255
    before, content_before = style_loss_of(trainer, trainer.plain, held_out)
    identity = float(trainer.losses(held_out, held_out, torch.zeros(len(held_out), dtype=torch.long))["style"])
    g = torch.Generator().manual_seed(0)
    for _ in range(80):
        batch = train[torch.randint(len(train), (4,), generator=g)]
        trainer.step({"B": batch * 2 - 1})
    after, content = style_loss_of(trainer, trainer.plain, held_out)
    assert after < before / 5, (before, after)  # the untrained net's output is far from the style
    assert after < identity / 2, (identity, after)  # and the photos themselves are too
    content_of_grey = float(trainer.losses(held_out, torch.full_like(held_out, 0.5),
                                                torch.zeros(len(held_out), dtype=torch.long))["content"])
    assert content < content_before / 5, (content_before, content)  # the content comes back through the net
    assert content < content_of_grey, (content_of_grey, content)  # more of it than a flat grey image keeps


def fast_command(run_dir, data, *flags, procs=1):
    script = [str(REPO / "train/fast_style.py"), "--style", str(STYLES / "the_scream.jpg"), "--data", str(data),
              "--run_dir", str(run_dir), *TINY, *map(str, flags)]
    if procs == 1:
        return [sys.executable, *script]
    return [str(os.path.join(os.path.dirname(sys.executable), "accelerate")), "launch", "--multi_gpu",
            "--num_processes", str(procs), "--num_machines", "1", "--main_process_port", str(free_port()),
            "--mixed_precision", "no", "--dynamo_backend", "no", *script]


def run_fast(run_dir, data, *flags, procs=1):
    return subprocess.run(fast_command(run_dir, data, *flags, procs=procs), capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, **TRAIN_ENV})


def checkpoint_state(run_dir, step):
    path = run_dir / "checkpoints" / f"step_{step:08d}"
    return torch.load(path / "models.pt", weights_only=True)["net"], torch.load(path / "optim.pt", weights_only=True)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return synth_shards(tmp_path_factory.mktemp("synth"), n_train=16, per_shard=64, size=32)


@pytest.mark.slow
def test_two_ranks_train_identical_weights_and_stylize_runs(tmp_path, shards):
    run = tmp_path / "run"
    proc = run_fast(run, shards, "--max_steps", 4, "--num_workers", 2, procs=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training fast style the_scream: 2 process(es) x batch 2" in proc.stdout
    ranks = [torch.load(p, weights_only=True) for p in sorted((run / "checkpoints" / "step_00000004").glob("rank_*"))]
    assert len(ranks) == 2
    assert torch.equal(ranks[0]["weights_fingerprint"], ranks[1]["weights_fingerprint"])  # DDP kept them identical
    assert not torch.equal(ranks[0]["style_rng"], ranks[1]["style_rng"])  # each rank draws its own styles
    net, _ = checkpoint_state(run, 4)
    meta = json.loads((run / "checkpoints" / "step_00000004" / "meta.json").read_text())
    assert meta["kind"] == "fast_style" == json.loads((run / "export" / "info.json").read_text())["kind"]
    from conftest import run_train

    proc = run_train(run, shards, "--resume", "auto", "--max_steps", 6)  # CycleGAN's trainer on this run
    assert_one_error_line(proc, "is a checkpoint of a fast-style run, not a CycleGAN run; resume it with "
                                "train/fast_style.py")
    exported = torch.load(run / "export" / "net.pth", weights_only=True)
    assert all(torch.equal(net[k], exported[k]) for k in net)
    assert (run / "config.toml").is_file() and list((run / "samples").glob("step_*.png"))
    out = tmp_path / "styl"
    proc = run_script("eval/stylize.py", run, "--input", SAMPLES / "monet2photo" / "testB", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "fast-style network of" in proc.stdout and "at step 4" in proc.stdout
    sizes = {p.name: Image.open(p).size for p in out.glob("*.png")}
    originals = {p.with_suffix(".png").name: Image.open(p).size for p in (SAMPLES / "monet2photo" / "testB").glob("*.jpg")}
    assert sizes == originals  # full resolution, names kept
    proc = run_script("eval/stylize.py", run / "export" / "net.pth", "--input", SAMPLES / "monet2photo" / "testB",
                      "--out", tmp_path / "page", "--results_html")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "page" / "index.html").read_text()
    assert "<th>style</th>" in page
    assert page.count("<img src=\".page/style/the_scream.png\"") == len(originals)  # in every row
    assert max(Image.open(tmp_path / "page" / ".page" / "style" / "the_scream.png").size) <= 512
    # the methods side by side on the same photos: Gatys renders beside the fast-style network
    photos = SAMPLES / "monet2photo" / "testB"
    assert run_script("train/gatys.py", "--content", photos, "--style", STYLES / "the_scream.jpg", "--out",
                      tmp_path / "renders", "--random_vgg", "--image_size", 32, "--iterations", 2).returncode == 0
    proc = run_script("eval/grids.py", "--compare", tmp_path / "renders", run, "--content", photos, "--rows", 3,
                      "--cell_size", 32, "--out", tmp_path / "grids")
    assert proc.returncode == 0, proc.stderr
    assert "methods side by side (Gatys: the_scream, fast style: the_scream)" in proc.stdout
    grid = Image.open(tmp_path / "grids" / "compare_methods.png")
    assert grid.width == 3 * 32 and grid.height > 3 * 32  # photo | Gatys | fast style, 3 rows, captions


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_weights(tmp_path, shards):
    common = ["--max_steps", 10, "--checkpoint_every", 5, "--num_workers", 1, "--keep_last", 5]
    whole = tmp_path / "whole"
    assert run_fast(whole, shards, *common).returncode == 0
    killed = tmp_path / "killed"
    at = kill_at_first_checkpoint(fast_command(killed, shards, *common), killed)
    assert at < 10, "training ended before it could be killed"
    resumed = run_fast(killed, shards, *common, "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, opt_a = checkpoint_state(whole, 10)
    b, opt_b = checkpoint_state(killed, 10)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for i in opt_a["net"]["state"]:
        for k in opt_a["net"]["state"][i]:
            assert torch.equal(opt_a["net"]["state"][i][k], opt_b["net"]["state"][i][k])


def test_stylized_pixels_are_the_network_applied_at_full_resolution(tmp_path):
    from brushwork.evaluation.translate import pad_for_network

    torch.manual_seed(0)
    net = TransformerNet(width=8, n_styles=2).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                m.weight.normal_(1, 0.3)
                m.bias.normal_(0, 0.3)
    torch.save(net.state_dict(), tmp_path / "net.pth")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name, (w, h) in {"odd.png": (37, 29), "wide.png": (64, 18)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(photos / name)
    proc = run_script("eval/stylize.py", tmp_path / "net.pth", "--input", photos, "--out", tmp_path / "out",
                      "--style_mix", "0.3,0.7")
    assert proc.returncode == 0, proc.stderr
    for name in ("odd.png", "wide.png"):
        arr = np.asarray(Image.open(photos / name).convert("RGB"))
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255
        padded, (h, w) = pad_for_network(x)
        with torch.no_grad():
            y = net(padded, torch.tensor([[0.3, 0.7]]))[..., :h, :w]
        expected = (y[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        got = np.asarray(Image.open(tmp_path / "out" / name))
        assert got.shape == arr.shape and np.abs(got.astype(int) - expected.astype(int)).max() <= 1
        assert np.abs(got.astype(int) - arr.astype(int)).mean() > 5  # the network did paint


def test_onnx_export_equals_torch_at_two_sizes(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    from brushwork.training.fast_style import export_onnx

    torch.manual_seed(0)
    net = TransformerNet(width=8, n_styles=2).eval()
    weights = torch.tensor([0.25, 0.75])
    check = torch.rand(1, 3, 40, 56)
    worst = export_onnx(net, weights, tmp_path / "net.onnx", check)
    assert worst < 1e-4
    session = onnxruntime.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    raw_range = []
    for shape in ((1, 3, 40, 56), (2, 3, 64, 32)):
        x = torch.rand(*shape)
        with torch.no_grad():
            raw = net(x, weights.expand(shape[0], -1))
        raw_range += [float(raw.min()), float(raw.max())]
        got = session.run(None, {"image": x.numpy()})[0]
        assert got.shape == raw.shape and np.abs(got - raw.clamp(0, 1).numpy()).max() < 1e-4
        assert got.min() >= 0 and got.max() <= 1  # an image in [0, 1], as documented
    assert min(raw_range) < 0 or max(raw_range) > 1  # the raw network does overshoot: the clamp is tested


def test_bad_style_and_stylize_inputs_are_one_line(tmp_path, shards):
    proc = run_script("train/fast_style.py", "--data", shards, "--run_dir", tmp_path / "r", *TINY)
    assert_one_error_line(proc, "give --style IMAGE")
    proc = run_script("train/fast_style.py", "--style", tmp_path / "none.jpg", "--data", shards, "--run_dir",
                      tmp_path / "r", *TINY)
    assert_one_error_line(proc, "none.jpg: no such file")
    proc = run_script("eval/stylize.py", tmp_path / "nothing", "--input", SAMPLES / "gatys" / "content", "--out",
                      tmp_path / "o")
    assert_one_error_line(proc, "nothing: no such run folder or network file")


def test_a_cyclegan_run_and_a_fast_style_run_each_point_to_their_own_tool(tmp_path):
    from brushwork.evaluation.translate import load_generator
    from brushwork.models.networks import ResnetGenerator
    from brushwork.training.fast_style import load_stylizer

    def fake_run(name, models):
        step = tmp_path / name / "checkpoints" / "step_00000001"
        step.mkdir(parents=True)
        torch.save(models, step / "models.pt")
        (step.parent / "latest").write_text("step_00000001")
        return tmp_path / name

    generator = ResnetGenerator(ngf=4, n_blocks=1).state_dict()
    style_net = TransformerNet(width=4, n_styles=1).state_dict()
    cyclegan_run = fake_run("cg", {"G_A": generator, "G_B": generator})
    fast_run = fake_run("fs", {"net": style_net})
    torch.save(generator, tmp_path / "G_A.pth")
    torch.save(style_net, tmp_path / "net.pth")
    with pytest.raises(BrushworkError, match=r"cg: a CycleGAN run, not a fast-style run; use eval/translate.py"):
        load_stylizer(cyclegan_run)
    with pytest.raises(BrushworkError, match=r"G_A.pth: CycleGAN weights, not fast-style weights; use eval/trans"):
        load_stylizer(tmp_path / "G_A.pth")
    with pytest.raises(BrushworkError, match=r"fs: a fast-style run, not a CycleGAN run; use eval/stylize.py"):
        load_generator(fast_run)
    with pytest.raises(BrushworkError, match=r"net.pth: fast-style weights, not CycleGAN weights; use eval/st"):
        load_generator(tmp_path / "net.pth")
    assert load_stylizer(fast_run)[0].n_styles == 1 and load_generator(cyclegan_run)[0] is not None
    # the record decides, not the keys: a run that says it is fast style is sent to stylize whatever models.pt holds
    (cyclegan_run / "checkpoints" / "step_00000001" / "meta.json").write_text(json.dumps({"kind": "fast_style"}))
    with pytest.raises(BrushworkError, match=r"cg: a fast-style run, not a CycleGAN run; use eval/stylize.py"):
        load_generator(cyclegan_run)
    (fast_run / "export").mkdir()
    (fast_run / "export" / "info.json").write_text(json.dumps({"kind": "pix2pix"}))  # a kind this version lacks
    (fast_run / "checkpoints" / "latest").unlink()
    with pytest.raises(BrushworkError, match=r"fs: a model of kind 'pix2pix', which this version does not know"):
        load_stylizer(fast_run)
