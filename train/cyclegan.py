#!/usr/bin/env python3
"""Train CycleGAN (photo <-> painting) with DDP on any number of CPUs, GPUs or nodes.

  accelerate launch train/cyclegan.py --domain monet             # data/shards/monet2photo -> runs/cyclegan-monet
  accelerate launch train/cyclegan.py --domain monet --resume auto
  accelerate launch train/cyclegan.py --data data/shards/mine --run_dir runs/mine
  tensorboard --logdir runs

--domain picks the preset configs/cyclegan/{domain}.toml (the paper's settings); --preset PATH
uses another TOML file; any flag below overrides it. The run dir receives config.toml, tb/
(TensorBoard), samples/, checkpoints/step_N/ (+ latest) and export/ (the generators alone).
SIGTERM or SIGUSR1 (cluster preemption) saves a checkpoint and exits 0; --resume auto continues
exactly where it stopped, also with another number of processes (the LR follows images seen).
On a CPU-only machine: accelerate launch --multi_gpu --num_processes 2 ... gives 2 gloo ranks.
"""

import math
import signal
import sys
import time
from pathlib import Path

import torch

from brushwork import checkpoint, cli, config, data, schedule
from brushwork.config import CycleGANConfig
from brushwork.cyclegan import StepWeights, train_step
from brushwork.errors import ConfigError
from brushwork.grids import labelled_grid, tensor_grid
from brushwork.networks import NLayerDiscriminator, ResnetGenerator, init_weights
from brushwork.pool import ImagePool

ARCH_FIELDS = ("ngf", "ndf", "n_blocks", "n_layers_d")
SIGNAL_CHECK_EVERY = 10  # ranks agree on a preemption signal every N steps (one tiny all-reduce)


def resolve_config(flags: dict) -> CycleGANConfig:
    preset = flags.pop("preset", None)
    domain = str(flags.get("domain", "monet"))
    if preset is None:
        known = (config.CONFIG_ROOT / "cyclegan" / f"{domain}.toml").is_file()
        preset = domain if known else "base"
    cfg = config.load_config(CycleGANConfig, preset, flags, tool="cyclegan")
    return config.dataclasses.replace(
        cfg, data=cfg.data or f"data/shards/{cfg.domain}2photo", run_dir=cfg.run_dir or f"runs/cyclegan-{cfg.domain}")


