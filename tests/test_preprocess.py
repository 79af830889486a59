"""--preprocess: every mode gives the original code's sizes and crops, pixel for pixel (same image, same crop)."""

import importlib.util
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import SHARED
from PIL import Image

from brushwork.data import stream as data
from brushwork.data.stream import Augment

REFERENCE = SHARED / "reference" / "junyanz" / "data" / "base_dataset.py"
pytestmark = pytest.mark.skipif(not REFERENCE.is_file(), reason="the original code is not beside this checkout")


def original():
    spec = importlib.util.spec_from_file_location("junyanz_base_dataset", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def photo(w, h, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


MODES = ["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(300, 200), (200, 310), (258, 258)])
def test_each_mode_equals_the_original_transform(mode, size):
    ref = original()
    img = photo(*size)
    opt = SimpleNamespace(preprocess=mode, load_size=286, crop_size=256, no_flip=True)
    random.seed(3)
    params = ref.get_params(opt, img.size)  # the original's own draw of the crop position
    expected = ref.get_transform(opt, params)(img)
    aug = Augment(load_size=286, crop_size=256, flip=False, preprocess=mode)
    ours = data.to_tensor(data.preprocess_image(img, aug, crop_pos=params["crop_pos"]))
    assert ours.shape == expected.shape, (mode, size)
    assert torch.allclose(ours, expected, atol=1e-6)


def test_random_crops_stay_inside_and_batches_share_a_size():
    aug = Augment(load_size=64, crop_size=48, preprocess="scale_width_and_crop")
    rng = np.random.default_rng(0)
    for seed in range(10):
        x = data.augment(photo(90 + seed, 60 + 3 * seed, seed), aug, rng)
        assert x.shape == (3, 48, 48)
    varied = [data.augment(photo(w, h), Augment(64, 48, preprocess="none"), rng) for w, h in ((40, 30), (44, 52))]
    batch = data.stack_same_size(varied)
    assert batch.shape == (2, 3, 32, 40)  # multiples of 4 (as the original), centre-cropped to the smallest
    assert torch.equal(batch[0], varied[0][:, 0:32, 0:40])
