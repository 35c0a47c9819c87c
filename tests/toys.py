"""Tiny synthetic data shared by the tests: learnable in seconds on a CPU."""

from __future__ import annotations

import torch
from torch import nn

from defuse.data.datasets import DatasetSpec, ImageData, Split


def bar_images(n: int, num_classes: int = 4, size: int = 32, channels: int = 1, seed: int = 0):
    """Class c is a bright horizontal bar in band c of the image, plus noise: trivially separable."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    images = torch.rand(n, channels, size, size, generator=gen) * 0.2
    band = size // num_classes
    for c in range(num_classes):
        images[labels == c, :, c * band:(c + 1) * band, :] += 0.7
    return images.clamp(0, 1), labels.long()


def tiny_image_data(n_train: int = 256, num_classes: int = 4, channels: int = 1, size: int = 32) -> ImageData:
    parts = [bar_images(n, num_classes, size, channels, seed=s) for s, n in enumerate((n_train, 64, 64))]
    return ImageData(*(Split(x, y) for x, y in parts), class_names=[f"c{i}" for i in range(num_classes)],
                     spec=DatasetSpec(source="npz"))


class BarDecoder(nn.Module):
    """Stub VAE over 4 classes of 32x32 toy images: code z (n, 2) decodes to the image of class round(z[:, 0]),
    a bright bar in that band (as :func:`bar_images` draws them, without noise)."""

    def __init__(self, num_classes: int = 4, size: int = 32):
        super().__init__()
        self.num_classes, self.size = num_classes, size
        self.anchor = nn.Parameter(torch.zeros(1))  # on_device moves a model by its parameters

    def decode(self, z):
        cls = z[:, 0].round().clamp(0, self.num_classes - 1).long()
        band = self.size // self.num_classes
        images = torch.full((len(z), 1, self.size, self.size), 0.1)
        for c in range(self.num_classes):
            images[cls == c, :, c * band:(c + 1) * band, :] = 0.8
        return images
