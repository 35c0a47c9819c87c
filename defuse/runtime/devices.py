"""Device choice and thread policy.

``device="auto"`` picks CUDA, then MPS, then CPU. On a CPU shared with the
Streamlit server, too many torch threads thrash: measured on 2 shared cores,
2 threads ran up to 20x slower than 1 while another process was busy.
"""

from __future__ import annotations

import os
import sys

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return the torch device for ``device`` ("auto", "cpu", "cuda", "cuda:1", "mps")."""
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {sorted(DEVICE_CHOICES)} (or 'cuda:N'); got {device!r}")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but MPS is not available; use device='auto' or 'cpu'")
    return torch.device(name)


def describe_device(device: str | torch.device = "auto") -> str:
    """A human name: 'CPU (2 threads)' or the GPU's name."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "Apple GPU (MPS)"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'})"


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads from ``threads`` or DEFUSE_THREADS, default: all cores.

    Jobs started beside the app pass a smaller number so the server stays responsive.
    """
    if threads is None:
        threads = int(os.environ.get("DEFUSE_THREADS", "0")) or (os.cpu_count() or 1)
    torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()


def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast pays off.

    ``torch.backends.cpu.get_cpu_capability()`` often says only "AVX512", which older chips without
    bf16 units share, so on Linux the CPU flags decide; elsewhere we stay in fp32.
    """
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    if "BF16" in capability or "AMX" in capability:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False
