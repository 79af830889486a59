"""Presets inherit, overrides are typed, errors name the flag, resolved TOML round-trips."""

import dataclasses
from typing import Optional

import pytest

from brushwork import config
from brushwork.config import CycleGANConfig, build, load_config, load_preset, setting, to_toml
from brushwork.errors import ConfigError

from conftest import assert_one_error_line, run_script


def test_domain_preset_inherits_base():
    cfg = load_config(CycleGANConfig, "monet", tool="cyclegan")
    assert (cfg.domain, cfg.data, cfg.run_dir) == ("monet", "data/shards/monet2photo", "runs/cyclegan-monet")
    assert (cfg.epochs, cfg.epochs_decay, cfg.lambda_a, cfg.lr, cfg.pool_size) == (100, 100, 10.0, 2e-4, 50)


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


def test_bad_preset_key_and_type_name_the_file(tmp_path):
    (tmp_path / "p.toml").write_text('epoch = 3\n')
    with pytest.raises(ConfigError, match=r"p.toml: unknown key 'epoch'; valid keys: domain, "):
        load_config(CycleGANConfig, tmp_path / "p.toml")
    (tmp_path / "q.toml").write_text('epochs = "many"\n')
    with pytest.raises(ConfigError, match=r"q.toml: epochs expects an integer, got 'many'"):
        load_config(CycleGANConfig, tmp_path / "q.toml")


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ConfigError, match=r"preset 'picasso' not found .* known presets: base, cezanne, monet"):
        load_config(CycleGANConfig, "picasso", tool="cyclegan")


def test_overrides_are_typed():
    cfg = load_config(CycleGANConfig, "monet", {"epochs": "12", "lr": 1, "no-flip": "true", "max_steps": 5.0},
                      tool="cyclegan")
    assert (cfg.epochs, cfg.lr, cfg.no_flip, cfg.max_steps) == (12, 1.0, True, 5)
    assert isinstance(cfg.lr, float)
    with pytest.raises(ConfigError, match=r"--epochs expects an integer, got 'abc'"):
        build(CycleGANConfig, {"epochs": "abc"})
    with pytest.raises(ConfigError, match=r"--lr expects a number, got 'fast'"):
        build(CycleGANConfig, {"lr": "fast"})
    with pytest.raises(ConfigError, match=r"--epochs expects an integer, got True"):
        build(CycleGANConfig, {"epochs": True})
    with pytest.raises(ConfigError, match=r"--mixed_precision must be one of no, bf16, fp16; got 'fp8'"):
        build(CycleGANConfig, {"mixed_precision": "fp8"})


def test_unknown_flag_lists_valid_ones():
    with pytest.raises(ConfigError) as err:
        build(CycleGANConfig, {"epoch": 3})
    message = str(err.value)
    assert message.startswith("unknown flag --epoch; valid flags: --domain, --data, ")
    for f in dataclasses.fields(CycleGANConfig):
        assert f"--{f.name}" in message


@dataclasses.dataclass(frozen=True)
class Mixed:
    name: str = setting('quo"te\\d', "a string with escapes")
    layers: tuple[str, ...] = setting(("conv_1", "conv_2"), "a list")
    weights: tuple[float, ...] = setting((0.2, 1e-7), "floats")
    cap: Optional[int] = setting(None, "optional")
    ratio: float = setting(1e-7, "tiny float")
    on: bool = setting(True, "flag")


def test_resolved_toml_round_trips(tmp_path):
    for cfg in (load_config(CycleGANConfig, "vangogh", {"lr": 3e-5, "resume": "auto"}, tool="cyclegan"),
                Mixed(), build(Mixed, {"layers": "a,b,c", "cap": 7, "weights": [1, 2]})):
        path = config.write_resolved(cfg, tmp_path / type(cfg).__name__)
        assert load_config(type(cfg), path) == cfg
        assert path.read_text() == to_toml(cfg)


def test_list_and_optional_overrides():
    cfg = build(Mixed, {"layers": "conv4_2, relu3_1", "cap": "none", "weights": "0.5,1"})
    assert cfg.layers == ("conv4_2", "relu3_1") and cfg.cap is None and cfg.weights == (0.5, 1.0)
    with pytest.raises(ConfigError, match=r"--weights expects a list of numbers"):
        build(Mixed, {"weights": "a,b"})


def test_cli_flag_errors_are_one_line(tmp_path):
    proc = run_script("data_prep/synth.py", "--out", tmp_path, "--epochs", "3")
    assert_one_error_line(proc, "unknown flag --epochs", "valid flags: --out, --n_train")
    assert proc.returncode == 2
    proc = run_script("data_prep/synth.py", "--out", tmp_path, "--size", "abc")
    assert_one_error_line(proc, "--size expects an integer, got 'abc'")


def test_cli_help_lists_flags_with_defaults():
    proc = run_script("data_prep/synth.py", "--help")
    assert proc.returncode == 0
    assert "--n_train" in proc.stdout and "default 32" in proc.stdout and "known A -> B mapping" in proc.stdout


def test_function_clis_reject_unknown_flags_in_one_line(tmp_path):
    proc = run_script("eval/translate.py", tmp_path, "--inptu", tmp_path, "--out", tmp_path)
    assert_one_error_line(proc, "unknown flag --inptu; valid flags: --input, --out, --direction")
    proc = run_script("eval/survey.py", "bild", "--fakes", tmp_path)
    assert_one_error_line(proc, "choose a command: build, score, simulate")
    proc = run_script("eval/survey.py", "build", "--fake", tmp_path)
    assert_one_error_line(proc, "unknown flag --fake; valid flags: --fakes, --reals")
