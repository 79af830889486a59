"""The training loop every trainer shares, checkpoints, the LR schedules, accelerate's settings, and the trainers
(CycleGAN, fast style, AdaIN)."""
