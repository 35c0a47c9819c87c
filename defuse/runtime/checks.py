"""Checks on settings that every layer shares: one home for "is this an integer in range?"."""

from __future__ import annotations

import numbers


def is_int(value) -> bool:
    """True for Python and numpy integers, False for bools (``True`` is not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    """``int(value)``, or ValueError naming ``name``, the allowed range and the value got."""
    if not is_int(value) or value < lo or (hi is not None and value > hi):
        allowed = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
        raise ValueError(f"{name} must be {allowed}; got {value!r}")
    return int(value)
