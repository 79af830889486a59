"""Export a network to ONNX and prove the file: onnxruntime must give torch's output on every check input."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from brushwork.core.errors import BrushworkError
from brushwork.core.fileio import atomic_open


def export_checked(model: torch.nn.Module, path: str | Path, checks: Sequence[tuple[torch.Tensor, ...]],
                   input_names: list[str], dynamic_axes: dict[str, dict[int, str]],
                   tolerance: float = 1e-4) -> float:
    """Trace ``model`` on ``checks[0]`` into ``path`` (output ``stylized``), run it in onnxruntime on every check
    and return the largest difference from torch's output. A file that differs by more than ``tolerance`` (or
    whose check could not run) is removed: an unchecked export is never left behind."""
    try:
        import onnxruntime
    except ImportError:
        raise BrushworkError("--onnx needs onnx and onnxruntime: pip install -e '.[onnx]' in the brushwork "
                             "checkout") from None
    with warnings.catch_warnings(), atomic_open(path, "wb") as f:
        warnings.simplefilter("ignore")  # the exporter's notes on tracing and constant folding
        torch.onnx.export(model, checks[0], f, input_names=input_names,  # type: ignore[arg-type]
                          output_names=["stylized"], dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        worst = 0.0
        for inputs in checks:
            with torch.no_grad():
                expected = model(*inputs).numpy()
            got = session.run(None, {name: x.numpy() for name, x in zip(input_names, inputs)})[0]
            worst = max(worst, float(abs(got - expected).max()) if got.shape == expected.shape else float("inf"))
    except Exception:
        Path(path).unlink(missing_ok=True)
        raise
    if worst > tolerance:
        Path(path).unlink(missing_ok=True)
        raise BrushworkError(f"{path}: onnxruntime differs from torch by {worst:.2e} (more than {tolerance:g}); the "
                             "export is not usable")
    return worst
