"""AdaIN (Huang & Belongie 2017): the operation, the published decoder, α, style interpolation, any size."""

import warnings

import pytest
import torch

from brushwork.models import adain, vgg


@pytest.fixture(scope="module")
def net():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = vgg.load_state(random_init=True, seed=0)
    torch.manual_seed(0)
    return adain.AdaINNet(vgg.VGGFeatures(list(adain.STYLE_LAYERS), state)).eval()


def test_adain_gives_the_content_the_styles_channel_statistics():
    torch.manual_seed(0)
    x, y = torch.randn(2, 8, 6, 5) * 3 + 1, torch.randn(2, 8, 7, 9) * 0.5 - 2
    out = adain.adain(x, y)
    mean_out, std_out = adain.mean_std(out, eps=0)
    mean_y, std_y = adain.mean_std(y, eps=0)
    assert torch.allclose(mean_out, mean_y, atol=1e-5) and torch.allclose(std_out, std_y, rtol=1e-3)


def test_the_decoder_is_the_papers_mirror_of_the_encoder():
    dec = adain.decoder()
    convs = [m for m in dec if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (512, 256), (256, 256), (256, 256), (256, 256), (256, 128), (128, 128), (128, 64), (64, 64), (64, 3)]
    assert all(c.kernel_size == (3, 3) and c.padding == (0, 0) for c in convs)  # padding by ReflectionPad2d
    assert sum(isinstance(m, torch.nn.Upsample) and m.mode == "nearest" for m in dec) == 3
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) for m in dec)
    assert sum(p.numel() for p in dec.parameters()) == 3_505_219


def test_alpha_zero_is_the_decoder_of_the_contents_own_features_and_weights_pick_a_style(net):
    torch.manual_seed(1)
    content, s1, s2 = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 24, 24), torch.rand(1, 3, 40, 32)
    with torch.no_grad():
        full, fc = net.target(content, [s1])
        assert torch.equal(net.target(content, [s1], alpha=0.0)[0], fc)  # eq. 13: α = 0 is the content's features
        assert torch.allclose(net.target(content, [s1], alpha=0.25)[0], 0.25 * full + 0.75 * fc, atol=1e-6)
        own = net.decoder(net.encoder(content)[adain.CONTENT_LAYER])
        assert torch.allclose(net.stylize(content, [s1], alpha=0.0), own.clamp(0, 1), atol=1e-6)
        assert torch.allclose(net.stylize(content, [s1, s2], [1.0, 0.0]), net.stylize(content, [s1]), atol=1e-6)
        t1, t2 = net.target(content, [s1])[0], net.target(content, [s2])[0]
        assert (t1 - t2).abs().max() > 1e-2 * t1.abs().max()  # two styles, two targets
        assert not torch.equal(net(content, s1), net(content, s2))  # and two outputs


def test_any_content_size_comes_back_at_its_size(net):
    out = net.stylize(torch.rand(1, 3, 37, 29), [torch.rand(1, 3, 32, 32)])
    assert out.shape == (1, 3, 37, 29) and out.min() >= 0 and out.max() <= 1


def test_the_losses_are_the_papers_and_only_the_decoder_learns(net):
    torch.manual_seed(2)
    content, style = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    losses = net.losses(content, style, style_weight=10.0)
    assert set(losses) == {"content", "style"} and all(float(v) > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is None for p in net.encoder.parameters())
    assert all(p.grad is not None for p in net.decoder.parameters())
