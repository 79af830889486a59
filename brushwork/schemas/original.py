"""The original CycleGAN code's flags (junyanz/pytorch-CycleGAN-and-pix2pix, options/*.py).

Where a flag means the same here, the field carries it as an alias (``--lambda_A``, ``--n_epochs``,
``--results_dir`` ...). The rest have no one-to-one equivalent; a user who types one gets this line
instead of "unknown flag" and the whole list.
"""

from __future__ import annotations

INSTEAD = {
    "dataroot": "shard the dataset once with data_prep/shard.py DATAROOT --out SHARDS, then --data SHARDS",
    "name": "--run_dir runs/NAME (checkpoints, samples and TensorBoard logs all go there)",
    "checkpoints_dir": "--run_dir (one folder per run)",
    "continue_train": "--resume auto (continues from the run dir's newest checkpoint, exactly)",
    "epoch_count": "--resume auto (the epoch count is kept in the checkpoint)",
    "gpu_ids": "start processes with accelerate launch --num_processes N (GPUs chosen with CUDA_VISIBLE_DEVICES)",
    "netG": "--n_blocks 9 (resnet_9blocks) or --n_blocks 6 (resnet_6blocks); the U-Net generators are not included",
    "netD": "--n_layers_d 3 (basic) or --n_layers_d N (n_layers); the pixel discriminator is not included",
    "norm": "instance norm is built in, as in the original CycleGAN",
    "model": "train/cyclegan.py trains CycleGAN; eval/translate.py applies one generator (test mode)",
    "dataset_mode": "--data takes a shard root made by data_prep/shard.py (trainA trainB testA testB)",
    "direction": "train/cyclegan.py trains both directions; choose one when applying: eval/translate.py "
                 "--direction AtoB|BtoA",
    "display_id": "TensorBoard: tensorboard --logdir RUN/tb (--log_with none for no tracker)",
    "display_freq": "--sample_every STEPS (sample grids in RUN/samples and TensorBoard)",
    "display_port": "TensorBoard: tensorboard --logdir RUN/tb --port N",
    "print_freq": "--log_every STEPS",
    "save_latest_freq": "--checkpoint_every STEPS",
    "save_epoch_freq": "--checkpoint_every STEPS (checkpoints are by step; --keep_last N of them are kept)",
    "lr_policy": "linear decay after --epochs is built in (--epochs_decay sets its length)",
    "phase": "eval/translate.py --split test|train with a shard root as --input",
    "epoch": "--step N (a checkpoint's step; RUN/checkpoints lists them), or the newest when left out",
    "num_test": "translate a folder (or shard split) as a whole; to limit, point --input at a folder of those images",
    "serial_batches": "the order is shuffled from --seed; the same seed gives the same order",
}


def instead_of(name: str, config_class: type) -> str | None:
    """What to use instead of the original flag ``name`` (None: not one of them, or this command has it)."""
    import dataclasses

    if name in {f.name for f in dataclasses.fields(config_class)}:
        return None
    return INSTEAD.get(name)
