"""The config layer: presets inherit, values are typed and bounded, cross-field rules, resolved TOML round-trips,
and the one command-line parser every command uses."""

import dataclasses
from typing import Literal

import pytest
from conftest import assert_one_error_line, run_script

from brushwork import cli
from brushwork.core import presets
from brushwork.core.config import build, load_config
from brushwork.core.errors import ConfigError
from brushwork.core.presets import load_preset, to_toml
from brushwork.schemas.data import ShardConfig
from brushwork.schemas.fields import Config, setting
from brushwork.schemas.gatys import PAIR_KEYS, RENDER_KEYS, GatysConfig
from brushwork.schemas.train import CycleGANConfig, FastStyleConfig


def test_domain_preset_sets_paths_and_keeps_the_paper_defaults():
    cfg = load_config(CycleGANConfig, "monet", tool="cyclegan")
    assert (cfg.dataset, cfg.data, cfg.run_dir) == ("monet", "data/shards/monet2photo", "runs/cyclegan-monet")
    assert (cfg.epochs, cfg.epochs_decay, cfg.lambda_a, cfg.lr, cfg.pool_size) == (100, 100, 10.0, 2e-4, 50)
    assert cfg.mixed_precision is None  # none: accelerate launch decides


def test_child_preset_wins_and_chains(tmp_path):
    (tmp_path / "a.toml").write_text('epochs = 7\nngf = 32\n')
    (tmp_path / "b.toml").write_text('inherit = "a.toml"\nngf = 16\n')
    (tmp_path / "c.toml").write_text('inherit = "b.toml"\nseed = 3\n')
    cfg = load_config(CycleGANConfig, tmp_path / "c.toml")
    assert (cfg.epochs, cfg.ngf, cfg.seed, cfg.ndf) == (7, 16, 3, 64)


def test_inheritance_loop_is_an_error(tmp_path):
    (tmp_path / "a.toml").write_text('inherit = "b.toml"\n')
    (tmp_path / "b.toml").write_text('inherit = "a.toml"\n')
    with pytest.raises(ConfigError, match="inheritance loops"):
        load_preset(tmp_path / "a.toml")


def test_bad_preset_key_type_and_range_name_the_file(tmp_path):
    (tmp_path / "p.toml").write_text('epoch = 3\n')
    with pytest.raises(ConfigError, match=r"p.toml: unknown key 'epoch' \(did you mean epochs\?\); valid keys: data, run_dir, "):
        load_config(CycleGANConfig, tmp_path / "p.toml")
    (tmp_path / "q.toml").write_text('epochs = "many"\n')
    with pytest.raises(ConfigError, match=r"q.toml: epochs expects an integer, got 'many'"):
        load_config(CycleGANConfig, tmp_path / "q.toml")
    (tmp_path / "r.toml").write_text('batch_size = 0\n')
    with pytest.raises(ConfigError, match=r"r.toml: batch_size must be between 1 and 4096; got 0"):
        load_config(CycleGANConfig, tmp_path / "r.toml")
    (tmp_path / "s.toml").write_text('crop_size = 300\n')
    with pytest.raises(ConfigError, match=r"s.toml: --crop_size 300 is larger than --load_size 286"):
        load_config(CycleGANConfig, tmp_path / "s.toml")


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ConfigError, match=r"preset 'picasso' not found .* known presets: cezanne, default, monet"):
        load_config(CycleGANConfig, "picasso", tool="cyclegan")
    assert load_config(FastStyleConfig, "default", tool="fast_style") == FastStyleConfig()  # no file: the defaults
    with pytest.raises(ConfigError, match=r"preset .picasso. not found"):
        load_config(CycleGANConfig, "picasso", tool="cyclegan")


def test_file_values_are_typed_and_bounded():
    # a pairs file's CSV cells are text; each is converted to the field's type and bounded, errors name file:line
    cfg = build(CycleGANConfig, {"epochs": "12", "lr": 1, "no-flip": "true", "max_steps": 5.0, "num_workers": "3"},
                "p.csv:2", base=load_config(CycleGANConfig, "monet", tool="cyclegan"))
    assert (cfg.epochs, cfg.lr, cfg.no_flip, cfg.max_steps, cfg.num_workers, cfg.dataset) == (12, 1.0, True, 5, 3,
                                                                                               "monet")
    assert isinstance(cfg.lr, float)
    with pytest.raises(ConfigError, match=r"^p.csv:2: epochs expects an integer, got 'abc'$"):
        build(CycleGANConfig, {"epochs": "abc"}, "p.csv:2")
    with pytest.raises(ConfigError, match=r"^p.csv:2: lr expects a number, got 'fast'$"):
        build(CycleGANConfig, {"lr": "fast"}, "p.csv:2")
    with pytest.raises(ConfigError, match=r"^p.csv:2: epochs expects an integer, got True$"):
        build(CycleGANConfig, {"epochs": True}, "p.csv:2")
    with pytest.raises(ConfigError, match=r"^p.csv:2: mixed_precision expects one of no, bf16, fp16 or none, got 'fp8'"):
        build(CycleGANConfig, {"mixed_precision": "fp8"}, "p.csv:2")
    for flag, value, bound in (("max_steps", -3, "at least 1"), ("max_steps", 0, "at least 1"),
                               ("batch_size", 0, "between 1 and 4096"), ("lr", -1e-4, "at least 0"),
                               ("beta1", 1.0, "between 0 and 0.999999")):
        with pytest.raises(ConfigError, match=rf"^p.csv:2: {flag} must be {bound}; got {value}$"):
            build(CycleGANConfig, {flag: value}, "p.csv:2")


