"""The Explore map shows groups (issue 23, points 3 and 4): one colour per confusion (source → label), its
scenarios as shades and symbols, names that tell them apart, training images in a trace and legend entry of their
own, the legend clear of the toolbar, the same colours and order in the WebGL map and the thumbnail map."""

import json

from defuse.ui import map_style

PAIRS = {0: (9, 7), 1: (6, 0), 2: (9, 7), 3: (6, 0), 4: (6, 0), 5: (3, 5), 6: None}
SIZES = {0: 50, 1: 10, 2: 80, 3: 300, 4: 30, 5: 5, 6: 2}


def _hue(color: str) -> float:
    import colorsys

    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hls(r, g, b)[0]


def test_one_colour_per_confusion_with_its_scenarios_as_shades_and_symbols():
    cats = map_style.scenario_categories(PAIRS, SIZES)
    by = {c.key: c for c in cats}
    sixes = [by[3], by[1], by[4]]
    assert by[3].name == "6→0 a (#3)" and by[4].name == "6→0 b (#4)" and by[1].name == "6→0 c (#1)"  # by size
    assert len({round(_hue(c.color), 3) for c in sixes}) == 1                 # one hue for the confusion
    assert len({c.color for c in sixes}) == 3 and len({c.symbol for c in sixes}) == 3   # told apart
    assert round(_hue(by[0].color), 3) != round(_hue(by[3].color), 3)        # 9→7 is another colour
    assert by[5].name == "3→5 (#5)"                                           # alone: no letter
    names = [c.name for c in cats]
    assert len(names) == len(set(names))                                      # every name distinct
    assert names[-2:] == ["failures outside any scenario (weight ≤ ε)", "training images (not failures)"]
    assert [c.group for c in cats[:6]] == ["3→5", "6→0", "6→0", "6→0", "9→7", "9→7"]   # numeric order


def test_the_explore_map_in_both_modes(run_page, demo_done):
    at = run_page("explore", demo_done)
    assert not at.exception
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)               # thumbnails on hover
    scale = spec["encoding"]["color"]["scale"]
    at.toggle(key="map-thumbs").set_value(False).run()
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    traces = [t for t in fig["data"] if t.get("name")]
    legend = [t["name"] for t in sorted(traces, key=lambda t: t["legendrank"])]
    assert legend == scale["domain"]                                          # same entries, same order
    colours = {t["name"]: t["marker"]["color"] for t in traces}
    assert [colours[n] for n in scale["domain"]] == scale["range"]            # same colours
    training = next(t for t in traces if t["name"] == "training images (not failures)")
    outside = [t for t in traces if t["name"].startswith("failures outside")]
    assert training["x"] and all(t is not training for t in outside)          # its own trace and legend entry
    assert fig["layout"]["legend"]["orientation"] == "h" and fig["layout"]["legend"]["y"] < 0   # below the plot
    assert len(legend) == len(set(legend))
