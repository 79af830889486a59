"""The image pool of past fakes fed to the discriminators (Shrivastava et al.; pool of 50)."""

from __future__ import annotations

import torch


class ImagePool:
    """Per-rank history of generated images; its contents and RNG are part of a checkpoint.

    Same rule as the original: until full, store and return each image; then with probability 1/2
    return a stored image (replacing it with the new one), else return the new one. Draws come from
    the pool's own generator instead of the global ``random`` module, so resume is exact.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) > 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"size": self.size, "generator": self.generator.get_state(),
                "images": [img.cpu() for img in self.images]}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        self.size = state["size"]
        self.generator.set_state(state["generator"])
        self.images = [img.to(device) for img in state["images"]]
