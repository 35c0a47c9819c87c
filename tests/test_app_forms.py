"""Job forms: never started by Enter, every setting checked before a job starts with the message beside its
field, and finished results stay visible whatever is typed."""

import pytest

from defuse.ui.setup import flaw_problem


def _form_protos(at):
    """Every form on the page as its proto (AppTest keeps a form's settings in its block proto)."""
    out = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "form") and proto.HasField("form"):
            out.append(proto.form)
        for child in getattr(node, "children", {}).values():
            walk(child)
    walk(at._tree)
    return out


@pytest.mark.parametrize("page", ["identify", "correct", "explore", "setup"])
def test_enter_in_a_job_form_submits_it_with_its_checks(page, run_page, empty_project, demo_done):
    # Enter used to do nothing and say nothing (issue 23): now it is the form's button, every field checked first
    at = run_page(page, empty_project if page == "setup" else demo_done)
    if page == "setup":                               # the training forms show once "train" is picked
        _train_forms(at)
    forms = _form_protos(at)
    assert len(forms) >= (2 if page == "setup" else 1)
    assert all(f.enter_to_submit for f in forms), [f.form_id for f in forms]


def test_a_bad_lambda_list_keeps_the_finished_results_and_names_the_field(run_page, demo_done, started):
    at = run_page("correct", demo_done)
    assert any(s.value == "Trade-off" for s in at.subheader)
    at.text_input[0].input("0.1, x")
    next(b for b in at.button if b.label.startswith("Run the sweep")).click().run()
    assert started == [] and not at.exception
    assert "Not started: the λ values must be" in at.error[0].value
    assert any(s.value == "Trade-off" for s in at.subheader) and any(s.value == "Export" for s in at.subheader)


@pytest.mark.parametrize("text, words", [("6:x", "looks like CLASS:FRACTION"), ("6:1.5", "fraction in [0, 1]"),
                                         ("12:0.5", "class 12 does not exist: this data has classes 0 to 9")])
def test_a_bad_flaw_is_refused_before_the_job(text, words):
    assert words in flaw_problem(text, 10)
    assert flaw_problem("6:0.15, 2:0.5", 10) is None and flaw_problem("", 10) is None


def test_the_setup_page_refuses_a_bad_flaw_beside_the_field(run_page, empty_project, started):
    at = run_page("setup", empty_project)
    radio = at.radio(key="clf-source")
    radio.set_value(next(o for o in radio.options if o.startswith("Train"))).run()
    field = next(t for t in at.text_input if t.label.startswith("Plant a flaw"))
    field.input("12:0.5")
    next(b for b in at.button if b.label == "Train the classifier").click().run()
    assert started == [] and "class 12 does not exist" in at.error[0].value


# --- out-of-range numbers: named beside their field, no job -------------------------------------------------
def _under(at, label: str):
    """The element right under the number field whose label starts with ``label`` (None: nothing there)."""
    def walk(node):
        kids = list(getattr(node, "children", {}).values())
        for i, kid in enumerate(kids):
            if getattr(kid, "type", None) == "number_input" and kid.label.startswith(label):
                return kids[i + 1] if i + 1 < len(kids) else None
            found = walk(kid)
            if found is not None:
                return found
        return None
    return walk(at._tree)


def _train_forms(at):
    """Pick "Train one here" for the classifier and the VAE: the Setup page's training forms show."""
    for radio in at.radio:
        train = [o for o in radio.options if o.startswith("Train")]
        if train:
            radio.set_value(train[0])
    at.run()