def test_list_items_are_bounded_and_choices_are_literals():
    with pytest.raises(ConfigError, match=r"^f: multiscale must be between 16 and 16384; got 4$"):
        build(GatysConfig, {"multiscale": "4,512"}, "f")
    with pytest.raises(ConfigError, match=r"^f: pooling expects one of avg, max, got 'mean'$"):
        build(GatysConfig, {"pooling": "mean"}, "f")
    assert build(GatysConfig, {"pooling": "MAX"}, "f").pooling == "max"


def test_cross_field_rules_hold_for_every_construction():
    with pytest.raises(ConfigError, match=r"^f: --part must be below --parts \(2\); got 2"):
        build(GatysConfig, {"part": 2, "parts": 2}, "f")
    with pytest.raises(ConfigError, match=r"3 style layers but 2 style_layer_weights"):
        build(GatysConfig, {"style_layers": "conv1_1,conv2_1,conv3_1", "style_layer_weights": "1,2"}, "f")
    with pytest.raises(ConfigError, match=r"--job_index must be below --num_jobs"):
        ShardConfig(job_index=3, num_jobs=2)
    with pytest.raises(ConfigError, match=r"--max_side 3 would shrink every image"):
        build(ShardConfig, {"max_side": 3}, "f")
    with pytest.raises(ConfigError):  # dataclasses.replace goes through the same checks
        CycleGANConfig().replace(crop_size=999)
    with pytest.raises(ConfigError, match=r"^--style lists a.jpg more than once; give each style image once$"):
        cli.resolve(cli.Command(FastStyleConfig, lambda c: 0, "x"), ["--style", "a.jpg,b.jpg,a.jpg"])


def test_pair_keys_are_derived_from_the_schema():
    assert "style_weight" in PAIR_KEYS and "image_size" in PAIR_KEYS and "normalization" not in PAIR_KEYS
    assert set(PAIR_KEYS) < set(RENDER_KEYS) and {"normalization", "pooling", "lr", "random_vgg"} < set(RENDER_KEYS)
    assert "out" not in RENDER_KEYS and "batch" not in RENDER_KEYS  # they do not change the pixels


def test_unknown_flag_lists_valid_ones_and_suggests():
    with pytest.raises(ConfigError) as err:
        cli.resolve(cli.Command(CycleGANConfig, lambda c: 0, "x"), ["--epocs", "3"])
    message = str(err.value)
    assert message.startswith("unknown flag --epocs (did you mean --epochs?); valid flags: --data, --run_dir, ")
    for f in dataclasses.fields(CycleGANConfig):
        assert f"--{f.name}" in message
    with pytest.raises(ConfigError, match=r"^f:3: unknown key 'epoch' \(did you mean epochs\?\); valid keys: data, "):
        build(CycleGANConfig, {"epoch": 3}, "f:3")


@dataclasses.dataclass(frozen=True)
class Mixed(Config):
    name: str = setting('quo"te\\d', "a string with escapes")
    layers: tuple[str, ...] = setting(("conv_1", "conv_2"), "a list")
    weights: tuple[float, ...] = setting((0.2, 1e-7), "floats", min=0)
    cap: int | None = setting(None, "optional", min=1)
    ratio: float = setting(1e-7, "tiny float")
    on: bool = setting(True, "flag")
    mode: Literal["a", "b"] = setting("a", "a choice")
    inputs: tuple[str, ...] = setting((), "positional list", positional=True)


def test_resolved_toml_round_trips(tmp_path):
    vangogh = load_config(CycleGANConfig, "vangogh", tool="cyclegan")
    for cfg in (vangogh.replace(lr=3e-5, resume="auto", mixed_precision="bf16"),
                Mixed(), build(Mixed, {"layers": "a,b,c", "cap": 7, "weights": [1, 2], "mode": "b"}, "f")):
        path = presets.write_resolved(cfg, tmp_path / type(cfg).__name__)
        assert load_config(type(cfg), path) == cfg
        assert path.read_text() == to_toml(cfg)


