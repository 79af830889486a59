"""3x3 stride-1 convolution as Winograd F(4x4, 3x3), forward and backward, for CPUs.

The ResNet blocks hold ~88 % of a CycleGAN generator's FLOPs, all in 3x3 stride-1 convolutions.
Winograd's minimal filtering (Lavin & Gray, 2016) computes each 4x4 output tile from a 6x6 input
tile with 36 multiplies per channel pair instead of 144, so the heavy part becomes 36 batched
matrix products with a quarter of the direct convolution's multiply-adds:

    y = Aᵀ [ (G w Gᵀ) ⊙ (Bᵀ d B) ] A        per tile d, summed over input channels

The backward pass is the exact adjoint of that formula (three matrix products of the same size),
so weight and input gradients get the same 4x saving. Same maths as ``F.conv2d`` up to float
rounding: in fp32 the output differs from a float64 reference by up to ~1e-5 relative (direct conv:
~1e-6), the gradients by up to ~2e-4 of the largest entry (tests/test_winograd.py bounds both). Used on CPU in
fp32 only: on GPUs cuDNN chooses its own algorithm (Winograd included) and low precision would lose too much in
the transforms.
"""

from __future__ import annotations

import functools
import weakref

import torch
import torch.nn.functional as F
from torch import nn

TILE = 4  # output pixels per tile side
SPAN = TILE + 2  # input pixels per tile side (3x3 kernel)


@functools.cache
def _transforms() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Kronecker forms of Lavin's F(4x4, 3x3) matrices (points 0, ±1, ±2), built in float64."""
    Bt = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
    G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
    At = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                      dtype=torch.float64)
    # kron(P, P) applied to a flattened tile = P @ tile @ Pᵀ
    return torch.kron(Bt, Bt).float(), torch.kron(G, G).float(), torch.kron(At, At).float()


# Transformed weights G w Gᵀ of frozen weight tensors (VGG's, for a whole Gatys run or training run),
# reused while the weight is unchanged. The version counter moves at every in-place update
# (load_state_dict), and the storage changes if the weight is replaced, either of which invalidates
# the entry; entries go with their weight tensor.
_TRANSFORMED: dict[int, tuple[weakref.ref, tuple, torch.Tensor]] = {}  # id(weight) -> (weight, state, U)


def _state(weight: torch.Tensor) -> tuple:
    """What changes when the weight's values may have: its version counter and its storage."""
    return weight._version, weight.data_ptr(), weight.dtype, tuple(weight.shape)


_SCRATCH: dict[tuple, torch.Tensor] = {}


