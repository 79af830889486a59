"""Gatys losses against the float64 reference, and batched per-sample L-BFGS = each pair alone."""

import warnings

import pytest
import torch
from conftest import SHARED

from brushwork.gatys import objective as gatys
from brushwork.gatys import optim
from brushwork.models import vgg

FIXTURE = SHARED / "fixtures" / "gatys_case.pth"


@pytest.fixture(scope="module")
def vgg_state():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: v.double() for k, v in vgg.load_state(random_init=True, seed=0).items()}


def make_targets(V, contents, styles, content_layers, style_layers, norm, alpha, beta, layer_w=None):
    B = len(contents)
    ct = gatys.content_targets(V, torch.cat(contents), content_layers)
    per_pair = [gatys.style_targets(V, [s], [1.0], style_layers, norm) for s in styles]
    st = {l: torch.stack([p[l] for p in per_pair]) for l in style_layers}
    lw = layer_w if layer_w is not None else torch.full((B, len(style_layers)), 1 / len(style_layers), dtype=torch.float64)
    return gatys.Targets(ct, st, torch.ones(B, len(content_layers), dtype=torch.float64), lw,
                         torch.as_tensor(alpha, dtype=torch.float64), torch.as_tensor(beta, dtype=torch.float64),
                         torch.zeros(B, dtype=torch.float64))


@pytest.mark.skipif(not FIXTURE.exists(), reason="../shared/fixtures not present")
def test_reference_case_reproduced(vgg_state):
    fx = torch.load(FIXTURE, weights_only=True)
    for name, index in fx["layer_index"].items():
        assert vgg.layer_index(name) == index
        W = vgg_state[f"{index}.weight"]
        fingerprint = torch.stack([W.sum(), (W * W).sum(), W.flatten()[0], W.flatten()[-1]])
        assert torch.allclose(fingerprint, fx["vgg_fingerprint"][name], rtol=1e-12, atol=0)
    cl, sl = fx["content_layers"], fx["style_layers"]
    V = vgg.VGGFeatures(cl + sl, vgg_state, pooling="max").double()
    T = make_targets(V, [fx["content"]], [fx["style"]], cl, sl, "mean", [1.0], [1e3],
                     layer_w=torch.tensor([[fx["style_layer_weights"][l] for l in sl]], dtype=torch.float64))
    obj = gatys.GatysObjective(V, T, cl, sl, "mean")
    x = fx["x"].clone().requires_grad_(True)
    total = obj(x, [0])
    parts = obj.parts(x, [0])
    rel = lambda a, b: abs(float(a.detach()) - float(b)) / abs(float(b))
    assert rel(parts["content"][0], fx["content_loss"]) <= 1e-6
    assert rel(parts["style"][0], fx["style_loss"]) <= 1e-6
    assert rel(total[0], fx["total_loss"]) <= 1e-6
    feats = V(fx["x"])
    for l in sl:
        per_layer = gatys.style_layer_loss(feats[l], T.style[l][[0]], "mean")[0]
        assert rel(per_layer, fx["style_loss_per_layer"][l]) <= 1e-6, l
    grads = {name: torch.autograd.grad(value, x, retain_graph=True)[0]
             for name, value in (("grad", total[0]), ("grad_content", parts["content"][0]),
                                 ("grad_style", parts["style"][0]))}
    for name, g in grads.items():
        assert (g - fx[name]).norm() <= 1e-6 * fx[name].norm(), name


def test_paper_normalisation_formulas():
    F = torch.rand(2, 4, 3, 5, dtype=torch.float64)
    P = torch.rand(2, 4, 3, 5, dtype=torch.float64)
    assert torch.allclose(gatys.content_loss(F, P, "paper"), 0.5 * ((F - P) ** 2).sum(dim=(1, 2, 3)))
    A = torch.rand(2, 4, 4, dtype=torch.float64)
    G = torch.einsum("nchw,ndhw->ncd", F, F)
    expected = ((G - A) ** 2).sum(dim=(1, 2)) / (4 * 4 ** 2 * 15 ** 2)
    assert torch.allclose(gatys.style_layer_loss(F, A, "paper"), expected)


