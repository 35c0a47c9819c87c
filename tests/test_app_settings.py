"""The Identify page's setting fields, made from their one declaration (defuse/runtime/settings.py): a negative
and a huge value are answered beside the field, no job starts and nothing is clamped. (A number field cannot hold
NaN, inf or nothing: Streamlit keeps its last number; the JSON a page sends is checked like ``--config`` in
tests/test_settings.py.)"""

from __future__ import annotations

from defuse.identify.config import IdentifyConfig
from defuse.runtime.settings import declared

# the page's field (label start) -> the IdentifyConfig setting it sets
FIELDS = {"Q — perturbations": "samples_per_image", "M — failures": "max_per_image", "Images searched": "subset",
          "a of Beta": "beta_a", "b of Beta": "beta_b", "Decodes per batch": "batch_size", "Noise scale": "noise_scale"}


def test_every_identify_field_refuses_bad_numbers_beside_it(run_page, demo_done, started):
    at = run_page("identify", demo_done)
    at.checkbox(key="again-identify").check()  # identify is done: a re-run must be confirmed (issue 23, point 8)
    for label, name in FIELDS.items():
        spec = declared(IdentifyConfig)[name]
        box = next(n for n in at.number_input if n.label.startswith(label))
        assert box.min is None and box.max is None     # the declaration's bounds are checked, not clamped
        good = box.value
        bad = [-1, 10**15] if spec.kind is int else [-1.0, 1e300]
        for value in bad:
            next(n for n in at.number_input if n.label.startswith(label)).set_value(value)
            next(b for b in at.button if b.label.startswith("Run identify")).click().run()
            assert not at.exception and started == [], (label, value)
            words = spec.label.strip("“”")
            assert any(e.value.startswith(f"Not started: {words} ") for e in at.error), (label, value, at.error)
        next(n for n in at.number_input if n.label.startswith(label)).set_value(good)
    at.run()


def test_the_correct_pages_sample_count_refuses_bad_numbers_beside_it(run_page, demo_done, started):
    """ScenarioDraw.n, the one field of ScenarioDraw, ReviewerConfig, SuiteConfig and DatasetSpec that a page has
    as a number (the others are choices, paths or CLI-only: tests/test_settings.py feeds them through the CLI)."""
    at = run_page("correct", demo_done)
    label = "Samples per scenario and split"
    for value in (-1, 10**15, 2.5):
        next(n for n in at.number_input if n.label.startswith(label)).set_value(value)
        next(b for b in at.button if b.label.startswith("Run the sweep")).click().run()
        assert not at.exception and started == [], value
        assert any(e.value.startswith(f"Not started: {label} ") for e in at.error), (value, at.error)
