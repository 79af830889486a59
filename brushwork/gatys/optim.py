"""Per-sample optimisers over a batch: B independent problems, one batched forward/backward per round.

``batched_lbfgs`` runs, for every sample, exactly the algorithm of ``torch.optim.LBFGS.step`` (same
two-loop recursion, history, initial step, strong-Wolfe line search and stopping tests; the code
below follows torch's line by line). Each sample's L-BFGS is a generator that *asks* for the loss
and gradient at a point; the driver gathers the pending points of all live samples, evaluates them
in one batched call, and answers each. Samples therefore keep their own history, step sizes, line
searches and convergence, and the result equals running ``torch.optim.LBFGS`` on each pair alone —
unlike one L-BFGS over the stacked batch, whose shared history and line search couple the pairs.

``batched_adam``: Adam is elementwise, so Adam on the stacked tensor with the summed loss is already
per-sample Adam; it is provided with the same interface.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import torch

Objective = Callable[[torch.Tensor, list[int]], torch.Tensor]  # (points, sample indices) -> per-sample losses


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square.sqrt()
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _evaluate_at(x: torch.Tensor, t, d: torch.Tensor):
    """Ask the driver for (loss, grad) at x + t·d (torch's _directional_evaluate)."""
    point = x.clone()
    point.add_(d, alpha=t)
    return (yield point)


def _strong_wolfe(x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    d_norm = d.abs().max()
    g = g.clone(memory_format=torch.contiguous_format)
    f_new, g_new = yield from _evaluate_at(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev = tmp, f_new
        g_prev = g_new.clone(memory_format=torch.contiguous_format)
        gtd_prev = gtd_new
        f_new, g_new = yield from _evaluate_at(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = yield from _evaluate_at(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[low_pos] = gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


def lbfgs_program(x: torch.Tensor, lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
                  tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                  line_search_fn: str | None = None) -> Generator[torch.Tensor, tuple, torch.Tensor]:
    """One sample's ``torch.optim.LBFGS(...).step(closure)`` on the flat tensor ``x`` (updated in place).

    Yields each point to evaluate and receives (loss: float, flat grad); returns x.
    """
    max_eval = max_eval if max_eval is not None else max_iter * 5 // 4
    loss, flat_grad = yield x.clone()
    current_evals = 1
    if flat_grad.abs().max() <= tolerance_grad:
        return x
    n_iter = 0
    d = t = old_dirs = old_stps = ro = H_diag = prev_flat_grad = None
    al = [None] * history_size
    while n_iter < max_iter:
        n_iter += 1
        if n_iter == 1:
            d = flat_grad.neg()
            old_dirs, old_stps, ro = [], [], []
            H_diag = 1
        else:
            y = flat_grad.sub(prev_flat_grad)
            s = d.mul(t)
            ys = y.dot(s)
            if ys > 1e-10:
                if len(old_dirs) == history_size:
                    old_dirs.pop(0)
                    old_stps.pop(0)
                    ro.pop(0)
                old_dirs.append(y)
                old_stps.append(s)
                ro.append(1.0 / ys)
                H_diag = ys / y.dot(y)
            num_old = len(old_dirs)
            q = flat_grad.neg()
            for i in range(num_old - 1, -1, -1):
                al[i] = old_stps[i].dot(q) * ro[i]
                q.add_(old_dirs[i], alpha=-al[i])
            d = r = torch.mul(q, H_diag)
            for i in range(num_old):
                be_i = old_dirs[i].dot(r) * ro[i]
                r.add_(old_stps[i], alpha=al[i] - be_i)
        if prev_flat_grad is None:
            prev_flat_grad = flat_grad.clone(memory_format=torch.contiguous_format)
        else:
            prev_flat_grad.copy_(flat_grad)
        prev_loss = loss
        t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr if n_iter == 1 else lr
        gtd = flat_grad.dot(d)
        if gtd > -tolerance_change:
            break
        ls_func_evals = 0
        if line_search_fn is not None:
            if line_search_fn != "strong_wolfe":
                raise ValueError("only 'strong_wolfe' is supported")
            x_init = x.clone(memory_format=torch.contiguous_format)
            loss, flat_grad, t, ls_func_evals = yield from _strong_wolfe(
                x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals)
            x.add_(d, alpha=t)
            opt_cond = flat_grad.abs().max() <= tolerance_grad
        else:
            x.add_(d, alpha=t)
            if n_iter != max_iter:
                loss, flat_grad = yield x.clone()
                opt_cond = flat_grad.abs().max() <= tolerance_grad
                ls_func_evals = 1
        current_evals += ls_func_evals
        if n_iter == max_iter or current_evals >= max_eval:
            break
        if opt_cond:
            break
        if d.mul(t).abs().max() <= tolerance_change:
            break
        if abs(loss - prev_loss) < tolerance_change:
            break
    return x


CPU_CHUNK_PIXELS = 4 * 128 * 128  # past this many pixels per pass, CPU caches thrash in VGG's first layers


def default_chunk(points: torch.Tensor) -> int:
    """Samples per forward/backward: everything on a GPU; on a CPU, as many as stay cache-friendly."""
    if points.is_cuda:
        return len(points)
    return max(1, CPU_CHUNK_PIXELS // (points.shape[-1] * points.shape[-2]))


def evaluate(objective: Objective, points: torch.Tensor, indices: list[int],
             chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample losses and gradients at ``points``: batched forward/backward passes of ``chunk`` samples.

    Samples are independent, so how the batch is cut changes nothing but speed and memory.
    """
    chunk = chunk or default_chunk(points)
    losses, grads = [], []
    for start in range(0, len(indices), chunk):
        with torch.enable_grad():
            x = points[start:start + chunk].detach().clone().requires_grad_(True)
            loss = objective(x, indices[start:start + chunk])
            (grad,) = torch.autograd.grad(loss.sum(), x)
        losses.append(loss.detach())
        grads.append(grad)
    return torch.cat(losses), torch.cat(grads)


def batched_lbfgs(x0: torch.Tensor, objective: Objective, on_eval: Callable | None = None,
                  chunk: int | None = None, **lbfgs_options) -> tuple[torch.Tensor, list[list[float]]]:
    """Optimise each of the B samples in ``x0`` on its own; returns (results, per-sample loss history).

    The history holds the loss at every evaluation, as a closure passed to torch's LBFGS records it.
    """
    shape = x0.shape[1:]
    programs = [lbfgs_program(x0[b].detach().flatten().clone(), **lbfgs_options) for b in range(len(x0))]
    pending = {b: next(p) for b, p in enumerate(programs)}
    results: dict[int, torch.Tensor] = {}
    history: list[list[float]] = [[] for _ in programs]
    while pending:
        indices = sorted(pending)
        losses, grads = evaluate(objective, torch.stack([pending[b] for b in indices]).view(len(indices), *shape),
                                 indices, chunk)
        if on_eval is not None:
            on_eval(indices, losses, torch.stack([pending[b] for b in indices]).view(len(indices), *shape))
        answered = {}
        for j, b in enumerate(indices):
            history[b].append(float(losses[j]))
            try:
                answered[b] = programs[b].send((float(losses[j]), grads[j].flatten().clone()))
            except StopIteration as done:
                results[b] = done.value
        pending = answered
    return torch.stack([results[b].view(shape) for b in range(len(programs))]), history


def batched_adam(x0: torch.Tensor, objective: Objective, iterations: int, lr: float = 0.02,
                 betas: tuple[float, float] = (0.9, 0.999),
                 on_eval: Callable | None = None) -> tuple[torch.Tensor, list[list[float]]]:
    """Adam on every sample at once (elementwise, hence per-sample); returns (results, loss history)."""
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr, betas=betas)
    indices = list(range(len(x0)))
    history: list[list[float]] = [[] for _ in indices]
    for _ in range(iterations):
        opt.zero_grad(set_to_none=True)
        with torch.enable_grad():
            losses = objective(x, indices)
            losses.sum().backward()
        for b, v in enumerate(losses.detach().tolist()):
            history[b].append(v)
        if on_eval is not None:
            on_eval(indices, losses.detach(), x.detach())
        opt.step()
    return x.detach(), history
