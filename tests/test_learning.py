"""A tiny CycleGAN really learns the synthetic mapping: PSNR against the known answer rises clearly."""

import numpy as np
import pytest
import torch
from conftest import run_train, synth_shards

from brushwork.data import synth
from brushwork.data.images import load_image, to_tensor
from brushwork.evaluation.translate import load_generator
from brushwork.models.networks import ResnetGenerator, init_weights

pytestmark = pytest.mark.slow


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)))


def mean_psnr_to_truth(G, files) -> float:
    scores = []
    for f in files:
        a = load_image(f)
        with torch.no_grad():
            y = G(to_tensor(a)[None])[0]
        out = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        scores.append(psnr(out, synth.true_map(np.asarray(a))))
    return float(np.mean(scores))


def test_translator_learns_the_known_mapping(tmp_path):
    shards = synth_shards(tmp_path, n_train=64, per_shard=8, size=32)
    files = sorted((tmp_path / "src" / "testA").glob("*.png"))
    identity = np.mean([psnr(np.asarray(load_image(f)), synth.true_map(np.asarray(load_image(f)))) for f in files])
    torch.manual_seed(0)  # the trainer's init for G_A: first network built after seeding
    start = mean_psnr_to_truth(init_weights(ResnetGenerator(ngf=16, n_blocks=3)).eval(), files)

    run = tmp_path / "run"
    proc = run_train(run, shards, "--ngf", 16, "--ndf", 16, "--n_blocks", 3, "--batch_size", 4, "--max_steps", 500,
                     "--lr", 5e-4, "--lambda_identity", 0, "--pool_size", 0, "--num_workers", 1,
                     "--checkpoint_every", 1000, "--log_every", 100, "--sample_every", 1000, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    learned = mean_psnr_to_truth(load_generator(run, "AtoB")[0], files)
    print(f"PSNR to the true mapping: identity {identity:.2f} dB, start {start:.2f} dB, trained {learned:.2f} dB")
    assert learned > start + 4 and learned > identity + 4
