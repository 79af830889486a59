"""checkpoint.save and checkpoint.load take and give the same dict: every part of a trainer's state_dict."""

import json

import torch

from brushwork.schemas.train import CycleGANConfig
from brushwork.training import checkpoint
from brushwork.training.cyclegan import CycleGANTrainer


def test_save_then_load_gives_back_every_part_of_the_trainers_state(tmp_path):
    trainer = CycleGANTrainer(CycleGANConfig(ngf=8, ndf=8, n_blocks=2, pool_size=2))
    trainer.step({d: torch.rand(1, 3, 32, 32) * 2 - 1 for d in "AB"})  # optimiser and pool state exist
    meta = {"step": 1, "images_seen": 1, "data_seed": 1, "data_batches": 1, "world": 1, "batch_size": 1}
    state = {"meta": meta, **trainer.state_dict()}
    path = checkpoint.save(tmp_path, state, step=1, rank=0, barrier=lambda: None, keep_last=2)
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "models.pt", "optim.pt", "rank_00000.pt"]
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == path.name
    loaded = checkpoint.load(path, 0)
    checkpoint.check_parts(loaded, trainer.state_dict(), path)
    assert json.loads((path / "meta.json").read_text())["step"] == 1 and loaded["meta"]["images_seen"] == 1

    def same(a, b):
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return torch.equal(a, b) if torch.is_tensor(a) else a == b

    for part in ("models", "optim", "rank"):
        assert same(loaded[part], state[part]), part
    fresh = CycleGANTrainer(CycleGANConfig(ngf=8, ndf=8, n_blocks=2, pool_size=2))
    fresh.load_state_dict(loaded)
    assert same(fresh.state_dict()["optim"], state["optim"]) and same(fresh.state_dict()["models"], state["models"])
