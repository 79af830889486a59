"""Losses, image pool and LR schedule against the original definitions."""

import torch
import torch.nn.functional as F

from brushwork.models import losses
from brushwork.models.pool import ImagePool
from brushwork.training import schedule


def test_lsgan_and_vanilla():
    pred = torch.tensor([[0.2, 1.5], [-0.3, 0.9]])
    assert torch.isclose(losses.gan_loss(pred, True), ((pred - 1) ** 2).mean())
    assert torch.isclose(losses.gan_loss(pred, False), (pred ** 2).mean())
    assert torch.isclose(losses.gan_loss(pred, True, "vanilla"), -F.logsigmoid(pred).mean())
    d = losses.discriminator_loss(pred, pred * 0.5)
    assert torch.isclose(d, 0.5 * (((pred - 1) ** 2).mean() + ((pred * 0.5) ** 2).mean()))


def test_cycle_and_identity_weights():
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert losses.cycle_loss(a, b, 10.0).item() == 10.0
    assert losses.identity_loss(a, b, 10.0, 0.5).item() == 5.0


def test_perceptual_cycle_loss_uses_features():
    feats = lambda x: {"mean": x.mean(dim=(2, 3))}
    rec, real = torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 4, 4), -0.5)
    # images map from [-1, 1] to [0, 1] before the features: 0.75 vs 0.25
    assert torch.isclose(losses.perceptual_cycle_loss(rec, real, 2.0, feats), torch.tensor(1.0))


def test_pool_fills_then_swaps_half_the_time_and_resumes_exactly():
    pool = ImagePool(size=4, seed=1)
    first = [torch.full((1, 3, 2, 2), float(i)) for i in range(4)]
    for img in first:  # filling: every image comes straight back
        assert torch.equal(pool.query(img), img)
    outs = [pool.query(torch.full((1, 3, 2, 2), 100.0 + i)) for i in range(200)]
    from_history = sum(float(o[0, 0, 0, 0]) != 100.0 + i for i, o in enumerate(outs))
    assert 60 < from_history < 140  # about half the queries return an older image
    state = pool.state_dict()
    clone = ImagePool(size=4, seed=999)
    clone.load_state_dict(state)
    batch = torch.rand(3, 3, 2, 2)
    assert torch.equal(pool.query(batch), clone.query(batch))
    assert all(torch.equal(x, y) for x, y in zip(pool.images, clone.images))
    assert torch.equal(ImagePool(size=0).query(batch), batch)


def test_lr_at_every_epoch_equals_the_original_lambdalr():
    base = 2e-4
    net = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=base)
    rule = lambda epoch: 1.0 - max(0, epoch + 1 - 100) / float(100 + 1)  # the original, epoch_count = 1
    sched = torch.optim.lr_scheduler.LambdaLR(opt, rule)
    epoch_images = 37
    for epoch in range(200):  # the original steps the scheduler at the end of each epoch
        for images_seen in (epoch * epoch_images, (epoch + 1) * epoch_images - 1):
            ours = schedule.learning_rate(base, images_seen, epoch_images, 100, 100)
            assert abs(ours - opt.param_groups[0]["lr"]) < 1e-15, epoch
        opt.step()
        sched.step()
    assert schedule.learning_rate(base, 0, 37, 100, 100) == base
    assert abs(schedule.learning_rate(base, 199 * 37, 37, 100, 100) - base / 101) < 1e-15
    assert schedule.total_images(37, 100, 100) == 200 * 37
