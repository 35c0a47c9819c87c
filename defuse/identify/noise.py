"""Counter-based Beta(a, b) noise: ε as a pure function of (seed, source row, sample, latent dim).

SplitMix64 on int64 tensors gives uniforms per counter, Marsaglia-Tsang turns them into Gamma
variates, and Beta(a, b) = G_a / (G_a + G_b). A source image's Q perturbations are therefore the same
whatever the batch size, the chunk size, the subset or a resume; raising Q keeps the first Q draws.
"""

from __future__ import annotations

import math

import torch

_MASK64 = (1 << 64) - 1
_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
# counter = stream << 56 | row << 30 | sample << 10 | dim: every (stream, element) pair is a distinct
# counter, and SplitMix64 is a bijection of it, so no two draws can share their bits.
_Q_BITS, _DIM_BITS, _STREAM_SHIFT = 20, 10, 56
MAX_SAMPLES_PER_IMAGE = 1 << _Q_BITS
MAX_LATENT_DIM = 1 << _DIM_BITS
MAX_ROWS = 1 << (_STREAM_SHIFT - _Q_BITS - _DIM_BITS)      # 67,108,864 source images
_MAX_ROUNDS = 64                     # Marsaglia-Tsang accepts >= 95 % per round for shape >= 1


def _signed(c: int) -> int:
    """A 64-bit constant as the int64 torch stores (two's complement)."""
    c &= _MASK64
    return c - (1 << 64) if c >= 1 << 63 else c


def _mix64_int(x: int) -> int:
    """SplitMix64's finaliser on a Python int (turns the seed into a key)."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * _MIX1) & _MASK64
    x = ((x ^ (x >> 27)) * _MIX2) & _MASK64
    return x ^ (x >> 31)


def _srl(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _stream_key(key: int, stream: int) -> int:
    """The key that makes ``counter * G + key`` equal ``(counter + stream << 56) * G + seed key``:
    the stream lives in the counter's top byte at no cost per element."""
    return (key + ((stream << _STREAM_SHIFT) * _GOLDEN)) & _MASK64


def _uniforms(counter: torch.Tensor, key: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three independent float32 uniforms in (0, 1), 21 bits each, from one SplitMix64 hash of ``counter``.

    In-place int64 arithmetic (which wraps, as SplitMix64 wants): this runs as fast as ``torch.rand``.
    """
    x = counter * _signed(_GOLDEN)
    x.add_(_signed(key))
    x.bitwise_xor_(_srl(x, 30)).mul_(_signed(_MIX1))
    x.bitwise_xor_(_srl(x, 27)).mul_(_signed(_MIX2))
    x.bitwise_xor_(_srl(x, 31))
    mask, scale = (1 << 21) - 1, 2.0 ** -21

    def to_unit(bits: torch.Tensor) -> torch.Tensor:   # +0.5: never exactly 0 or 1 (log, pow)
        return bits.to(torch.float32).add_(0.5).mul_(scale)

    return to_unit(_srl(x, 43)), to_unit((x >> 22) & mask), to_unit(x & mask)


def _log_gamma_variates(shape: float, counter: torch.Tensor, key: int, which: int) -> torch.Tensor:
    """log of Gamma(shape, 1) variates, one per counter (Marsaglia & Tsang 2000, vectorised).

    ``which`` (0 or 1) picks the variates' streams. Rejected elements are redrawn from fresh
    streams (one per round), only those. Shapes < 1 use
    the boost Gamma(a) = Gamma(a + 1) * U^(1/a), kept in log space so tiny shapes cannot underflow.
    The test is written as 3 log1p(cx) - cx(3 + 3cx + c²x²) = log v - (v - 1), which float32 holds
    without the cancellation of the textbook d - dv + d log v.
    """
    boost = shape < 1.0
    d = (shape + 1.0 if boost else shape) - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(counter.shape, dtype=torch.float32, device=counter.device)
    todo = None                                            # None: every element (round 0 skips indexing)
    for rnd in range(_MAX_ROUNDS):
        cnt = counter if todo is None else counter[todo]
        u1, u2, u3 = _uniforms(cnt, _stream_key(key, (which * _MAX_ROUNDS + rnd) * 2))
        cx = u1.log_().mul_(-2.0).sqrt_().mul_(torch.cos(u2.mul_(2.0 * math.pi))).mul_(c)  # c * N(0, 1)
        log_v = torch.log1p(cx.clamp(min=-1.0 + 1e-6)).mul_(3.0)
        excess = log_v - cx * (3.0 + cx * (3.0 + cx))            # log v - (v - 1)
        ok = (cx > -1.0) & (u3.log_() < (cx * cx).mul_(0.5 / (c * c)).add_(excess.mul_(d)))
        log_g = log_v.add_(math.log(d))
        if boost:
            u4 = _uniforms(cnt, _stream_key(key, (which * _MAX_ROUNDS + rnd) * 2 + 1))[0]
            log_g.add_(u4.log_().div_(shape))
        if todo is None:
            out.copy_(log_g)
            todo = (~ok).nonzero().squeeze(1)
        else:
            out[todo[ok]] = log_g[ok]
            todo = todo[~ok]
        if todo.numel() == 0:
            return out
    raise RuntimeError(f"Gamma sampler did not converge in {_MAX_ROUNDS} rounds (shape={shape})")


def beta_noise(seed: int, rows: torch.Tensor, samples: int, latent_dim: int, a: float, b: float,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """ε with every entry ~ Beta(a, b), a pure function of (seed, row, sample, dim).

    Parameters
    ----------
    seed : int
        Non-negative seed.
    rows : (n,) int64 tensor
        The source images' rows in the caller's image array (< ``MAX_ROWS``); they key the noise.
    samples : int
        Q, perturbations per source (at most ``MAX_SAMPLES_PER_IMAGE``).
    latent_dim : int
        k (at most ``MAX_LATENT_DIM``).

    Returns
    -------
    (n, samples, latent_dim) float32 tensor on ``device``.
    """
    device = torch.device(device)
    if device.type == "mps":      # MPS's int64 bit operations are patchy: draw on the CPU, copy once
        return beta_noise(seed, rows.cpu(), samples, latent_dim, a, b, "cpu").to(device)
    rows = rows.to(device=device, dtype=torch.int64)
    counter = ((rows.view(-1, 1, 1) << (_Q_BITS + _DIM_BITS))
               + (torch.arange(samples, device=device).view(1, -1, 1) << _DIM_BITS)
               + torch.arange(latent_dim, device=device).view(1, 1, -1))
    counter = counter.reshape(-1)
    key = _mix64_int(int(seed) * 0x100000001B3 + 0x5EED)
    log_x = _log_gamma_variates(float(a), counter, key, 0)
    log_y = _log_gamma_variates(float(b), counter, key, 1)
    # X / (X + Y) = 1 / (1 + exp(log Y - log X)), which cannot overflow. Not torch.sigmoid: its
    # vectorised and scalar (tensor tail) paths round differently, so ε would depend on the chunk size.
    eps = torch.exp(log_y.sub_(log_x)).add_(1.0).reciprocal_()
    return eps.view(rows.shape[0], samples, latent_dim)
