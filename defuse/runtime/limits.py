"""Refuse work that would exhaust memory before allocating it, with a message that says what to lower."""

from __future__ import annotations

from typing import Optional

import torch

# A decode+classify batch holds the image and the activations of both networks: measured peak on the
# paper's MNIST nets is ~25x the images' own bytes; 40x leaves room for larger networks.
ACTIVATION_FACTOR = 40


def available_bytes(device: Optional[torch.device] = None) -> int:
    """Free memory on ``device`` (CUDA: the GPU's; otherwise the host's MemAvailable)."""
    if device is not None and device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_fits(nbytes: float, *, what: str, fix: str, device: Optional[torch.device] = None,
               share: float = 0.8) -> None:
    """Raise ValueError when ``nbytes`` exceeds ``share`` of the free memory."""
    free = available_bytes(device)
    if nbytes > share * free:
        raise ValueError(f"{what} would need about {nbytes / 2**30:.1f} GiB of memory, but only "
                         f"{free / 2**30:.1f} GiB are free: {fix}")


def identify_bytes(*, batch_size: int, chunk_images: int, samples: int, latent_dim: int, image_numel: int) -> float:
    """Peak bytes of one identify chunk: its noise and codes, plus one decode+classify batch."""
    chunk = chunk_images * samples * latent_dim * 4 * 3
    batch = batch_size * image_numel * 4 * ACTIVATION_FACTOR
    return chunk + batch