def _scratch(numel: int, like: torch.Tensor) -> torch.Tensor:
    """One reused buffer per size for a trained weight's transform, which lives only inside one conv's
    forward or backward (convs run one at a time): a fresh 9 MB tensor per call costs more in page
    faults than the transform itself (~1 ms)."""
    key = (numel, like.dtype, like.device)
    if key not in _SCRATCH:
        _SCRATCH[key] = torch.empty(numel, dtype=like.dtype, device=like.device)
    return _SCRATCH[key].view(36, numel // 36)


# A trained weight's transform is cached (for the 2-3 passes a generator makes per step) only on small
# maps, where the transform costs a noticeable share of the conv's products (64 tiles: ~15 %) and the
# step's activations are small; on large maps it is transformed per call, since caching the 36
# generator convs held ~340 MB at 256 px (above the original code's peak, whose direct conv keeps none).
CACHE_BELOW_TILES = 128


def caches(weight: torch.Tensor, tiles: int) -> bool:
    """Whether ``weight``'s transform is cached at this many tiles: always for frozen weights (VGG)."""
    return not weight.requires_grad or tiles < CACHE_BELOW_TILES


def transformed_weight(weight: torch.Tensor, tiles: int = 0) -> torch.Tensor:
    """(36, Co, C) = G w Gᵀ for every channel pair; cached until ``weight`` changes where ``caches`` says so."""
    if not caches(weight, tiles):
        _, KG, _ = _transforms()
        Co, C = weight.shape[:2]
        flat = weight.detach().permute(2, 3, 0, 1).reshape(9, Co * C)
        with torch.no_grad():
            if torch.compiler.is_compiling():
                return torch.mm(KG, flat).view(36, Co, C)
            return torch.mm(KG, flat, out=_scratch(36 * Co * C, weight)).view(36, Co, C)
    key = id(weight)
    cached = _TRANSFORMED.get(key)
    if cached is not None and cached[0]() is weight and cached[1] == _state(weight):
        return cached[2]
    _, KG, _ = _transforms()
    Co, C = weight.shape[:2]
    with torch.no_grad():
        U = torch.mm(KG, weight.detach().permute(2, 3, 0, 1).reshape(9, Co * C)).view(36, Co, C)
    if not torch.compiler.is_compiling():
        _TRANSFORMED[key] = (weakref.ref(weight, lambda _, key=key: _TRANSFORMED.pop(key, None)), _state(weight), U)
    return U


def supported(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Where the Winograd path is used at all: CPU, fp32, no autocast, 3x3 kernels (speed: ``pays_off``)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.dim() == 4 and tuple(weight.shape[2:]) == (3, 3) and not torch.is_autocast_enabled("cpu"))


# Below these sizes the transforms and the 4x larger transformed weights cost more than the
# products save (CPU box, fp32, forward + backward; see BENCHMARKS.md): 256 channels at 32x32
# is 1.5x faster, 128 channels is a wash and 64 or fewer is up to 2x slower.
MIN_CHANNELS = 256
MIN_TILES = 64


def pays_off(x: torch.Tensor, weight: torch.Tensor, padding: int = 0) -> bool:
    """Whether Winograd is expected to beat direct conv2d for this input (before ``padding``) on a CPU."""
    out_h, out_w = x.shape[2] + 2 * padding - 2, x.shape[3] + 2 * padding - 2
    tiles = x.shape[0] * -(-out_h // TILE) * -(-out_w // TILE)
    return supported(x, weight) and min(weight.shape[0], weight.shape[1]) >= MIN_CHANNELS and tiles >= MIN_TILES


def conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv2d(x, weight, bias)`` (stride 1, no padding, 3x3) via Winograd where supported."""
    if not supported(x, weight):
        return F.conv2d(x, weight, bias)
    H, W = x.shape[2] - 2, x.shape[3] - 2
    if H < 1 or W < 1:
        return F.conv2d(x, weight, bias)  # lets conv2d raise its usual error
    extra_h, extra_w = -H % TILE, -W % TILE
    if extra_h or extra_w:  # zero-pad to whole tiles; the extra outputs are cropped off
        x = F.pad(x, (0, extra_w, 0, extra_h))
    y = _WinogradConv.apply(x.contiguous(), weight, bias)
    return y[:, :, :H, :W] if extra_h or extra_w else y


def apply_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``, run as Winograd where that pays off; any conv it does not cover runs as itself.

    Covered: 3x3, stride 1, no dilation, one group, zero padding of 0 or 1 (ResNet blocks, VGG).
    """
    pad = conv.padding[0] if conv.padding in ((0, 0), (1, 1)) else None
    plain = (pad is not None and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
             and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros")
    if not (plain and pays_off(x, conv.weight, padding=pad)):
        return conv(x)
    return conv3x3(F.pad(x, (pad,) * 4) if pad else x, conv.weight, conv.bias)


def _tiles_to_rows(x: torch.Tensor, Th: int, Tw: int) -> torch.Tensor:
    """[N, C, Hp, Wp] → [36, C·N·Th·Tw]: every overlapping 6x6 tile as a column."""
    N, C = x.shape[:2]
    tiles = x.unfold(2, SPAN, TILE).unfold(3, SPAN, TILE)  # N, C, Th, Tw, 6, 6 (a view)
    return tiles.permute(4, 5, 1, 0, 2, 3).reshape(SPAN * SPAN, C * N * Th * Tw)


class _WinogradConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        KB, KG, KA = _transforms()
        N, C, Hp, Wp = x.shape
        Co = weight.shape[0]
        Th, Tw = (Hp - 2) // TILE, (Wp - 2) // TILE
        T = N * Th * Tw
        V = torch.mm(KB, _tiles_to_rows(x, Th, Tw)).view(36, C, T)  # Bᵀ d B
        U = transformed_weight(weight, T)  # G w Gᵀ
        M = torch.bmm(U, V)  # 36 products [Co, C] @ [C, tiles]: the 4x-cheaper core
        Y = torch.mm(KA, M.view(36, Co * T)).view(TILE, TILE, Co, N, Th, Tw)  # Aᵀ M A
        y = Y.permute(3, 2, 4, 0, 5, 1).reshape(N, Co, Th * TILE, Tw * TILE)
        if bias is not None:
            y = y.add_(bias.view(1, -1, 1, 1))
        # the weight gradient needs V, the input gradient needs U: keep only what will be used. V is
        # 36/16 the size of x, so x is kept and V recomputed in backward (one small matrix product):
        # a step holds 6 generator passes of 18 such convs, ~0.5 GB less at 256 px for ~2 % more time
        # Likewise an uncached U is transformed again in backward rather than kept.
        keep_u = ctx.needs_input_grad[0] and caches(weight, T)
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, U if keep_u else None,
                              weight if ctx.needs_input_grad[0] and not keep_u else None)
        del V, M, Y, U
        ctx.dims = (N, C, Hp, Wp, Co, Th, Tw)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_y):
        KB, KG, KA = _transforms()
        x, U, weight = ctx.saved_tensors
        N, C, Hp, Wp, Co, Th, Tw = ctx.dims
        T = N * Th * Tw
        if U is None and weight is not None:
            U = transformed_weight(weight, T)
        g = grad_y.reshape(N, Co, Th, TILE, Tw, TILE).permute(3, 5, 1, 0, 2, 4).reshape(TILE * TILE, Co * T)
        grad_M = torch.mm(KA.t(), g).view(36, Co, T)
        grad_weight = grad_input = grad_bias = None
        if ctx.needs_input_grad[1]:
            V = torch.mm(KB, _tiles_to_rows(x, Th, Tw)).view(36, C, T)
            grad_U = torch.bmm(grad_M, V.transpose(1, 2))
            del V
            grad_weight = torch.mm(KG.t(), grad_U.view(36, Co * C)).view(3, 3, Co, C).permute(2, 3, 0, 1)
            grad_weight = grad_weight.contiguous()
        if ctx.needs_input_grad[0]:
            grad_V = torch.bmm(U.transpose(1, 2), grad_M)
            grad_tiles = torch.mm(KB.t(), grad_V.view(36, C * T)).view(SPAN, SPAN, C, N, Th, Tw)
            grad_input = _overlap_add(grad_tiles.permute(0, 1, 3, 2, 4, 5), Hp, Wp)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_y.sum((0, 2, 3))
        return grad_input, grad_weight, grad_bias


def _overlap_add(tiles: torch.Tensor, Hp: int, Wp: int) -> torch.Tensor:
    """Sum [6, 6, N, C, Th, Tw] tile gradients back into [N, C, Hp, Wp] (tiles overlap by 2 pixels)."""
    _, _, N, C, Th, Tw = tiles.shape
    out = tiles.new_zeros(N, C, Hp, Wp)
    core = out[:, :, :TILE * Th, :TILE * Tw].unflatten(3, (Tw, TILE)).unflatten(2, (Th, TILE))
    core.copy_(tiles[:TILE, :TILE].permute(2, 3, 4, 0, 5, 1))  # the disjoint 4x4 parts in one pass
    for i in range(SPAN):
        for j in range(SPAN):
            if i >= TILE or j >= TILE:
                out[:, :, i:i + TILE * Th:TILE, j:j + TILE * Tw:TILE] += tiles[i, j]
    return out
