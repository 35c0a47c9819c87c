"""The words a message uses for a setting or an option come from their declarations (defuse.runtime.words): the
CLI's ``--flag`` on the command line, the page's label in the app, and no message is rewritten after the fact."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from defuse.runtime import words
from defuse.runtime.words import OPTIONS, audience, named, option

PACKAGE = Path(__file__).resolve().parents[1] / "defuse"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
# A whole command in backticks (`python -m defuse label --reviewer auto`, `ray start --head`) is quoted as typed:
# it is a command line in both audiences, so its flags stay.
QUOTED = re.compile(r"`[^`]*`")


@pytest.fixture()
def app_words(monkeypatch):
    """The app's audience, as a job the app started has it."""
    monkeypatch.setenv(words.ENV, "app")


def _text(node: ast.AST) -> list[str]:
    """The message text under ``node``: each string, an f-string's literal parts joined around its fields. A
    string without a space is a job's argument (``["--tau", "0.1"]``), not a message."""
    if isinstance(node, ast.JoinedStr):
        found = ["".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)]
        found += [t for v in node.values if isinstance(v, ast.FormattedValue) for t in _text(v.value)]
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        found = [node.value]
    else:
        found = [t for child in ast.iter_child_nodes(node) for t in _text(child)]
    return [t for t in found if " " in t.strip()]


def _messages(tree: ast.AST):
    """(line, text) of what a user reads: raised, warned, returned, and a memory check's ``fix``."""
    for node in ast.walk(tree):
        parts = []
        if isinstance(node, (ast.Raise, ast.Return)) and getattr(node, "exc", getattr(node, "value", None)):
            parts = [node.exc if isinstance(node, ast.Raise) else node.value]
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            parts = list(node.args) if name == "warn" else []
            parts += [k.value for k in node.keywords if k.arg == "fix"]
        for part in parts:
            for text in _text(part):
                yield node.lineno, text


