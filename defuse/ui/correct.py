"""The Correct page: sweep settings, the live λ trade-off chart, the table per λ, model choice and export."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import streamlit as st

from ..cli.jobs import JobState, config_args
from ..correct.headline import beats_every_rival, headline, regression_note
from ..correct.sweep import PAPER_LAMBDAS, CorrectConfig
from ..distill.config import ScenarioDraw
from ..label.provenance import HUMAN
from ..label.purity import mix_words
from ..runtime.settings import SettingError, declared, parse_text
from ..steps.correct import check_failure_sets_fit
from ..steps.label import reviewer_ready
from ..steps.presets import QUICK
from ..steps.purity import mixed_failures
from ..workspace import EXPORTS, MODEL_CARD, MODEL_CARD_MD, SUITE_DIR, SWEEP, Workspace
from . import cache
from .charts import tradeoff_chart
from .estimates import job_time_note
from .fields import refused, setting_field, show_beside
from .jobs import history_metrics
from .rerun import run_again_box

QUICK_LAMBDAS = QUICK.correct.lambdas  # 0.01, 0.1, 1, 10
SWEEPS = {"Quick sweep: λ ∈ {0.01, 0.1, 1, 10}, 2 epochs": (QUICK_LAMBDAS, QUICK.correct.epochs, 128),
          "The paper's 17 λ, 3 epochs (appendix B.2)": (PAPER_LAMBDAS, CorrectConfig().epochs, 256)}
TABLE_COLUMNS = ["kind", "lambda", "epoch", "val_acc", "test_acc", "failure_val_acc", "failure_test_acc"]
REVIEWER_COLUMNS = ["failure_val_acc_reviewer", "failure_test_acc_reviewer"]  # shown when the reviewer labeled
TWO_SIDED_COLUMNS = ["failure_val_fix_rate", "failure_val_collateral"]  # shown when the reviewer read validation
COLUMN_TITLES = {"kind": "model", "lambda": "λ", "val_acc": "validation", "test_acc": "test",
                 "failure_val_acc": "failure val", "failure_test_acc": "failure test",
                 "failure_val_acc_reviewer": "failure val (per sample)",
                 "failure_test_acc_reviewer": "failure test (per sample)",
                 "failure_val_fix_rate": "fix rate (failure val)", "failure_val_collateral": "collateral (failure val)"}


def settings_form(ws: Workspace, n_failing: int) -> list[str] | None:
    """The sweep form; on submit, its CLI arguments (a ValueError names a bad field)."""
    choice = st.radio("Sweep", list(SWEEPS), horizontal=True)
    lams, epochs, samples = SWEEPS[choice]
    job_time_note(ws, "correct", CorrectConfig(lambdas=lams, epochs=epochs))  # warns when over 10 minutes here
    with st.form("correct-settings", enter_to_submit=True):  # Enter = the button: checked, then started
        text = st.text_input("λ values (comma-separated; λ=0, the control, is always added)",
                             ", ".join(f"{v:g}" for v in lams), key=f"lams-{choice}")
        lams_note = st.empty()  # a bad λ list is named here, beside its field
        c = st.columns(4)
        ep = setting_field(c[0], CorrectConfig, "epochs", epochs, label="Epochs per λ (paper: 3 on MNIST)",
                           key=f"ep-{choice}")
        lr = setting_field(c[1], CorrectConfig, "lr", CorrectConfig().lr, label="Learning rate (Adam)", format="%.0e",
                           key=f"lr-{choice}")
        n = setting_field(c[2], ScenarioDraw, "n", samples, label="Samples per scenario and split (paper: 256)",
                          key=f"n-{choice}")
        baseline = c[3].checkbox("Also the baseline (raw adversarial examples)", True, key=f"bl-{choice}")
        per_sample, use_reviewer = reviewer_fields(ws, choice)
        again = run_again_box(ws, "correct")
        go = st.form_submit_button(again.label("Run the sweep"), type=again.button_type)
    if not go or refused(ep, lr, n):
        return None
    try:  # every setting is checked before a job starts; the message stands beside the λ field
        cfg = CorrectConfig(lambdas=parse_lambdas(text), epochs=int(ep.value), lr=float(lr.value),
                            failure_labels="reviewer" if per_sample else "scenario")
    except SettingError as e:
        lams_note.error(f"Not started: {e.words('app')}", icon="⚠️")
        return None
    try:
        check_memory(ws, int(n.value), n_failing)
    except ValueError as e:
        return show_beside(n, e)
    if again.refused():  # every setting is fine: only the confirmation of a re-run is missing
        return None
    args = config_args(cfg) + ["--samples", str(int(n.value))]
    args += [] if baseline else ["--no-baseline"]
    return args + (["--reviewer", "auto"] if use_reviewer or per_sample else [])


DF_LABELS = {"scenario": "One label per scenario: the annotators' (the paper)",
             "reviewer": "Each sample its own label: the automatic reviewer's"}


def reviewer_fields(ws: Workspace, choice: str) -> tuple[bool, bool]:
    """(per-sample D_f labels?, use the automatic reviewer?): the reviewer labels the baseline's examples and
    gives the stricter per-sample accuracy; without it the baseline falls back to the source images' labels."""
    ready = reviewer_ready(ws)
    mixed = mixed_failures(ws, cache.verdicts(ws))
    decided = cache.decided(ws)
    by_people = [j for j in mixed if j in decided and decided[j].decided_by == HUMAN]
    if mixed:  # purity is low: offer each sample's own label; preselect it only where no person gave a label
        names = ws.project["class_names"]
        which = "; ".join(f"#{j} ({mix_words(p, names)})" for j, p in mixed.items())
        st.warning(f"Mixed failure scenarios: {which}. One label per scenario would teach their other samples a "
                   "wrong class. " + (f"A person labeled #{', #'.join(map(str, by_people))}: their label is kept "
                                      "(one label per scenario, preselected); choose per-sample labels below to "
                                      "replace it with the automatic reviewer's, sample by sample."
                                      if by_people else "Per-sample labels are preselected below."))
    c = st.columns(2)
    labels = c[0].selectbox("Labels of the failure samples D_f", list(DF_LABELS), format_func=DF_LABELS.get,
                            index=1 if mixed and not by_people else 0, key=f"dfl-{choice}",
                            help="A scenario sampled at τ=0.5 can mix classes: per-sample "
                            "labels teach each sample its own class (see docs/results.md).")
    note = "" if ready else " (it is trained first: a few minutes on a CPU)"
    use = c[1].checkbox(f"Use the automatic reviewer for the baseline labels and per-sample accuracy{note}",
                        ready, key=f"rev-{choice}")
    return labels == "reviewer", use


