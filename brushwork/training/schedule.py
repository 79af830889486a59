"""The original learning-rate schedule, driven by images seen so that every rank agrees on it.

The original steps a LambdaLR once per epoch: during (0-based) epoch e the factor is
``1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1)``. Here e is derived from the global count of
training images consumed, which is the same on every rank and survives a change of world size.
"""


def lr_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """The original ``lambda_rule`` (epoch_count = 1): constant, then linear decay towards zero."""
    return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)


def epoch_of(images_seen: int, epoch_images: int) -> int:
    return images_seen // max(1, epoch_images)


def learning_rate(base_lr: float, images_seen: int, epoch_images: int, n_epochs: int, n_epochs_decay: int) -> float:
    return base_lr * lr_factor(epoch_of(images_seen, epoch_images), n_epochs, n_epochs_decay)


def total_images(epoch_images: int, n_epochs: int, n_epochs_decay: int) -> int:
    return epoch_images * (n_epochs + n_epochs_decay)


PAPER_BATCH = 8  # AdaIN's decay counts iterations of the paper's batch of 8 images


def inverse_decay(base_lr: float, images_seen: int, decay: float, per: int = PAPER_BATCH) -> float:
    """AdaIN's rule, lr / (1 + decay · iteration), with an iteration = ``per`` images: every rank, batch size and
    process count agrees on it."""
    return base_lr / (1.0 + decay * images_seen / per)
