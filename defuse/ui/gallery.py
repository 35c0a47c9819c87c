"""Image grids on a page: decoded samples with the classifier's label drawn on each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import streamlit as st
import torch

from ..data.render import image_grid


def as_tensor(images) -> torch.Tensor:
    return images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images, np.float32))


# Streamlit draws an image's hover toolbar (its expand button, 44 px tall in 1.67) above the image's top edge,
# over the element before it; this much space (plus the usual 16 px gap) keeps that element's text clear of it.
TOOLBAR_ROOM_PX = 24


def show_grid(images, *, captions: Optional[Sequence[str]] = None, ncol: int = 8, caption: Optional[str] = None,
              scale: int = 3, toolbar_room: bool = False) -> None:
    """Tile (n, C, H, W) images in [0, 1]; ``captions`` are drawn in each tile's corner.

    ``toolbar_room``: leave room above the grid for its expand button, which otherwise covers the line above
    (the Label page's scenario heading, issue #17)."""
    x = as_tensor(images)
    if len(x) == 0:
        st.caption("(no images)")
        return
    if toolbar_room:
        st.space(TOOLBAR_ROOM_PX)
    st.image(image_grid(x, ncol=ncol, captions=captions, scale=scale), caption=caption)


def pairs_grid(sources, examples, true: Sequence[int], pred: Sequence[int], *, pairs_per_row: int = 4,
               scale: int = 3):
    """Each unrestricted adversarial example beside its source image: '<true label>' then '→<prediction>'."""
    src, ex = as_tensor(sources), as_tensor(examples)
    tiles = torch.stack([src, ex], dim=1).reshape(-1, *src.shape[1:])
    captions = [c for t, p in zip(true, pred, strict=True) for c in (f"{int(t)}", f"->{int(p)}")]
    return image_grid(tiles, ncol=2 * pairs_per_row, captions=captions, scale=scale)
