"""The training loop every trainer shares, checkpoints, the LR schedule, accelerate's settings, and the trainers (CycleGAN, fast style)."""
