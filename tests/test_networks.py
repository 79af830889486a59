"""Networks equal the original code: parameter counts, keys, outputs of the reference weights."""

import pytest
import torch
from conftest import SHARED

from brushwork.core.errors import BrushworkError
from brushwork.evaluation.translate import load_generator
from brushwork.models.networks import (
    NLayerDiscriminator,
    ResnetGenerator,
    count_parameters,
    generator_arch,
    init_weights,
)
from brushwork.training import checkpoint

FIXTURES = SHARED / "fixtures"
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "junyanz_io.pth").exists(), reason="../shared/fixtures not present")


def test_parameter_counts_match_the_original():
    assert count_parameters(ResnetGenerator(ngf=64, n_blocks=9)) == 11_378_179
    assert count_parameters(NLayerDiscriminator(ndf=64, n_layers=3)) == 2_764_737
    assert count_parameters(ResnetGenerator(ngf=8, n_blocks=9)) == 180_419
    assert count_parameters(NLayerDiscriminator(ndf=8)) == 44_537


@needs_fixtures
@pytest.mark.parametrize("winograd", [False, True])
def test_reference_weights_reproduce_reference_outputs(winograd, monkeypatch):
    if winograd:  # force it: the fixture's 32-channel blocks are below the size where it pays off
        monkeypatch.setattr("brushwork.models.winograd.pays_off", lambda x, weight, padding=0: True)
    io = torch.load(FIXTURES / "junyanz_io.pth", weights_only=True)
    G, D = ResnetGenerator(ngf=8, winograd=winograd), NLayerDiscriminator(ndf=8)
    sd_G = torch.load(FIXTURES / "junyanz_G_ngf8.pth", weights_only=True)
    sd_D = torch.load(FIXTURES / "junyanz_D_ndf8.pth", weights_only=True)
    G.load_state_dict(sd_G, strict=True)
    D.load_state_dict(sd_D, strict=True)
    assert list(G.state_dict()) == list(sd_G) and list(D.state_dict()) == list(sd_D)  # no key mapping at all
    with torch.no_grad():
        assert (G.eval()(io["x"]) - io["G_out"]).abs().max() < 1e-5
        assert (D.eval()(io["x"]) - io["D_out"]).abs().max() < 1e-5


@needs_fixtures
def test_export_and_reimport_round_trip(tmp_path):
    G, used = load_generator(FIXTURES / "junyanz_G_ngf8.pth")
    assert used == f"generator {FIXTURES / 'junyanz_G_ngf8.pth'}"
    checkpoint.export(tmp_path, {"G_A": G, "G_B": G}, {"note": "test"})
    exported = torch.load(tmp_path / "export" / "G_A.pth", weights_only=True)
    reference = torch.load(FIXTURES / "junyanz_G_ngf8.pth", weights_only=True)
    assert list(exported) == list(reference)
    assert all(torch.equal(exported[k], reference[k]) for k in reference)
    again, used = load_generator(tmp_path, "AtoB")  # an export/ folder without checkpoints beside it
    assert used == f"G_A from {tmp_path / 'export' / 'G_A.pth'}"
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(again(x), G(x))


def test_generator_arch_is_read_off_the_weights():
    sd = ResnetGenerator(ngf=16, n_blocks=6).state_dict()
    assert generator_arch(sd) == {"in_channels": 3, "out_channels": 3, "ngf": 16, "n_blocks": 6}


def test_loading_a_wrong_file_is_one_clear_error(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BrushworkError, match=r"junk.pth: unreadable checkpoint file"):
        load_generator(tmp_path / "junk.pth")
    torch.save(NLayerDiscriminator(ndf=8).state_dict(), tmp_path / "disc.pth")
    with pytest.raises(BrushworkError, match=r"disc.pth: not a ResNet generator"):
        load_generator(tmp_path / "disc.pth")
    with pytest.raises(BrushworkError, match="no such run folder or generator file"):
        load_generator(tmp_path / "missing.pth")
    with pytest.raises(BrushworkError, match="no checkpoint yet; train first, or pass an exported .pth file"):
        load_generator(tmp_path, "BtoA")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(BrushworkError, match=r"list.pth: holds a list, not a generator state dict"):
        load_generator(tmp_path / "list.pth")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(BrushworkError, match=r"tensor.pth: holds a Tensor, not a generator state dict"):
        load_generator(tmp_path / "tensor.pth")
    sd = ResnetGenerator(ngf=8, n_blocks=2).state_dict()
    del sd["model.1.bias"]
    torch.save(sd, tmp_path / "partial.pth")
    with pytest.raises(BrushworkError, match=r"partial.pth: does not fit this network \(Missing key\(s\) in state_dict: "
                                             r"\"model.1.bias\""):
        load_generator(tmp_path / "partial.pth")


