"""AdaIN on the shared pipeline: DDP training from shards (one dataset or two), exact resume, another world size,
the paper's LR rule, learning, stylising with unseen styles (α, weights, colours, full resolution), ONNX, and the
registry sending each run to its own tool."""

import json
import os
import subprocess
import sys
import warnings

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

from brushwork.models import adain, vgg
from brushwork.schemas.train import AdaINConfig
from brushwork.training import schedule
from brushwork.training.adain import AdaINTrainer, encoder_from_state

STYLES = SAMPLES / "gatys" / "style"  # paintings that are in no training shard
TINY = ["--random_vgg", "--size", "32", "--load_size", "40", "--batch_size", "2", "--log_every", "2",
        "--sample_every", "4"]


def adain_command(run_dir, *flags, procs=1):
    script = [str(REPO / "train/adain.py"), "--run_dir", str(run_dir), *TINY, *map(str, flags)]
    if procs == 1:
        return [sys.executable, *script]
    return [str(os.path.join(os.path.dirname(sys.executable), "accelerate")), "launch", "--multi_gpu",
            "--num_processes", str(procs), "--num_machines", "1", "--main_process_port", str(free_port()),
            "--mixed_precision", "no", "--dynamo_backend", "no", *script]


def run_adain(run_dir, *flags, procs=1):
    return subprocess.run(adain_command(run_dir, *flags, procs=procs), capture_output=True, text=True, timeout=400,
                          cwd=REPO, env={**os.environ, **TRAIN_ENV})


def decoder_at(run_dir, step):
    path = run_dir / "checkpoints" / f"step_{step:08d}"
    return (torch.load(path / "models.pt", weights_only=True)["decoder"],
            torch.load(path / "optim.pt", weights_only=True)["decoder"])


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return synth_shards(tmp_path_factory.mktemp("synth"), n_train=16, per_shard=4, size=40)


def export_folder(root, seed=0):
    """An AdaIN export made by hand (random VGG, a decoder whose outputs sit inside [0, 1]): encoder.pth,
    decoder.pth, info.json."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = vgg.load_state(random_init=True, seed=seed)
    torch.manual_seed(seed)
    net = adain.AdaINNet(encoder_from_state(state)).eval()
    with torch.no_grad():  # the default init shrinks the signal at every layer: an untrained decoder paints ~0
        convs = [m for m in net.decoder if isinstance(m, torch.nn.Conv2d)]
        for conv in convs:
            torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            conv.bias.zero_()
        convs[-1].weight.mul_(2.0)
        convs[-1].bias.fill_(0.5)  # outputs around mid-grey, inside [0, 1]
    root.mkdir(parents=True, exist_ok=True)
    torch.save({k: v for k, v in net.encoder.body.state_dict().items()}, root / "encoder.pth")
    torch.save(net.decoder.state_dict(), root / "decoder.pth")
    (root / "info.json").write_text(json.dumps({"kind": "adain"}))
    return net


def odd_photos(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (w, h) in {"odd.png": (37, 29), "wide.png": (75, 18)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_the_learning_rate_is_the_papers_inverse_decay_counted_in_images():
    cfg = AdaINConfig(random_vgg=True, size=32, load_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = AdaINTrainer(cfg)
    assert trainer.learning_rate(0, 100) == 1e-4
    assert trainer.learning_rate(8 * 20_000, 100) == pytest.approx(1e-4 / 2)  # iteration 20,000 of batch 8
    assert schedule.inverse_decay(1e-4, 16, 5e-5) == pytest.approx(1e-4 / (1 + 5e-5 * 2))
    assert trainer.data_sources == (("content", "", "B"), ("style", "", "A"))
    two = AdaINTrainer(cfg.replace(content_data="coco", style_data="wikiart", style_domain="B"))
    assert two.data_sources == (("content", "coco", "B"), ("style", "wikiart", "B"))


def test_the_config_refuses_what_the_network_cannot_take():
    with pytest.raises(Exception, match=r"--size 36 is not a multiple of 8"):
        AdaINConfig(size=36)
    with pytest.raises(Exception, match=r"give both --content_data and --style_data"):
        AdaINConfig(content_data="coco")


@pytest.mark.slow
def test_training_learns_on_held_out_content_and_styles():
    """The decoder's outputs come to carry the style's statistics and the content's features (random VGG)."""
    def load(folder, size=32):
        return torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB").resize((size, size))))
                            .permute(2, 0, 1) for p in sorted((SAMPLES / "monet2photo" / folder).glob("*.jpg"))]
                           ).float() / 255

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = AdaINTrainer(AdaINConfig(random_vgg=True, size=32, load_size=32, lr=1e-3, lr_decay=0.0,
                                           style_weight=1.0))
    photos, paintings = load("trainB"), load("trainA")
    held_photos, held_paintings = load("testB"), load("testA")

    def held_out_losses():
        with torch.no_grad():
            losses, _ = adain.losses(trainer.encoder, trainer.plain, held_photos, held_paintings, 1.0)
        return float(losses["style"]), float(losses["content"])

    style_before, content_before = held_out_losses()
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        pick = lambda images: images[torch.randint(len(images), (4,), generator=g)] * 2 - 1
        trainer.step({"content": pick(photos), "style": pick(paintings)})
    style_after, content_after = held_out_losses()
    assert style_after < style_before / 3, (style_before, style_after)
    assert content_after < content_before / 1.5, (content_before, content_after)


