"""What the settings do, measured inside the step, not read back from config.toml: the precision of the
activations, the same-seed determinism of fp32, and compilation (from the launcher's dynamo backend or from
--compile). Each case runs the real set-up path (``trainer.launch`` with accelerate's environment, then the
trainer) in a fresh process: accelerate's state is one per process."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, synth_shards

PROBE = r"""
import json, sys
import torch
from brushwork.training import trainer as T
from brushwork.training.cyclegan import CycleGANTrainer
from brushwork.schemas.train import CycleGANConfig

data, run_dir, flags = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cfg = CycleGANConfig(data=data, run_dir=run_dir, ngf=8, ndf=8, n_blocks=2, load_size=36, crop_size=32, **flags)
accelerator, cfg = T.launch(cfg, domains=("A", "B"))
model = CycleGANTrainer(cfg, accelerator)
dtypes = []
model.plain["G_A"].model[1].register_forward_hook(lambda m, i, o: dtypes.append(str(o.dtype)))  # the first conv
gen = torch.Generator().manual_seed(0)
batch = {d: (torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1) for d in "AB"}
losses = [{k: float(v) for k, v in model.step(batch)[0].items()} for _ in range(2)]
from torch._dynamo.eval_frame import OptimizedModule
from torch._dynamo.utils import counters
print(json.dumps({"precision": accelerator.mixed_precision, "cfg_precision": cfg.mixed_precision,
                  "compile": cfg.compile, "dtypes": sorted(set(dtypes)), "losses": losses,
                  "compiled_nets": sorted(n for n, m in model.nets.items() if isinstance(m, OptimizedModule)),
                  "graphs": counters["stats"]["unique_graphs"]}))
"""


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return synth_shards(tmp_path_factory.mktemp("effects"), n_train=4, per_shard=4)


def probe(shards, tmp_path, name, env=(), **flags):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(shards), str(tmp_path / name), json.dumps(flags)],
                          capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**environment, "OMP_NUM_THREADS": "1", **dict(env)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_launchers_bf16_reaches_the_activations_and_fp32_is_bit_identical(shards, tmp_path):
    bf16 = probe(shards, tmp_path, "bf16", env={"ACCELERATE_MIXED_PRECISION": "bf16"})  # as accelerate launch sets
    assert bf16["precision"] == "bf16" and bf16["dtypes"] == ["torch.bfloat16"]  # inside the step, not a record
    fp32 = probe(shards, tmp_path, "fp32")
    again = probe(shards, tmp_path, "fp32_again")
    assert fp32["precision"] == "no" and fp32["dtypes"] == ["torch.float32"]
    assert fp32["losses"] == again["losses"]  # same seed, fp32: bit for bit
    assert bf16["losses"] != fp32["losses"]  # bf16 really computed in another precision
    flag_wins = probe(shards, tmp_path, "flag", env={"ACCELERATE_MIXED_PRECISION": "bf16"}, mixed_precision="no")
    assert flag_wins["dtypes"] == ["torch.float32"] and flag_wins["losses"] == fp32["losses"]


@pytest.mark.slow
def test_the_launchers_dynamo_backend_and_compile_flag_compile_the_networks(shards, tmp_path):
    launched = probe(shards, tmp_path, "dynamo", env={"ACCELERATE_DYNAMO_BACKEND": "eager"})
    assert launched["compile"] and launched["compiled_nets"] == ["D_A", "D_B", "G_A", "G_B"]
    assert launched["graphs"] > 0  # dynamo traced graphs during the step
    flagged = probe(shards, tmp_path, "flag", compile=True)
    assert flagged["compiled_nets"] == ["D_A", "D_B", "G_A", "G_B"] and flagged["graphs"] > 0
    plain = probe(shards, tmp_path, "plain")
    assert not plain["compile"] and plain["compiled_nets"] == [] and plain["graphs"] == 0


def tiny_trainer(**kwargs):
    from brushwork.schemas.train import CycleGANConfig
    from brushwork.training.cyclegan import CycleGANTrainer

    return CycleGANTrainer(CycleGANConfig(ngf=8, ndf=8, n_blocks=2, pool_size=0), **kwargs)


def test_the_trainers_fused_and_unfused_adam_end_in_the_same_state():
    """The fused branch (one kernel per update: the GPU default) must be the same optimiser as the plain one:
    the same lr and betas, the same states after a few trainer steps."""
    fused, plain = tiny_trainer(fused_adam=True), tiny_trainer(fused_adam=False)
    assert fused.opt_G.defaults["fused"] and not plain.opt_G.defaults.get("fused")
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        batch = {d: torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1 for d in "AB"}
        a, _ = fused.step(batch)
        b, _ = plain.step(batch)
        assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5) for k in a)
    # weights, not the conv biases before an instance norm: the norm cancels them, so their gradient is float
    # noise and Adam turns noise into steps of either sign (in any two runs, fused or not)
    for name in ("G_A", "G_B", "D_A", "D_B"):
        for (k, x), y in zip(fused.plain[name].state_dict().items(), plain.plain[name].state_dict().values()):
            if k.endswith("weight"):
                assert torch.allclose(x, y, rtol=1e-4, atol=1e-5), (name, k)
    for opt_a, opt_b in ((fused.opt_G, plain.opt_G), (fused.opt_D, plain.opt_D)):
        for group_a, group_b in zip(opt_a.param_groups, opt_b.param_groups):
            assert (group_a["lr"], group_a["betas"], group_a["eps"]) == (group_b["lr"], group_b["betas"], group_b["eps"])
            for pa, pb in zip(group_a["params"], group_b["params"]):
                a_state, b_state = opt_a.state[pa], opt_b.state[pb]
                assert torch.equal(a_state["step"], b_state["step"]) and float(a_state["step"]) == 3
                if pa.dim() > 1:  # weights
                    assert torch.allclose(a_state["exp_avg_sq"], b_state["exp_avg_sq"], rtol=1e-3, atol=1e-12)


def test_the_grad_scaler_state_round_trips_through_a_checkpoint_on_cpu(tmp_path):
    """fp16 training needs a GPU (accelerate gives no scaler on a CPU), but the scaler's save and load are the
    trainer's code: exercised here with torch's CPU GradScaler, its scale and growth tracker moved first."""
    saved, resumed = tiny_trainer(), tiny_trainer()
    saved.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, growth_interval=3)
    resumed.scaler = torch.amp.GradScaler("cpu")
    batch = {d: torch.rand(1, 3, 32, 32) * 2 - 1 for d in "AB"}
    loss = saved.nets["G_A"](batch["A"]).float().mean()
    saved.scaler.scale(loss).backward()
    next(iter(saved.nets["G_A"].parameters())).grad.fill_(float("inf"))  # an overflow: the scale halves
    saved.scaler.step(saved.opt_G)
    saved.scaler.update()
    assert saved.scaler.get_scale() == 2.0 ** 11
    torch.save(saved.state_dict(), tmp_path / "state.pt")  # as checkpoint.save writes each part
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert resumed.scaler.state_dict() == saved.scaler.state_dict()
    assert resumed.scaler.get_scale() == 2.0 ** 11 and resumed.scaler.get_growth_interval() == 3
