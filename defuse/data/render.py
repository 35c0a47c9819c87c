"""Image grids as PIL images: for the CLI's `sample`, the app's galleries and the HTML report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8."""
    arr = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return arr.transpose(0, 2, 3, 1)


def prediction_captions(predictions, confidence) -> list[str]:
    """Tile captions for the classifier's label and its confidence (max softmax): e.g. ``5 93%``."""
    return [f"{int(p)} {float(c):.0%}" for p, c in zip(predictions, confidence, strict=True)]


def image_grid(images: torch.Tensor, *, ncol: int = 8, captions: Optional[Sequence[str]] = None,
               scale: int = 2, pad: int = 2) -> Image.Image:
    """Tile images into one picture; ``captions`` (one per image) are drawn in each tile's corner."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"image_grid needs a non-empty (N, C, H, W) batch; got shape {tuple(images.shape)}")
    arr = to_uint8(images)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    n, h, w, _ = arr.shape
    ncol = max(1, min(ncol, n))
    nrow = -(-n // ncol)
    th, tw = h * scale, w * scale
    canvas = Image.new("RGB", (ncol * (tw + pad) + pad, nrow * (th + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font_size = max(10, 6 * scale)
    font = ImageFont.load_default(size=font_size)
    for i in range(n):
        r, c = divmod(i, ncol)
        x0, y0 = pad + c * (tw + pad), pad + r * (th + pad)
        canvas.paste(Image.fromarray(arr[i]).resize((tw, th), Image.NEAREST), (x0, y0))
        if captions is not None:
            text = str(captions[i])
            right = x0 + int(draw.textlength(text, font=font)) + 3
            draw.rectangle([x0, y0, right, y0 + font_size + 2], fill=(200, 0, 0))
            draw.text((x0 + 1, y0), text, fill=(255, 255, 255), font=font)
    return canvas