@pytest.mark.slow
def test_two_ranks_train_then_resume_on_one_and_stylize_with_unseen_styles(tmp_path, shards):
    run = tmp_path / "run"
    proc = run_adain(run, "--data", shards, "--max_steps", 4, "--num_workers", 1, procs=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training AdaIN: 2 process(es) x batch 2" in proc.stdout
    ranks = [torch.load(p, weights_only=True) for p in sorted((run / "checkpoints" / "step_00000004").glob("rank_*"))]
    assert len(ranks) == 2 and torch.equal(ranks[0]["weights_fingerprint"], ranks[1]["weights_fingerprint"])
    meta = json.loads((run / "checkpoints" / "step_00000004" / "meta.json").read_text())
    assert meta["kind"] == "adain" == json.loads((run / "export" / "info.json").read_text())["kind"]
    assert meta["images_seen"] == 4 * 2 * 2
    assert {p.name for p in (run / "export").iterdir()} >= {"encoder.pth", "decoder.pth", "info.json"}
    assert list((run / "samples").glob("step_*.png"))
    resumed = run_adain(run, "--data", shards, "--max_steps", 6, "--num_workers", 1, "--resume", "auto")  # 1 process
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    meta = json.loads((run / "checkpoints" / "step_00000006" / "meta.json").read_text())
    assert meta["images_seen"] == 16 + 2 * 2 and meta["world"] == 1
    # stylise with paintings no shard holds, photos of odd sizes, at full resolution
    photos = odd_photos(tmp_path / "photos")
    outs = {}
    for name in ("the_scream", "starry_night"):
        out = tmp_path / name
        proc = run_script("eval/stylize.py", run, "--input", photos, "--out", out, "--style", STYLES / f"{name}.jpg",
                          "--style_size", 64, "--results_html")
        assert proc.returncode == 0, proc.stderr
        assert "AdaIN model" in proc.stdout and name in proc.stdout
        outs[name] = {p.name: np.asarray(Image.open(p)) for p in out.glob("*.png")}
        assert {k: v.shape[:2] for k, v in outs[name].items()} == {"odd.png": (29, 37), "wide.png": (18, 75)}
        page = (out / "index.html").read_text()
        assert "<th>style</th>" in page and page.count(f"src=\".page/style/{name}.png\"") == 2  # in every row
    assert outs["the_scream"].keys() == outs["starry_night"].keys()  # two styles differ: the test below
    # beside the other methods: one column per style image
    proc = run_script("eval/grids.py", "--compare", run, "--content", SAMPLES / "monet2photo" / "testB", "--style",
                      f"{STYLES / 'the_scream.jpg'},{STYLES / 'shipwreck.jpg'}", "--rows", 2, "--cell_size", 32,
                      "--out", tmp_path / "grids")
    assert proc.returncode == 0, proc.stderr
    assert "methods side by side (AdaIN: the_scream, AdaIN: shipwreck)" in proc.stdout
    assert Image.open(tmp_path / "grids" / "compare_methods.png").width == 3 * 32
    # the other trainers and tools send an AdaIN run back to its own
    from conftest import run_train

    proc = run_train(run, shards, "--resume", "auto", "--max_steps", 8)
    assert_one_error_line(proc, "is a checkpoint of an AdaIN run, not a CycleGAN run; resume it with train/adain.py")
    proc = run_script("eval/translate.py", run, "--input", photos, "--out", tmp_path / "t")
    assert_one_error_line(proc, "an AdaIN run, not a CycleGAN run; use eval/stylize.py")


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_weights(tmp_path, shards):
    common = ["--data", shards, "--max_steps", 8, "--checkpoint_every", 4, "--num_workers", 1, "--keep_last", 5]
    whole = tmp_path / "whole"
    assert run_adain(whole, *common).returncode == 0
    killed = tmp_path / "killed"
    at = kill_at_first_checkpoint(adain_command(killed, *common), killed, timeout=300)
    assert at < 8, "training ended before it could be killed"
    resumed = run_adain(killed, *common, "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (a, opt_a), (b, opt_b) = decoder_at(whole, 8), decoder_at(killed, 8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for i in opt_a["state"]:
        for k in opt_a["state"][i]:
            assert torch.equal(opt_a["state"][i][k], opt_b["state"][i][k])


def test_two_shard_roots_are_content_and_style(tmp_path):
    photos = synth_shards(tmp_path / "coco", n_train=4, per_shard=4, size=40)
    paintings = synth_shards(tmp_path / "wikiart", n_train=6, per_shard=4, size=40)
    run = tmp_path / "run"
    proc = run_adain(run, "--content_data", photos, "--style_data", paintings, "--style_domain", "B", "--max_steps",
                     1, "--num_workers", 0)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3 steps/epoch" in proc.stdout  # the larger set (6 paintings) sets the epoch at batch 2
    proc = run_adain(tmp_path / "r2", "--data", photos, "--style_domain", "A", "--max_steps", 1)
    assert proc.returncode == 0  # synth shards hold both domains
    empty = synth_shards(tmp_path / "e", n_train=2, per_shard=4, size=40)
    proc = run_adain(tmp_path / "r3", "--content_data", empty, "--style_data", tmp_path / "nowhere")
    assert proc.returncode != 0 and "nowhere" in proc.stderr and "Traceback" not in proc.stderr


def test_stylize_interpolates_trades_off_and_keeps_colours(tmp_path):
    net = export_folder(tmp_path / "model")
    photos = odd_photos(tmp_path / "photos")
    scream, starry = STYLES / "the_scream.jpg", STYLES / "starry_night.jpg"

    def stylise(name, *flags):
        proc = run_script("eval/stylize.py", tmp_path / "model", "--input", photos, "--out", tmp_path / name,
                          "--style_size", 48, *flags)
        assert proc.returncode == 0, proc.stderr
        return {p.name: np.asarray(Image.open(p)).astype(int) for p in (tmp_path / name).glob("*.png")}

    first = stylise("first", "--style", scream)
    weighted = stylise("weighted", "--style", f"{scream},{starry}", "--style_weights", "1,0")
    assert weighted.keys() == first.keys() and all(np.array_equal(weighted[k], first[k]) for k in first)
    other = stylise("other", "--style", starry)
    assert any(np.abs(other[k] - first[k]).max() > 10 for k in first)  # two styles, two paintings
    mixed = stylise("mixed", "--style", f"{scream},{starry}")
    assert any(np.abs(mixed[k] - first[k]).max() > 2 for k in first)
    own = stylise("alpha0", "--style", scream, "--alpha", 0)
    from brushwork.data.images import load_image, to_unit_tensor

    for name, got in own.items():  # α = 0: the decoder applied to the photo's own features
        x = to_unit_tensor(load_image(photos / name))[None]
        expected = (net.stylize(x, [torch.rand(1, 3, 48, 48)], alpha=0.0)[0] * 255).round().byte()
        assert np.abs(got - expected.permute(1, 2, 0).numpy().astype(int)).max() <= 1
    kept = stylise("colours", "--style", scream, "--preserve_color")
    assert any(np.abs(kept[k] - first[k]).max() > 2 for k in first)
    proc = run_script("eval/stylize.py", tmp_path / "model", "--input", photos, "--out", tmp_path / "x",
                      "--style_index", 1, "--style", scream)
    assert_one_error_line(proc, "is an AdaIN model", "--style_index and --style_mix are for fast-style networks")
    proc = run_script("eval/stylize.py", tmp_path / "model", "--input", photos, "--out", tmp_path / "y")
    assert_one_error_line(proc, "give --style IMAGE")
    proc = run_script("eval/stylize.py", tmp_path / "model", "--input", photos, "--out", tmp_path / "z", "--style",
                      f"{scream},{starry}", "--style_weights", "1")
    assert_one_error_line(proc, "1 --style_weights for 2 --style image(s)")


def test_a_rerun_with_another_encoder_is_refused_as_a_changed_network(tmp_path):
    export_folder(tmp_path / "model")
    photos = odd_photos(tmp_path / "photos")
    args = ["eval/stylize.py", tmp_path / "model", "--input", photos, "--out", tmp_path / "out", "--style",
            STYLES / "the_scream.jpg", "--style_size", 48]
    assert run_script(*args).returncode == 0
    assert run_script(*args).returncode == 0  # the same network: every output is done
    export_folder(tmp_path / "other", seed=1)
    (tmp_path / "model" / "encoder.pth").write_bytes((tmp_path / "other" / "encoder.pth").read_bytes())
    assert_one_error_line(run_script(*args), "holds 2 output(s) this run would not write as they are")


def test_onnx_export_takes_content_and_style_at_any_size(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    from brushwork.training.adain import export_onnx

    net = export_folder(tmp_path / "model")
    assert export_onnx(net, tmp_path / "m.onnx") < 1e-4
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["content", "style"]
    inside = []
    for content_shape, style_shape in (((1, 3, 40, 56), (1, 3, 48, 32)), ((2, 3, 37, 29), (2, 3, 24, 40))):
        content, style = torch.rand(*content_shape), torch.rand(*style_shape)
        expected = torch.cat([net.stylize(content[i:i + 1], [style[i:i + 1]]) for i in range(len(content))])
        got = session.run(None, {"content": content.numpy(), "style": style.numpy()})[0]
        assert got.shape == content_shape and np.abs(got - expected.numpy()).max() < 1e-4
        assert got.min() >= 0 and got.max() <= 1
        inside.append(float(((got > 0) & (got < 1)).mean()))
    assert min(inside) > 0.5  # most pixels inside the range: the comparison is not of clamped constants