def parse_lambdas(text: str) -> tuple:
    """The λ values typed on the page, read as the CLI reads ``--lambdas`` (the one parser: commas or semicolons);
    CorrectConfig checks them."""
    return parse_text(text, declared(CorrectConfig)["lambdas"])


def check_memory(ws: Workspace, n_samples: int, n_failing: int) -> None:
    """Refuse a sample count whose job would exhaust memory, before starting it."""
    d = cache.data(ws)
    check_failure_sets_fit(n_samples, n_failing, d.channels, d.image_size)


def live_chart(state: JobState) -> None:
    """While the sweep runs: one point per finished λ, the λ in progress as its latest epoch."""
    done = history_metrics(state, "lambda")
    epochs = history_metrics(state, "epoch")
    finished = {(r["kind"], r["lambda"]) for r in done}
    running = [r for r in epochs if (r["kind"], r["lambda"]) not in finished][-1:]
    if not done and not running:
        st.caption("The trade-off chart appears when the first λ has finished its first epoch.")
        return
    st.plotly_chart(tradeoff_chart(done + running, x="test"), key=f"live-{len(done)}-{len(epochs)}", width="stretch")
    st.caption(f"{len(done)} λ finished. 'before correction' is marked when the sweep ends.")


def show_headline(ws: Workspace, record: dict) -> None:
    """The chosen model against the λ=0 control and the baseline, in one sentence (a warning when Defuse does
    not beat both)."""
    text = headline(record, n_test_images=len(cache.data(ws).test))
    (st.success if beats_every_rival(record) else st.warning)(text, icon="⚖️")