def small_problem(vgg_state, B=4, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    contents = [torch.rand(1, 3, size, size, generator=g, dtype=torch.float64) for _ in range(B)]
    styles = [torch.rand(1, 3, size, size, generator=g, dtype=torch.float64) for _ in range(B)]
    cl, sl = ["conv2_1"], ["conv1_1", "relu1_2", "conv2_1"]
    V = vgg.VGGFeatures(cl + sl, vgg_state, pooling="avg").double()
    return V, contents, styles, cl, sl


def run_alone(V, T, cl, sl, x0, b, options):
    """Pair b optimised on its own with torch.optim.LBFGS; returns (image, loss at every closure call)."""
    obj = gatys.GatysObjective(V, T, cl, sl, "paper")
    x = x0[[b]].clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, **options)
    curve = []

    def closure():
        opt.zero_grad()
        loss = obj(x, [b]).sum()
        loss.backward()
        curve.append(float(loss))
        return loss

    opt.step(closure)
    return x.detach()[0], curve


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_batched_lbfgs_equals_each_pair_alone(vgg_state, line_search):
    V, contents, styles, cl, sl = small_problem(vgg_state)
    alpha = [1.0, 1.0, 5.0, 0.2]   # different per-pair weights too
    beta = [1e3, 1e2, 1e3, 1e4]
    layer_w = torch.tensor([[1 / 3] * 3, [0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1 / 3] * 3], dtype=torch.float64)
    T = make_targets(V, contents, styles, cl, sl, "paper", alpha, beta, layer_w)
    x0 = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(5), dtype=torch.float64)  # noise init
    options = dict(max_iter=30, history_size=10, line_search_fn=line_search)
    batched, curves = optim.batched_lbfgs(x0, gatys.GatysObjective(V, T, cl, sl, "paper"), **options)
    for b in range(4):
        alone, curve = run_alone(V, T, cl, sl, x0, b, options)
        assert len(curves[b]) == len(curve)
        assert torch.allclose(torch.tensor(curves[b]), torch.tensor(curve), rtol=1e-6, atol=0), b
        assert (batched[b] - alone).norm() <= 1e-6 * alone.norm(), b


def test_one_lbfgs_over_the_stacked_batch_differs(vgg_state):
    """The naive way (one L-BFGS on the stacked tensor) couples pairs, so the test above can fail."""
    V, contents, styles, cl, sl = small_problem(vgg_state)
    T = make_targets(V, contents, styles, cl, sl, "paper", [1.0] * 4, [1e3, 1e2, 1e3, 1e4])
    obj = gatys.GatysObjective(V, T, cl, sl, "paper")
    x0 = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    options = dict(max_iter=30, history_size=10, line_search_fn="strong_wolfe")
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, **options)

    def closure():
        opt.zero_grad()
        loss = obj(x, [0, 1, 2, 3]).sum()
        loss.backward()
        return loss

    opt.step(closure)
    alone, _ = run_alone(V, T, cl, sl, x0, 0, options)
    diff = (x.detach()[0] - alone).norm() / alone.norm()
    assert diff > 1e-3, diff  # far beyond the 1e-6 the batched optimiser must meet


def test_batched_adam_equals_each_pair_alone(vgg_state):
    V, contents, styles, cl, sl = small_problem(vgg_state, B=3)
    T = make_targets(V, contents, styles, cl, sl, "paper", [1.0, 2.0, 0.5], [1e3, 1e2, 1e4])
    obj = gatys.GatysObjective(V, T, cl, sl, "paper")
    x0 = torch.cat(contents)
    batched, curves = optim.batched_adam(x0, obj, iterations=15, lr=0.01)
    for b in range(3):
        alone, curve = optim.batched_adam(x0[[b]], lambda x, idx: obj(x, [b]), iterations=15, lr=0.01)
        assert torch.allclose(batched[b], alone[0], rtol=1e-9, atol=1e-12)
        assert torch.allclose(torch.tensor(curves[b]), torch.tensor(curve[0]), rtol=1e-9)


