"""Selections and maps: one tie-break everywhere, scenario names from real failure pairs, diverse selections,
a palette with enough distinct non-grey colours, and a legend away from the toolbar."""

import colorsys

import numpy as np

from defuse.ui.charts import MAP_COLORS, latent_map
from defuse.ui.explore import diverse_rows
from defuse.ui.ranking import top_counts, top_pairs


def test_ties_go_to_the_smallest_label_like_the_vote_rules():
    assert top_counts(np.array([0, 0, 0, 5, 0, 5, 0, 0, 0, 1])) == "3 (45%), 5 (45%)"
    assert top_counts(np.array([2, 2, 2]), k=3) == "0 (33%), 1 (33%), 2 (33%)"


def test_a_scenario_is_named_by_its_most_common_failure_pair_never_x_to_x():
    # scenario 0: true 3 is its most common source label and 3 its most common prediction, but no failure is 3→3
    assignment = np.array([0, 0, 0, 0, 0, 1, -1])
    true = np.array([3, 3, 3, 5, 5, 2, 1])
    pred = np.array([8, 9, 7, 3, 3, 7, 0])
    assert top_pairs(assignment, true, pred, n_scenarios=3, n_classes=10) == [(5, 3), (2, 7), None]


def test_a_selection_shows_at_most_three_per_source_from_as_many_sources_as_possible():
    source = np.array([0] * 40 + [1] * 5 + [2] * 2)
    picked = diverse_rows(list(range(47)), source, k=48)
    counts = np.bincount(source[picked])
    assert counts.tolist() == [3, 3, 2]
    assert diverse_rows(list(range(47)), source, k=4) == [0, 1, 40, 45]


def test_the_palette_has_48_distinct_saturated_colours():
    assert len(set(MAP_COLORS)) == 48
    for c in MAP_COLORS:
        r, g, b = (int(c[i:i + 2], 16) / 255 for i in (1, 3, 5))
        assert colorsys.rgb_to_hls(r, g, b)[2] > 0.5          # saturated: none reads as the grey of "outside"


def test_the_legend_sits_below_the_plot_away_from_the_toolbar():
    coords = np.random.default_rng(0).normal(size=(6, 2))
    fig = latent_map(coords, np.array([0, 0, 1, 1, 1, 1], bool), np.arange(6), np.array([-1, -1, 0, 0, 1, -1]),
                     {-1: "outside", 0: "#0: 3→8", 1: "#1: 5→3"})
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0