def render_results(ws: Workspace) -> float | None:
    """The finished sweep: chart, table, and the λ to export (the chosen one preselected)."""
    sweep = ws.load_json(SWEEP)
    x = st.radio("x axis", ["test", "val"], horizontal=True, format_func={"test": "test accuracy",
                                                                          "val": "validation accuracy"}.get)
    rows, chosen, before = sweep["best_per_lambda"], sweep["chosen"], sweep["before"]
    base = [r for r in rows if r["kind"] == "baseline"]
    per_sample = chosen.get("failure_test_acc_reviewer") is not None
    by_reviewer = sweep.get("config", {}).get("failure_labels") == "reviewer"  # then λ was chosen per sample
    st.plotly_chart(tradeoff_chart([r for r in rows if r["kind"] == "defuse"], x=x, before=before, chosen=chosen,
                                   baseline=base, per_sample=by_reviewer), width="stretch")
    show_headline(ws, sweep)
    on = " on the reviewer's per-sample labels" if by_reviewer else ""
    st.caption(f"λ={chosen['lambda']:g} was chosen by the rule “{chosen.get('rule')}”{on}; before correction: test "
               f"{before['test_acc']:.1%}, failure scenarios {before['failure_test_acc']:.1%} (scenario labels).")
    honest = regression_note(chosen, sweep.get("control"), sweep.get("baseline_chosen"))
    if honest:
        st.warning(honest, icon="📉")
    columns = TABLE_COLUMNS + (REVIEWER_COLUMNS if per_sample else [])
    columns += [c for c in TWO_SIDED_COLUMNS if any(r.get(c) is not None for r in rows)]
    table = pd.DataFrame([{**before, "kind": "before"}] + rows).reindex(columns=columns)
    fmt = {COLUMN_TITLES.get(c, c): "{:.1%}" for c in columns[3:]} | {"λ": "{:g}"}
    table = table.rename(columns=COLUMN_TITLES)
    st.dataframe(table.style.format(fmt, na_rep="–"), hide_index=True,
                 width="stretch")
    lams = sorted({float(r["lambda"]) for r in rows if r["kind"] == "defuse"})
    return st.selectbox("Model to export", lams, index=lams.index(float(chosen["lambda"])),
                        format_func=lambda v: f"λ={v:g}" + (" (chosen)" if v == chosen["lambda"] else "")
                        + (" (control: fine-tuned without failure samples)" if v == 0 else ""))


@st.cache_data(max_entries=2, show_spinner="Packing the model…")
def _zip(stamps: tuple) -> bytes:
    """The files of ``stamps`` ((path, name in the zip, size, mtime_ns), …) in one zip: packed once, not on every
    rerun."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, name, _, _ in stamps:
            z.write(path, name)
    return buf.getvalue()


def bundle_files(ws: Workspace, card: dict) -> list[tuple]:
    """(file, its name in the zip) of the export bundle: the model, its card, and the regression suite in suite/."""
    exports, suite = ws.path(EXPORTS), ws.path(SUITE_DIR)
    files = [ws.path(f"{EXPORTS}/{name}") for name in card.get("files", {}).values()]
    files += [ws.path(MODEL_CARD_MD), ws.path(MODEL_CARD)]
    files += sorted(suite.iterdir()) if (suite / "manifest.json").exists() else []
    return [(f, f.relative_to(exports).as_posix()) for f in files if f.is_file()]


def render_export(ws: Workspace) -> None:
    """The exported model: its card and one download (weights, sidecar, card, regression suite) as a zip."""
    card = ws.load_json(MODEL_CARD)
    if ws.step_status("export") == "stale":
        st.warning("This export comes from an earlier sweep: export again to get a model of the current one.")
    exports = ws.path(EXPORTS)
    stamps = tuple((str(f), name, f.stat().st_size, f.stat().st_mtime_ns) for f, name in bundle_files(ws, card))
    st.download_button(f"Download {card['name']} (λ={card['correction']['lambda']:g}) with its model card",
                       _zip(stamps), file_name=f"{card['name']}.zip", mime="application/zip", type="primary")
    st.caption(f"Also saved in the project: {exports}. The zip's `suite/` folder is the regression suite of the "
               "confirmed failure scenarios: `python -m defuse check --suite suite --classifier MODEL` tests any "
               "later checkpoint on them.")
    with st.expander("Model card", expanded=False):
        st.markdown(ws.path(MODEL_CARD_MD).read_text(encoding="utf-8"))
