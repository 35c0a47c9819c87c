"""How the Explore map draws its points: one colour per confusion (source → label), the scenarios of one confusion
as shades and symbols of it, names that tell them apart, training images in a trace of their own, and the same
colours and numeric order in the WebGL map and the thumbnail map (issue 23)."""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

OUTSIDE = -1    # failures outside any scenario (weight ≤ ε)
TRAINING = -2   # training images (their codes, not failures)
SHADES = (0.45, 0.62, 0.30, 0.74, 0.22)   # lightness of a confusion's 1st, 2nd, … scenario
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "triangle-down")
GREY_OUTSIDE, GREY_TRAINING = "#9a9a9a", "rgba(150,150,150,0.35)"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Category:
    """One legend entry of the map: a scenario, the failures outside any, the training images, or a label."""

    key: int        # scenario id, OUTSIDE, TRAINING, or a class index
    name: str       # the legend's words
    color: str      # "#rrggbb" or rgba
    symbol: str     # plotly marker symbol
    group: str      # the confusion "6→0" (the legend groups by it), or "" for the greys


def _hue_color(hue: float, shade: int) -> str:
    r, g, b = colorsys.hls_to_rgb(hue, SHADES[shade % len(SHADES)], 0.85)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def scenario_categories(pairs: Mapping[int, Optional[tuple]], sizes: Mapping[int, int],
                        names: Sequence | None = None) -> list[Category]:
    """The map's legend, in order: confusions by (source, label), each one's scenarios largest first, named
    "6→0 a (#3)"; then the failures outside any scenario; then the training images.

    ``pairs``: scenario → (source class, label) of its failures' most common confusion (None: none).
    ``names``: class names (default: the class indices).
    """
    def word(c) -> str:
        return str(names[c]) if names is not None and c < len(names) else str(c)

    groups: dict[tuple, list[int]] = {}
    for j, pair in pairs.items():
        groups.setdefault(tuple(pair) if pair is not None else (10**9, 10**9), []).append(j)
    out = []
    for g, (pair, members) in enumerate(sorted(groups.items())):
        hue = (g * 0.381966) % 1.0   # golden-angle hues: neighbouring confusions far apart
        confusion = "–" if pair[0] == 10**9 else f"{word(pair[0])}→{word(pair[1])}"
        members = sorted(members, key=lambda j: (-int(sizes.get(j, 0)), j))
        for i, j in enumerate(members):
            letter = f" {LETTERS[i % len(LETTERS)]}" if len(members) > 1 else ""
            out.append(Category(j, f"{confusion}{letter} (#{j})", _hue_color(hue, i), SYMBOLS[i % len(SYMBOLS)],
                                confusion))
    out.append(Category(OUTSIDE, "failures outside any scenario (weight ≤ ε)", GREY_OUTSIDE, "x", ""))
    out.append(Category(TRAINING, "training images (not failures)", GREY_TRAINING, "circle", ""))
    return out


def value_categories(values: Sequence[int], what: str, names: Sequence | None = None) -> list[Category]:
    """Colour by a class (true label, prediction): one colour per class, in numeric order."""
    present = sorted({int(v) for v in values})
    return [Category(v, f"{what} {names[v] if names is not None and v < len(names) else v}",
                     _hue_color((v * 0.381966) % 1.0, 0), "circle", "") for v in present]


def point_keys(scenario, is_failure):
    """Each point's scenario category: its scenario, OUTSIDE, or TRAINING (numpy arrays in, out)."""
    import numpy as np

    return np.where(np.asarray(is_failure), np.asarray(scenario), TRAINING)