# page, the form's number field, a value out of its range, the form's button, the message under the field
OUT_OF_RANGE = [
    ("identify", "Q — perturbations per image", 0, "Run identify",
     "Not started: Q must be a whole number from 1 to 1,048,576; you typed 0. Type a value from 1 to 1,048,576"),
    ("identify", "Noise scale", 0.0, "Run identify",
     "Not started: Noise scale must be a number above 0 and at most 1000; you typed 0. Type a value above 0 and at "
     "most 1000"),
    ("correct", "Learning rate (Adam)", 2000.0, "Run the sweep",
     "Not started: Learning rate must be a number above 0 and at most 1000; you typed 2000. Type a value above 0 and "
     "at most 1000"),
    ("explore", "ε — weight threshold", 1.0, "Run distillation",
     "Not started: ε must be a number from 0 to below 1; you typed 1. Type a value from 0 to below 1"),
    ("explore", "Codes projected at most", 5, "Compute the PCA map",
     "Not started: Codes projected at most must be a whole number from 10 to 100,000,000; you typed 5."),
    ("setup", "Epochs (paper: 5)", 0, "Train the classifier",
     "Not started: Epochs must be a whole number from 1 to 10,000; you typed 0."),
    ("setup", "Latent dimensions", 0, "Train the β-VAE",
     "Not started: Latent dimensions must be a whole number from 1 to 4,096; you typed 0."),
    # a fraction in a whole-number field is refused, never rounded (issue 23: "1.5" epochs started a 1-epoch job)
    ("setup", "Epochs (paper: 5)", 1.5, "Train the classifier",
     "Not started: Epochs must be a whole number from 1 to 10,000; you typed 1.5. Type a whole number"),
    ("correct", "Epochs per λ", 1.5, "Run the sweep",
     "Not started: Epochs per λ must be a whole number from 1 to 10,000; you typed 1.5."),
    ("identify", "Q — perturbations per image", 2.5, "Run identify",
     "Not started: Q must be a whole number from 1 to 1,048,576; you typed 2.5."),
]


@pytest.mark.parametrize("page, field, bad, button, message", OUT_OF_RANGE, ids=[c[1] for c in OUT_OF_RANGE])
def test_an_out_of_range_number_is_named_beside_its_field_and_starts_nothing(
        page, field, bad, button, message, run_page, empty_project, demo_done, started):
    at = run_page(page, empty_project if page == "setup" else demo_done)
    if page == "setup":
        _train_forms(at)
    box = next(n for n in at.number_input if n.label.startswith(field))
    assert box.min is None and box.max is None       # no clamp: what is typed reaches the check, not a red border
    box.set_value(bad)
    next(b for b in at.button if b.label.startswith(button)).click().run()
    assert not at.exception and started == []
    under = _under(at, field)
    assert under is not None and under.type == "error" and under.value.startswith(message), under
    assert next(n for n in at.number_input if n.label.startswith(field)).value == bad   # the typed value stays


def test_a_number_fields_message_gives_its_range_and_the_fix():
    from defuse.ui.fields import NumberField

    def problem(value, low, high, whole=True):
        return NumberField("Q", value, low, high, note=None, whole=whole).problem()
    assert problem(5, 1, 10) is None and problem(1, 1, 10) is None and problem(10, 1, 10) is None  # inclusive
    assert problem(0, 1, None) == "Q must be a whole number of at least 1; you typed 0. Type a value of at least 1"
    assert problem(2.5, None, 1.0, whole=False) == ("Q must be a number of at most 1; you typed 2.5. "
                                                    "Type a value of at most 1")
    assert problem(None, 1, 10) == "Q is empty: type a whole number from 1 to 10"
    assert problem(None, None, None) == "Q is empty: type a whole number"
    assert problem(1.5, 1, 10) == ("Q must be a whole number from 1 to 10; you typed 1.5. "
                                   "Type a whole number from 1 to 10")
    assert problem(2.0, 1, 10) is None


# --- a done step: "Run again" is secondary and asks to confirm what becomes stale (issue 23, point 8) ----------
@pytest.mark.parametrize("page, step, first, stale", [
    ("explore", "distill", "Run distillation", "Label, Correct, Export will become stale"),
    ("identify", "identify", "Run identify", "Distill, Label, Correct, Export will become stale"),
    ("correct", "correct", "Run the sweep", "Export will become stale")])
def test_a_done_step_runs_again_only_when_confirmed(page, step, first, stale, run_page, demo_done, fresh_demo,
                                                     started):
    at = run_page(page, demo_done)
    button = next(b for b in at.button if b.label.startswith(first))
    assert button.label == f"{first} again" and button.proto.type == "secondary"
    box = at.checkbox(key=f"again-{step}")
    assert stale in box.label
    button.click().run()
    assert started == [] and any(e.value.startswith("Not started: tick the box above") and stale.split(" will")[0]
                                 in e.value for e in at.error)
    at.checkbox(key=f"again-{step}").check()
    next(b for b in at.button if b.label.startswith(first)).click().run()
    assert [s for s, _ in started] == [step]


def test_a_first_run_is_the_primary_button_without_a_box(run_page, project_copy):
    import shutil

    root = project_copy("no-distill")
    for rel in ("distill",):
        shutil.rmtree(root / rel)
    at = run_page("explore", root)
    button = next(b for b in at.button if b.label.startswith("Run distillation"))
    assert button.label == "Run distillation" and button.proto.type == "primary"
    assert not [c for c in at.checkbox if c.key == "again-distill"]
