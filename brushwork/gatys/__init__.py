"""Gatys style transfer: the objective, per-sample batched optimisers, the runner and the paper's figures."""
