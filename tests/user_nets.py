"""A practitioner's own network, as the user-model tests meet it: not one of Defuse's built-in architectures.

Convolutions with batch norm and dropout, colour input, more than ten classes, constructor arguments
under names of its own (``in_channels``, ``n_classes``). Tests name it ``tests.user_nets:SignNet``.
"""

from __future__ import annotations

from torch import nn


class SignNet(nn.Module):
    def __init__(self, in_channels: int = 3, n_classes: int = 12, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.25))
        self.head = nn.Linear(8 * width, n_classes)

    def forward(self, x):
        return self.head(self.features(x))