def test_layer_names_both_ways():
    assert vgg.layer_index("conv_5") == vgg.layer_index("conv3_1") == 10
    assert vgg.layer_index("conv4_2") == vgg.layer_index("conv_10") == 21
    assert vgg.layer_index("relu_1") == vgg.layer_index("relu1_1") == 1
    with pytest.raises(Exception, match="unknown VGG-19 layer 'conv9_9'"):
        vgg.layer_index("conv9_9")


def test_missing_weights_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(Exception, match=r"no vgg19 weights at .*vgg19-dcbb9e9d.pth; fetch them with python -m "
                                        r"brushwork.pretrained vgg19 \(or download https://download"):
        vgg.load_state()
    with pytest.raises(Exception, match=r"--vgg_weights .*nope.pth does not exist"):
        vgg.load_state(tmp_path / "nope.pth")
    (tmp_path / "bad.pth").write_bytes(b"junk")
    with pytest.raises(Exception, match=r"bad.pth: cannot read VGG-19 weights"):
        vgg.load_state(tmp_path / "bad.pth")


def test_weights_file_from_torchvision_layout(tmp_path, vgg_state):
    full = {f"features.{k}": v.float() for k, v in vgg_state.items()}
    full["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(full, tmp_path / "vgg19.pth")
    loaded = vgg.load_state(tmp_path / "vgg19.pth")
    assert set(loaded) == set(vgg_state) and torch.equal(loaded["0.weight"], vgg_state["0.weight"].float())


def test_normalized_gradients_pull_each_layer_with_its_weight_alone(vgg_state):
    torch.manual_seed(0)
    cl, sl = ["conv4_2"], ["conv1_1", "conv3_1"]
    V = vgg.VGGFeatures(cl + sl, vgg_state).double()
    contents, styles = [torch.rand(1, 3, 32, 32, dtype=torch.float64) for _ in range(2)], \
        [torch.rand(1, 3, 32, 32, dtype=torch.float64) for _ in range(2)]
    T = make_targets(V, contents, styles, cl, sl, "mean", [1.0, 5.0], [1e3, 2e2])
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    plain = gatys.GatysObjective(V, T, cl, sl, "mean")
    normed = gatys.GatysObjective(V, T, cl, sl, "mean", normalize_gradients=True)
    assert torch.equal(plain(x, [0, 1]), normed(x, [0, 1]))  # the loss is the same; only its gradient changes
    # by hand: each layer's unweighted gradient over its L1 norm, times the layer's weight, through the net
    feats = V(x)
    expected = torch.zeros_like(x)
    uses = [(feats[l], gatys.content_loss(feats[l], T.content[l], "mean"), T.content_weight) for l in cl]
    uses += [(feats[l], gatys.style_layer_loss(feats[l], T.style[l], "mean"),
              T.style_weight * T.style_layer_weights[:, i]) for i, l in enumerate(sl)]
    for f, loss, weight in uses:
        g = torch.autograd.grad(loss.sum(), f, retain_graph=True)[0]
        g = g / (g.abs().flatten(1).sum(1).reshape(-1, 1, 1, 1) + 1e-8) * weight.reshape(-1, 1, 1, 1)
        expected += torch.autograd.grad(f, x, g, retain_graph=True)[0]
    got = torch.autograd.grad(normed(x, [0, 1]).sum(), x)[0]
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12)
    raw = torch.autograd.grad(plain(x, [0, 1]).sum(), x)[0]
    assert not torch.allclose(got / got.norm(), raw / raw.norm(), atol=1e-3)  # another direction, not a rescale