def build_networks(cfg: CycleGANConfig) -> dict:
    torch.manual_seed(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0's weights)
    make_G = lambda: ResnetGenerator(ngf=cfg.ngf, n_blocks=cfg.n_blocks, winograd=cfg.winograd)
    nets = {"G_A": make_G(), "G_B": make_G(),
            "D_A": NLayerDiscriminator(ndf=cfg.ndf, n_layers=cfg.n_layers_d),
            "D_B": NLayerDiscriminator(ndf=cfg.ndf, n_layers=cfg.n_layers_d)}
    for net in nets.values():
        init_weights(net, cfg.init_type, cfg.init_gain)
    return nets


def fingerprint(net: torch.nn.Module) -> torch.Tensor:
    """(Σw, Σw²) over all parameters in float64: equal on every rank iff DDP kept them in sync."""
    with torch.no_grad():
        flat = torch.cat([p.detach().double().flatten() for p in net.parameters()])
        return torch.stack([flat.sum(), flat.square().sum()]).cpu()


def perceptual_features(cfg: CycleGANConfig, device):
    if cfg.lambda_perceptual <= 0:
        return None
    from brushwork import vgg

    state = vgg.load_state(cfg.vgg_weights or None, random_init=cfg.random_vgg, seed=cfg.seed)
    return vgg.VGGFeatures(["relu1_2", "relu2_2", "relu3_3"], state).to(device).eval()


def main(**flags):
    cfg = resolve_config(flags)
    from accelerate import Accelerator

    on_gpu = torch.cuda.is_available()
    if cfg.mixed_precision == "fp16" and not on_gpu:
        raise ConfigError("--mixed_precision fp16 needs a GPU; use no (or bf16, which is emulated and slow on CPU)")
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    run_dir = Path(cfg.run_dir)
    from accelerate.utils import DistributedDataParallelKwargs

    ddp = DistributedDataParallelKwargs(gradient_as_bucket_view=True)  # grads live in the buckets: no copy
    accelerator = Accelerator(cpu=not on_gpu, mixed_precision=cfg.mixed_precision, log_with="tensorboard",
                              project_dir=str(run_dir), kwargs_handlers=[ddp],
                              dynamo_backend="inductor" if cfg.compile else "no")
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    say = accelerator.print
    barrier = accelerator.wait_for_everyone
    arch = {k: getattr(cfg, k) for k in ARCH_FIELDS}

    # ---- data ------------------------------------------------------------------------------
    ckpt_path = checkpoint.resolve(run_dir, cfg.resume)
    state = checkpoint.load(ckpt_path, rank) if ckpt_path else None
    if state:
        checkpoint.check_compatible(state["meta"], arch, ckpt_path)
    meta = state["meta"] if state else {}
    step, images_seen = meta.get("step", 0), meta.get("images_seen", 0)
    data_seed, data_batches = meta.get("data_seed", cfg.seed), meta.get("data_batches", 0)
    if state and (meta.get("world") != world or meta.get("batch_size") != cfg.batch_size):
        # the stream is laid out per rank: with another world size it restarts, freshly shuffled
        say(f"resuming with {world} process(es) x batch {cfg.batch_size} (checkpoint: {meta.get('world')} x "
            f"{meta.get('batch_size')}): the data order restarts; the LR schedule continues")
        data_seed, data_batches = cfg.seed + 1 + step, 0
    aug = data.Augment(cfg.load_size, cfg.crop_size, flip=not cfg.no_flip)
    loader, steps_per_epoch = data.train_loader(
        cfg.data, batch_size=cfg.batch_size, rank=rank, world=world, num_workers=cfg.num_workers, seed=data_seed,
        aug=aug, buffer=cfg.shuffle_buffer, start_batch=data_batches, pin_memory=on_gpu)
    global_batch = cfg.batch_size * world
    epoch_images = steps_per_epoch * global_batch
    total_steps = math.ceil(schedule.total_images(epoch_images, cfg.epochs, cfg.epochs_decay) / global_batch)
    end_step = min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps

    # ---- model, optimisers, state ----------------------------------------------------------
    nets = build_networks(cfg)
    fused = {"fused": True} if on_gpu else {}  # one kernel for the whole update on GPUs
    opt_G = torch.optim.Adam(list(nets["G_A"].parameters()) + list(nets["G_B"].parameters()), lr=cfg.lr,
                             betas=(cfg.beta1, cfg.beta2), **fused)
    opt_D = torch.optim.Adam(list(nets["D_A"].parameters()) + list(nets["D_B"].parameters()), lr=cfg.lr,
                             betas=(cfg.beta1, cfg.beta2), **fused)
    pools = {"A": ImagePool(cfg.pool_size, seed=cfg.seed * 1000 + 2 * rank),
             "B": ImagePool(cfg.pool_size, seed=cfg.seed * 1000 + 2 * rank + 1)}
    if state:
        for name, net in nets.items():
            net.load_state_dict(state["models"][name])
        opt_G.load_state_dict(state["optim"]["G"])
        opt_D.load_state_dict(state["optim"]["D"])
        if state["rank"]:
            pools["A"].load_state_dict(state["rank"]["pool_A"], device)
            pools["B"].load_state_dict(state["rank"]["pool_B"], device)
            torch.set_rng_state(state["rank"]["rng_cpu"])
    G_A, G_B, D_A, D_B, opt_G, opt_D = accelerator.prepare(nets["G_A"], nets["G_B"], nets["D_A"], nets["D_B"],
                                                           opt_G, opt_D)
    if state and state["optim"].get("scaler") and accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(state["optim"]["scaler"])
    # checkpoints and the frozen-D pass use the plain modules (no DDP, no compile wrapper)
    unwrap = lambda m: accelerator.unwrap_model(m, keep_torch_compile=False)
    raw_D_A, raw_D_B = unwrap(D_A), unwrap(D_B)
    features = perceptual_features(cfg, device)

    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.write_resolved(cfg, run_dir)
    accelerator.init_trackers("tb", config={k: v for k, v in config.dataclasses.asdict(cfg).items()})
    tb = accelerator.get_tracker("tensorboard", unwrap=True) if accelerator.is_main_process else None

    def save_checkpoint():
        meta_out = {"step": step, "images_seen": images_seen, "epoch": schedule.epoch_of(images_seen, epoch_images),
                    "world": world, "batch_size": cfg.batch_size, "data_seed": data_seed, "data_batches": data_batches,
                    "arch": arch, "config": config.dataclasses.asdict(cfg)}
        path = checkpoint.save(
            run_dir, step, rank=rank, barrier=barrier, meta=meta_out, keep_last=cfg.keep_last,
            models={n: unwrap(m).state_dict() for n, m in (("G_A", G_A), ("G_B", G_B), ("D_A", D_A), ("D_B", D_B))},
            optim={"G": opt_G.state_dict(), "D": opt_D.state_dict(),
                   "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None},
            rank_state={"pool_A": pools["A"].state_dict(), "pool_B": pools["B"].state_dict(),
                        "rng_cpu": torch.get_rng_state(),
                        "weights_fingerprint": {n: fingerprint(m) for n, m in (("G_A", G_A), ("G_B", G_B),
                                                                              ("D_A", D_A), ("D_B", D_B))}})
        say(f"checkpoint: {path}")

    stop_signal = []
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, lambda signum, _frame: stop_signal.append(signum))

    say(f"training {cfg.domain}: {world} process(es) x batch {cfg.batch_size} on {device}, "
        f"{steps_per_epoch} steps/epoch, step {step} -> {end_step} of {total_steps}; run dir {run_dir}")
    from tqdm import tqdm

    bar = tqdm(total=end_step, initial=step, unit="step", disable=not accelerator.is_local_main_process or None)
    batches = iter(loader)
    last_log, last_time = step, time.perf_counter()
    weights = StepWeights(cfg.gan_mode, cfg.lambda_a, cfg.lambda_b, cfg.lambda_identity, cfg.lambda_perceptual)
    while step < end_step:
        batch = next(batches)
        real_A = batch["A"].to(device, non_blocking=True)
        real_B = batch["B"].to(device, non_blocking=True)
        lr = schedule.learning_rate(cfg.lr, images_seen, epoch_images, cfg.epochs, cfg.epochs_decay)
        for opt in (opt_G, opt_D):
            for group in opt.param_groups:
                group["lr"] = lr

        loss, images = train_step(real_A, real_B, G_A=G_A, G_B=G_B, D_A=D_A, D_B=D_B, raw_D_A=raw_D_A,
                                  raw_D_B=raw_D_B, opt_G=opt_G, opt_D=opt_D, pools=pools, w=weights,
                                  backward=accelerator.backward, autocast=accelerator.autocast, features=features,
                                  join_passes=on_gpu)

        epoch_before = schedule.epoch_of(images_seen, epoch_images)
        step, images_seen, data_batches = step + 1, images_seen + global_batch, data_batches + 1
        bar.update(1)

        if step % cfg.log_every == 0 or step == end_step:
            names = list(loss)
            values = accelerator.reduce(torch.stack([loss[k].float() for k in names]), "mean").tolist()
            now = time.perf_counter()
            scalars = {f"loss/{k}": v for k, v in zip(names, values)}
            scalars.update({"lr": lr, "images_per_s": (step - last_log) * global_batch * 2 / (now - last_time),
                            "epoch": images_seen / epoch_images})
            accelerator.log(scalars, step=step)
            bar.set_postfix(G=f"{sum(v for k, v in zip(names, values) if not k.startswith('D')):.3f}",
                            D=f"{scalars['loss/D_A'] + scalars['loss/D_B']:.3f}", lr=f"{lr:.2e}")
            last_log, last_time = step, now
        if tb is not None and (step % cfg.sample_every == 0 or step == end_step):
            labels = ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
            columns = [images[k] for k in labels]
            tb.add_image("samples", tensor_grid(columns, rows=1), step)
            sample = labelled_grid(columns, labels, rows=1)
            (run_dir / "samples").mkdir(exist_ok=True)
            sample.save(run_dir / "samples" / f"step_{step:08d}.png")

        if world == 1:
            stopping = bool(stop_signal)
        elif step % SIGNAL_CHECK_EVERY == 0 or step == end_step:  # agree on stopping without a sync every step
            flag = torch.tensor([float(bool(stop_signal))], device=device)
            stopping = accelerator.reduce(flag, "max").item() > 0
        else:
            stopping = False
        epoch_end = schedule.epoch_of(images_seen, epoch_images) > epoch_before
        if stopping or epoch_end or step % cfg.checkpoint_every == 0 or step == end_step:
            save_checkpoint()
        if stopping:
            say(f"stopped by signal at step {step}; resume with --resume auto")
            break

    bar.close()
    if not stop_signal and accelerator.is_main_process:
        export = checkpoint.export_generators(
            run_dir, {"G_A": G_A, "G_B": G_B},
            {"arch": {"ngf": cfg.ngf, "n_blocks": cfg.n_blocks}, "step": step, "domain": cfg.domain})
        say(f"generators exported to {export}")
    barrier()
    accelerator.end_training()
    cli.end_distributed()
    return 0


def help_text():
    return config.help_text(__doc__, CycleGANConfig, "cyclegan", "base",
                            "  --preset             a TOML preset (default: configs/cyclegan/{domain}.toml)")


if __name__ == "__main__":
    sys.exit(cli.run(main, help_text=help_text))
