"""AppTest of the Report page: guard, the Figure 4-style table, galleries, the self-contained HTML export."""


def test_without_failures_the_page_says_what_to_do(run_page, fresh_demo):
    at = run_page("report", fresh_demo)
    assert not at.exception and "needs unrestricted adversarial examples" in at.info[0].value


def test_before_the_sweep_the_report_is_partial(run_page, project_copy):
    root = project_copy("partial")
    for rel in ("correct/sweep.json", "correct/best.json"):
        (root / rel).unlink()
    at = run_page("report", root)
    assert not at.exception and not at.error
    assert "needs the λ sweep" in at.info[0].value
    headers = [s.value for s in at.subheader]
    assert "Labeled scenarios" in headers and "λ trade-off" not in headers


def test_report_content_and_html_export(run_page, project_copy):
    root = project_copy("report")
    at = run_page("report", root)
    assert not at.exception and not at.error
    table = at.markdown[0].value
    assert "| Before fine-tuning |" in table and "| Defuse |" in table and "Control (λ=0" in table
    assert len(at.get("plotly_chart")) == 1
    captions = [c for image in at.get("image") for c in image.captions]
    assert captions[0].startswith("Scenario #0: failure, true label 6 (decided by people: alice, bob, agreement 100%)")
    next(b for b in at.button if b.label == "Build the HTML report").click().run()
    assert not at.exception and not at.error
    html = (root / "exports" / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "Before fine-tuning" in html
    assert "data:image/png;base64," in html and "alt='λ trade-off chart'" in html
    assert "src='http" not in html and 'src="http' not in html and "<script" not in html  # opens offline
    assert len(html.encode()) < 300_000                                         # was 5 MB of inlined plotly.js
    assert "<h2>Decisions</h2>" in html and "alice, bob" in html
    assert len(at.get("download_button")) == 1


def test_every_decided_scenario_is_listed_with_who_decided_notes_and_conflicts(run_page, project_copy):
    from defuse.steps.label import label_store
    from defuse.workspace import Workspace

    root = project_copy("report-decisions")
    with label_store(Workspace(root)) as store:
        store.record(1, "bob", is_failure=True, label=4, note="looks like a 4")   # alice said: not a failure
        for i in range(10):
            store.record(2, "auto-reviewer", is_failure=True, label=3, sample_index=i, reviewer="beef")
    at = run_page("report", root)
    assert not at.exception and "Decisions" in [s.value for s in at.subheader]
    rows = {r["scenario"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert rows[0]["decided by"] == "people" and rows[0]["annotators"] == "alice, bob"
    assert rows[1]["notes"] == "bob: looks like a 4" and "people disagree" in rows[1]["conflicts"]
    assert rows[2]["decided by"] == "automatic reviewer" and rows[2]["reviewer"] == "auto-reviewer (beef)"
    captions = {c.split(":")[0]: c for image in at.get("image") for c in image.captions}   # the same in the gallery
    assert "decided by the automatic reviewer auto-reviewer (beef)" in captions["Scenario #2"]
    assert "annotator(s)" not in captions["Scenario #2"]
    assert "conflicts: people disagree — alice: not a failure; bob: failure, true label 4" in captions["Scenario #1"]
