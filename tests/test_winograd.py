"""Winograd F(4x4, 3x3) convolution: same outputs and gradients as conv2d, at a quarter of the block-conv FLOPs."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from brushwork.models.networks import ResnetGenerator, init_weights
from brushwork.models.winograd import apply_conv, conv3x3, pays_off


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).abs().max() / want.abs().max()).item()


@pytest.mark.parametrize("n, c_in, c_out, h, w, bias", [
    (1, 8, 5, 18, 10, True),    # whole tiles
    (3, 4, 6, 7, 13, False),    # ragged tiles, batch 3, no bias
    (2, 16, 16, 34, 34, True),  # the block shape at 32x32
    (1, 3, 2, 3, 3, True),      # a single output pixel
])
def test_outputs_and_all_gradients_match_float64_conv2d(n, c_in, c_out, h, w, bias):
    torch.manual_seed(0)
    x = torch.randn(n, c_in, h, w, requires_grad=True)
    weight = torch.randn(c_out, c_in, 3, 3, requires_grad=True)
    b = torch.randn(c_out, requires_grad=True) if bias else None
    inputs = (x, weight, b) if bias else (x, weight)
    y = conv3x3(x, weight, b)
    want = F.conv2d(*(t.double() for t in inputs))
    assert y.shape == want.shape and y.dtype == torch.float32
    assert relative_error(y, want) < 2e-5
    grad_y = torch.randn_like(want)
    got_grads = torch.autograd.grad(y, inputs, grad_y.float())
    want_grads = torch.autograd.grad(want, inputs, grad_y)
    for got, ref in zip(got_grads, want_grads):
        assert relative_error(got, ref) < 2e-5


def test_it_is_deterministic_so_resume_stays_bit_identical():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 22, 22, requires_grad=True)
    weight = torch.randn(32, 32, 3, 3, requires_grad=True)
    runs = [torch.autograd.grad(conv3x3(x, weight).square().sum(), (x, weight)) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_frozen_weights_give_input_gradients_only():
    x = torch.randn(1, 4, 10, 10, requires_grad=True)
    weight = torch.randn(4, 4, 3, 3)
    grad, = torch.autograd.grad(conv3x3(x, weight).sum(), x)
    want, = torch.autograd.grad(F.conv2d(x.double(), weight.double()).sum(), x)
    assert relative_error(grad, want) < 2e-5


def test_other_dtypes_fall_back_to_conv2d_exactly():
    x, weight = torch.randn(1, 4, 10, 10, dtype=torch.float64), torch.randn(4, 4, 3, 3, dtype=torch.float64)
    assert torch.equal(conv3x3(x, weight), F.conv2d(x, weight))
    with pytest.raises(RuntimeError):  # too small: conv2d's own error, not a silent empty tensor
        conv3x3(torch.randn(1, 4, 2, 2), torch.randn(4, 4, 3, 3))


@pytest.mark.parametrize("side,bound", [(34, 0.335), (66, 0.31)])
def test_a_block_conv_costs_a_quarter_of_the_direct_flops(side, bound):
    """4x fewer in the products, plus the transforms (V and a trained weight's U are transformed again in
    backward instead of kept: the transforms weigh most at the smallest map Winograd is used for)."""
    x = torch.randn(1, 256, side, side, requires_grad=True)
    weight = torch.randn(256, 256, 3, 3, requires_grad=True)
    counts = {}
    for name, conv in (("direct", F.conv2d), ("winograd", conv3x3)):
        with FlopCounterMode(display=False) as counter:
            conv(x, weight).sum().backward()
        counts[name] = counter.get_total_flops()
    assert counts["winograd"] < bound * counts["direct"]


def test_trained_weights_are_not_cached_and_their_transforms_are_not_kept_for_backward():
    from brushwork.models import winograd

    x = torch.randn(1, 256, 66, 66, requires_grad=True)  # 256 tiles: a 256-px step's ResNet blocks
    trained = torch.randn(256, 256, 3, 3, requires_grad=True)
    winograd._TRANSFORMED.clear()
    y = conv3x3(x, trained)
    assert not winograd._TRANSFORMED  # a training step holds no transformed copies of its weights
    saved = [t for t in y.grad_fn.saved_tensors if t is not None]
    assert [tuple(t.shape) for t in saved] == [(1, 256, 66, 66), (256, 256, 3, 3)]  # x and w, neither V nor U
    frozen = torch.randn(256, 256, 3, 3)
    conv3x3(x, frozen)
    assert len(winograd._TRANSFORMED) == 1  # frozen weights (VGG) are transformed once
    small = torch.randn(1, 256, 34, 34, requires_grad=True)  # 64 tiles: the transform is worth keeping
    conv3x3(small, trained)
    assert len(winograd._TRANSFORMED) == 2


def test_convs_it_does_not_cover_run_as_themselves():
    x = torch.randn(1, 256, 34, 34)
    for conv in (torch.nn.Conv2d(256, 256, 3, stride=2, padding=1), torch.nn.Conv2d(256, 256, 3, dilation=2),
                 torch.nn.Conv2d(256, 256, 3, padding=1, padding_mode="reflect"),
                 torch.nn.Conv2d(256, 256, 3, padding=2), torch.nn.Conv2d(256, 256, 1)):
        with torch.no_grad():
            assert torch.equal(apply_conv(conv, x), conv(x)), conv
    covered = torch.nn.Conv2d(256, 256, 3, padding=1)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        got = apply_conv(covered, x)
    assert counter.get_total_flops() < 0.5 * 2 * 256 * 256 * 9 * 34 * 34  # took the Winograd path
    assert relative_error(got, covered.double()(x.double())) < 2e-5


def test_it_is_used_only_where_it_pays_off():
    weight = torch.randn(256, 256, 3, 3)
    assert pays_off(torch.randn(1, 256, 34, 34), weight)  # 8x8 tiles of 256 channels
    assert pays_off(torch.randn(4, 256, 18, 18), weight)  # 4 images of 4x4 tiles
    assert not pays_off(torch.randn(1, 256, 18, 18), weight)  # too few tiles
    assert not pays_off(torch.randn(1, 64, 34, 34), torch.randn(64, 64, 3, 3))  # too few channels
    assert not pays_off(torch.randn(1, 256, 34, 34, dtype=torch.float64), weight.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not pays_off(torch.randn(1, 256, 34, 34), weight)


def test_generator_with_winograd_matches_the_direct_generator_and_keeps_its_weights():
    torch.manual_seed(0)
    direct = init_weights(ResnetGenerator(ngf=64, n_blocks=1))  # the paper's width: 256-channel blocks
    fast = ResnetGenerator(ngf=64, n_blocks=1, winograd=True)
    fast.load_state_dict(direct.state_dict())
    exact = copy.deepcopy(direct).double()
    assert list(fast.state_dict()) == list(direct.state_dict())
    x = torch.rand(1, 3, 128, 136) * 2 - 1
    flops = {}
    for name, net in (("direct", direct), ("fast", fast)):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(x)
        flops[name] = counter.get_total_flops()
    assert flops["fast"] < 0.8 * flops["direct"]  # the blocks really took the Winograd path
    outputs = {name: net(x.double() if name == "exact" else x)
               for name, net in (("direct", direct), ("fast", fast), ("exact", exact))}
    for out in outputs.values():
        out.square().mean().backward()
    # float rounding only: fp32 direct is ~3e-6 off float64 in the output, Winograd ~1.3e-5
    assert (outputs["fast"] - outputs["exact"]).abs().max() < 5e-5
    scale = max(p.grad.abs().max().item() for p in exact.parameters())
    for (name, p_exact), p_direct, p_fast in zip(exact.named_parameters(), direct.parameters(), fast.parameters()):
        err_fast = (p_fast.grad - p_exact.grad).abs().max().item()
        err_direct = (p_direct.grad - p_exact.grad).abs().max().item()
        assert err_fast < 1e-3 * scale, (name, err_fast, err_direct)


def test_the_trainer_builds_winograd_generators_unless_told_not_to():
    import importlib.util

    from conftest import REPO

    from brushwork import cli
    from brushwork.training.cyclegan import build_networks

    spec = importlib.util.spec_from_file_location("train_cyclegan", REPO / "train" / "cyclegan.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for flags, want in (([], True), (["--winograd", "false"], False), (["--no_winograd"], False)):
        nets = build_networks(cli.resolve(script.COMMAND, ["--ngf", "8", "--n_blocks", "1", *flags]))
        blocks = [m for name in ("G_A", "G_B") for m in nets[name].modules() if hasattr(m, "winograd")]
        assert blocks and all(block.winograd is want for block in blocks)


def test_vgg_features_and_their_input_gradient_match_with_winograd():
    import warnings

    from brushwork.models import vgg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = vgg.load_state(random_init=True)
    layers = ["conv3_1", "conv3_4", "conv4_2"]
    direct = vgg.VGGFeatures(layers, state, pooling="avg", winograd=False)
    fast = vgg.VGGFeatures(layers, state, pooling="avg", winograd=True)
    exact = copy.deepcopy(direct).double()
    image = torch.rand(1, 3, 128, 128)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fast(image)
    with torch.no_grad(), FlopCounterMode(display=False) as direct_counter:
        direct(image)
    assert counter.get_total_flops() < 0.8 * direct_counter.get_total_flops()  # conv3_2..3_4 took the fast path
    x = {name: image.clone().double().requires_grad_() if name == "exact" else image.clone().requires_grad_()
         for name in ("fast", "exact")}
    feats = {"fast": fast(x["fast"]), "exact": exact(x["exact"])}
    for layer in layers:
        assert relative_error(feats["fast"][layer], feats["exact"][layer]) < 1e-4, layer
    sum(f.square().mean() for f in feats["fast"].values()).backward()
    sum(f.square().mean() for f in feats["exact"].values()).backward()
    assert relative_error(x["fast"].grad, x["exact"].grad) < 1e-3
    assert all(p.grad is None for p in fast.parameters())  # frozen weights stay frozen


def test_transformed_weights_are_reused_until_the_weight_changes():
    from brushwork.models import winograd

    w = torch.randn(4, 4, 3, 3)
    first = winograd.transformed_weight(w)
    assert winograd.transformed_weight(w) is first  # reused while unchanged
    with torch.no_grad():
        w.mul_(2)  # an optimizer step, a load_state_dict: in place, the version moves
    again = winograd.transformed_weight(w)
    assert again is not first and torch.allclose(again, 2 * first)
    x = torch.randn(1, 4, 10, 10)
    assert torch.allclose(winograd.conv3x3(x, w), torch.nn.functional.conv2d(x, w), atol=1e-4)