def test_init_is_normal_002_with_zero_bias():
    torch.manual_seed(0)
    G = init_weights(ResnetGenerator(ngf=16, n_blocks=2), "normal", 0.02)
    weights = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
    biases = torch.cat([m.bias.flatten() for m in G.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
    assert abs(weights.std().item() - 0.02) < 0.001 and abs(weights.mean().item()) < 0.001
    assert torch.count_nonzero(biases) == 0
    xavier = init_weights(ResnetGenerator(ngf=16, n_blocks=2), "xavier", 0.02)
    assert xavier.model[1].weight.std() < weights.std()  # xavier with gain 0.02 is much smaller here
    with pytest.raises(ValueError):
        init_weights(ResnetGenerator(ngf=8, n_blocks=1), "uniformish")


def test_any_size_and_depth():
    G = ResnetGenerator(ngf=8, n_blocks=12)
    assert G(torch.zeros(2, 3, 36, 44)).shape == (2, 3, 36, 44)
    assert NLayerDiscriminator(ndf=8)(torch.zeros(1, 3, 70, 70)).shape == (1, 1, 6, 6)


def test_a_trainer_step_equals_the_original_codes_optimize_parameters(tmp_path):
    """The same weights and batch through brushwork's step and the original CycleGANModel.optimize_parameters():
    the same eight losses and the same updated weights (GAN targets, λ_A/λ_B, identity 0.5, the D losses' 0.5,
    Adam's lr and betas: all of it)."""
    import importlib.util
    import sys

    from brushwork.schemas.train import CycleGANConfig
    from brushwork.training.cyclegan import CycleGANTrainer

    bench = SHARED / "reference" / "junyanz_bench.py"
    if not bench.exists():
        pytest.skip("../shared/reference not present")
    spec = importlib.util.spec_from_file_location("junyanz_bench", bench)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved_path = list(sys.path)
    try:
        opt = module.make_opt(32, 1, 8, 8, str(tmp_path))
        opt.pool_size = 0  # no pool on either side: the step is deterministic
        original = module.build_model(opt)
    finally:
        sys.path[:] = saved_path
    ours = CycleGANTrainer(CycleGANConfig(ngf=8, ndf=8, n_blocks=9, pool_size=0, winograd=False),
                           join_passes=False, fused_adam=False)
    for name in ("G_A", "G_B", "D_A", "D_B"):
        ours.plain[name].load_state_dict(getattr(original, f"net{name}").state_dict())
    gen = torch.Generator().manual_seed(3)
    for _ in range(2):
        a, b = (torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1 for _ in range(2))
        original.set_input({"A": a, "B": b, "A_paths": ["a.png"], "B_paths": ["b.png"]})
        original.optimize_parameters()
        losses, _ = ours.step({"A": a, "B": b})
        theirs = original.get_current_losses()
        assert set(theirs) == set(losses)
        for k, v in theirs.items():
            assert abs(float(losses[k]) - v) <= 1e-5 * max(1.0, abs(v)), (k, float(losses[k]), v)
    for name in ("G_A", "G_B", "D_A", "D_B"):
        theirs = getattr(original, f"net{name}").state_dict()
        for k, v in ours.plain[name].state_dict().items():
            if v.dim() > 1:  # weights (a conv bias before an instance norm has float noise for a gradient)
                assert torch.allclose(v, theirs[k], rtol=1e-4, atol=1e-6), (name, k)