def test_no_core_message_writes_a_flag_by_hand():
    """Outside defuse/cli (whose messages are the command line's alone), a flag comes from named() or option()."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for line, text in _messages(ast.parse(path.read_text(), filename=str(path))):
            if FLAG.search(QUOTED.sub("", text)):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text[:80]!r}")
    assert bad == []


def test_the_scan_sees_a_flag_in_each_kind_of_message():
    source = ('def f():\n    raise ValueError(f"lower --samples to {n}")\n'
              'def g():\n    warnings.warn("pass --trust-code")\n    return f"`python -m defuse {x} --x` ok"\n'
              'check_fits(1, what="x", fix="lower --batch-size")\n'
              'def h():\n    return ["--tau", str(tau)]\n')
    flagged = [line for line, text in _messages(ast.parse(source)) if FLAG.search(QUOTED.sub("", text))]
    assert sorted(flagged) == [2, 4, 6]


def test_the_cli_is_the_default_audience_and_a_job_of_the_app_speaks_the_apps(monkeypatch):
    monkeypatch.delenv(words.ENV, raising=False)
    assert audience() == "cli"
    monkeypatch.setenv(words.ENV, "app")
    assert audience() == "app"


def test_a_setting_is_its_flag_on_the_cli_and_its_label_in_the_app(monkeypatch):
    from defuse.distill.config import DistillConfig, ScenarioDraw
    from defuse.identify.config import IdentifyConfig

    monkeypatch.delenv(words.ENV, raising=False)
    cli = [named(ScenarioDraw, "n"), named(IdentifyConfig, "samples_per_image"), named(IdentifyConfig, "chunk_images")]
    assert cli == ["--samples", "--samples-per-image", "--chunk-images"]
    monkeypatch.setenv(words.ENV, "app")
    app = [named(ScenarioDraw, "n"), named(IdentifyConfig, "samples_per_image"), named(DistillConfig, "max_samples")]
    assert app == ["“Samples per scenario and split”", "Q", "“Codes fitted at most”"]
    assert named(IdentifyConfig, "chunk_images") == "--chunk-images"   # no field on a page: its flag


def test_each_option_has_its_flag_and_the_app_words_where_a_page_has_it(monkeypatch):
    assert all(o.cli.startswith("--") or o.cli.startswith("no --") for o in OPTIONS.values())
    monkeypatch.setenv(words.ENV, "app")
    assert option("accept-low-fidelity") == "the “Search with this VAE anyway” box"
    assert option("only") == "--only"                                   # the CLI's alone: its flag
    monkeypatch.setenv(words.ENV, "cli")
    assert option("accept-low-fidelity") == "--accept-low-fidelity"


def test_a_memory_check_names_what_to_lower_for_its_reader(monkeypatch):
    from defuse.steps.correct import check_failure_sets_fit

    def message():
        with pytest.raises(ValueError) as e:
            check_failure_sets_fit(10**9, 10, 3, 128)
        return str(e.value)

    monkeypatch.setenv(words.ENV, "cli")
    assert message().endswith("GiB are free: lower --samples")
    monkeypatch.setenv(words.ENV, "app")
    assert message().endswith("GiB are free: lower “Samples per scenario and split”")


def test_the_identify_memory_check_names_the_pages_fields_in_the_app(monkeypatch):
    from defuse.identify.checks import check_search_fits
    from defuse.identify.config import IdentifyConfig

    cfg = IdentifyConfig(samples_per_image=100_000, chunk_images=10_000, batch_size=1 << 20)
    for where, fix in (("cli", "lower --batch-size, --chunk-images or --samples-per-image"),
                       ("app", "lower “Decodes per batch” or Q")):
        monkeypatch.setenv(words.ENV, where)
        with pytest.raises(ValueError, match="GiB of memory") as e:
            check_search_fits(cfg, latent_dim=64, image_numel=3 * 128 * 128, device=None)
        assert str(e.value).endswith(fix), (where, str(e.value))


def test_the_fidelity_gate_and_an_option_of_the_cli_alone(monkeypatch, tmp_path):
    from defuse.steps import fidelity

    monkeypatch.setattr(fidelity, "workspace_gate", lambda ws: "The β-VAE is too blurry to search with.")
    for where, words_ in (("cli", "use --accept-low-fidelity"), ("app", "use the “Search with this VAE anyway” box")):
        monkeypatch.setenv(words.ENV, where)
        with pytest.raises(ValueError) as e:
            fidelity.check_fidelity(None, accept_low_fidelity=False)
        assert words_ in str(e.value) and ("--" in str(e.value)) == (where == "cli")
    from defuse.steps.demo_precomputed import build_precomputed

    monkeypatch.setenv(words.ENV, "app")
    with pytest.raises(ValueError, match="^--only takes the groups"):
        build_precomputed(only=["nothing"], out=tmp_path)


def test_a_job_the_app_starts_speaks_the_apps_words(monkeypatch, tmp_path):
    """start_job hands its starter's audience to the job's process (its environment)."""
    import subprocess

    from defuse.cli import jobs
    from defuse.workspace import Workspace

    seen = []

    class Proc:
        pid = 0

    def popen(cmd, **kw):
        seen.append(kw["env"])
        return Proc()
    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(jobs, "job_state", lambda ws, job_id: None)
    ws = Workspace(tmp_path / "p")
    ws.root.mkdir()
    monkeypatch.delenv(words.ENV, raising=False)
    jobs.start_job(ws, "identify", [])
    monkeypatch.setattr(words, "_app_when", [lambda: True])            # what defuse.ui.boot does on a page
    ws.path(jobs.LOCK).unlink()
    jobs.start_job(ws, "identify", [])
    assert [env[words.ENV] for env in seen] == ["cli", "app"]


def test_a_failed_job_records_its_message_in_its_own_words(monkeypatch, tmp_path, capsys):
    """What the page shows of a job's error is what the job recorded: with the app's audience, a label."""
    import json

    from defuse.cli.main import main

    for where, name in (("cli", "--samples-per-image"), ("app", "Q")):
        monkeypatch.setenv(words.ENV, where)
        events = tmp_path / f"{where}.jsonl"
        assert main(["identify", "-w", str(tmp_path / "none"), "--samples-per-image", "0", "--quiet",
                     "--progress-jsonl", str(events)]) == 2
        error = [json.loads(line) for line in events.read_text().splitlines()][-1]
        assert error["event"] == "error" and error["message"].startswith(f"{name} must be an integer"), error
        # the printed transcript (a job's log) names the flag as typed, whoever reads the recorded message
        assert capsys.readouterr().err.startswith("error: --samples-per-image must be")