def test_list_and_optional_overrides():
    cfg = build(Mixed, {"layers": "conv4_2, relu3_1", "cap": "none", "weights": "0.5,1"}, "f")
    assert cfg.layers == ("conv4_2", "relu3_1") and cfg.cap is None and cfg.weights == (0.5, 1.0)
    with pytest.raises(ConfigError, match=r"^f: weights expects a list of numbers"):
        build(Mixed, {"weights": "a,b"}, "f")


def test_the_command_line_parser():
    """tyro reads the tokens; the layer above it spells lists a,b, 'none', true/false switches and other spellings."""
    def parse(argv, cls=Mixed):
        return cli.resolve(cli.Command(cls, lambda cfg: 0, "doc"), argv)

    cfg = parse(["in1", "--on", "--cap=3", "in2", "--layers", "x", "y", "--mode", "b", "--ratio", "-1e-3", "--",
                 "--in3"])
    assert (cfg.on, cfg.cap, cfg.layers, cfg.mode, cfg.ratio, cfg.inputs) == (True, 3, ("x", "y"), "b", -1e-3,
                                                                              ("in1", "in2", "--in3"))
    cfg = parse(["--no_on", "--weights", "1,2", "--cap", "none"])
    assert (cfg.on, cfg.weights, cfg.cap) == (False, (1.0, 2.0), None)
    cfg = parse(["--on", "false", "--name", "x y"])
    assert cfg.on is False and cfg.name == "x y" and parse(["--on=false"]).on is False
    with pytest.raises(ConfigError, match=r"--on is a switch: give --on, --no_on or --on=false"):
        parse(["--on=maybe"])
    compiled = parse(["--compile", "--max_steps", "none"], CycleGANConfig)  # a bare switch that may also be unset
    assert (compiled.compile, compiled.max_steps) == (True, None)
    assert parse(["--compile", "none"], CycleGANConfig).compile is None
    with pytest.raises(ConfigError, match=r"unknown flag --no_no_on"):
        parse(["--no_no_on"])
    with pytest.raises(ConfigError, match=r"Missing value for argument '--cap'"):  # tyro's words from here on
        parse(["--cap", "--on"])
    with pytest.raises(ConfigError, match=r"Error parsing --cap"):
        parse(["--cap", "abc"])
    with pytest.raises(ConfigError, match=r"invalid choice 'c' for argument '--mode'"):
        parse(["--mode", "c"])
    with pytest.raises(ConfigError, match=r"unknown flag --nme \(did you mean --name\?\)"):
        parse(["--nme", "x"])
    with pytest.raises(ConfigError, match=r"unknown option -x"):
        parse(["-x"])
    with pytest.raises(ConfigError, match=r"unexpected positional argument\(s\) a b; this command takes only --flags"):
        parse(["a", "b"], CycleGANConfig)


def test_cli_flag_errors_are_one_line(tmp_path):
    proc = run_script("data_prep/synth.py", "--out", tmp_path, "--epochs", "3")
    assert_one_error_line(proc, "unknown flag --epochs", "valid flags: --out, --n_train")
    assert proc.returncode == 2
    proc = run_script("data_prep/synth.py", "--out", tmp_path, "--image_size", "abc")
    assert_one_error_line(proc, "Error parsing --image_size: invalid literal for int() with base 10: 'abc'")
    proc = run_script("data_prep/synth.py", "--out", tmp_path, "--image_size", "2")
    assert_one_error_line(proc, "--image_size must be between 8 and 4096; got 2")
    assert not (tmp_path / "trainA").exists()  # refused before any work


def test_cli_help_lists_flags_with_defaults():
    proc = run_script("data_prep/synth.py", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # the table wraps at the terminal's width
    assert "--n_train" in text and "(default: 32)" in text and "known A -> B mapping" in proc.stdout
    assert "between 8 and 4096" in proc.stdout


def test_subcommands_and_unknown_flags_are_one_line(tmp_path):
    proc = run_script("eval/translate.py", tmp_path, "--inptu", tmp_path, "--out", tmp_path)
    assert_one_error_line(proc, "unknown flag --inptu (did you mean --input?); valid flags: --input, --out")
    proc = run_script("eval/survey.py", "bild", "--fakes", tmp_path)
    assert_one_error_line(proc, "choose a command: build, score, simulate (got 'bild')")
    proc = run_script("eval/survey.py", "build", "--fake", tmp_path)
    assert_one_error_line(proc, "unknown flag --fake (did you mean --fakes?); valid flags: --fakes, --reals")
    proc = run_script("eval/survey.py", "build", "--n", "abc")
    assert_one_error_line(proc, "Error parsing --n: invalid literal for int() with base 10: 'abc'")
