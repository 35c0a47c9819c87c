"""Settings travel typed and are read once: a page hands a job its frozen config as JSON, the CLI builds
the same config from it (validated once, by the config); a workspace parses its dataset spec once; one
process-wide cache holds the data."""

import json

import pytest

from defuse.cli import commands_correct, commands_pipeline
from defuse.cli.args import read_config
from defuse.cli.jobs import config_args
from defuse.cli.main import main
from defuse.correct.sweep import PAPER_LAMBDAS, CorrectConfig
from defuse.data.datasets import DatasetSpec
from defuse.identify.search import IdentifyConfig
from defuse.steps import correct as correct_steps
from defuse.steps import project
from defuse.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    return Workspace.create(tmp_path / "proj", {"dataset": DatasetSpec(source="digits").to_dict()})


@pytest.fixture
def captured(monkeypatch):
    """Replace the identify and correct steps by one that keeps what the command handed it."""
    seen = {}

    def step(ws, cfg, **options):
        seen.update(cfg=cfg, options=options)
        raise ValueError("captured")  # main() answers it with exit code 2: nothing after the step runs

    monkeypatch.setattr(correct_steps, "correct_step", step)
    monkeypatch.setattr(commands_pipeline, "identify_step", step)
    # the refusals before any work need models and labels this empty project lacks (tests/test_refusals.py)
    monkeypatch.setattr(commands_pipeline, "check_identify_inputs", lambda *a, **k: None)
    monkeypatch.setattr(commands_correct, "check_correct_inputs", lambda *a, **k: None)
    return seen


def test_a_lambda_of_12345678_reaches_the_sweep_exactly(ws, captured):
    assert float(f"{12345678.0:g}") == 12345700.0  # what formatting λ for argv used to do
    cfg = CorrectConfig(lambdas=(12345678.0, 1e-10, 0.3), epochs=2, lr=3e-4, seed=5)
    assert main(["correct", "-w", str(ws.root), *config_args(cfg), "--quiet"]) == 2
    assert captured["cfg"] == cfg and captured["cfg"].lambdas == (12345678.0, 1e-10, 0.3)
    assert captured["options"]["draw"].seed == 5  # the failure sets draw with the config's seed


def test_the_jobs_config_is_validated_once(ws, captured, monkeypatch):
    checked = []  # the λ of every CorrectConfig built, as given
    check = CorrectConfig.__post_init__
    monkeypatch.setattr(CorrectConfig, "__post_init__",
                        lambda self: (checked.append(tuple(self.lambdas)), check(self))[1])
    cfg_json = json.dumps({"lambdas": [0.5, 2.0], "epochs": 1})
    assert main(["correct", "-w", str(ws.root), "--config", cfg_json, "--quiet"]) == 2
    assert captured["cfg"].lambdas == (0.5, 2.0) and checked.count((0.5, 2.0)) == 1
    assert set(checked) <= {(0.5, 2.0), PAPER_LAMBDAS}  # the only other one: the defaults, for --help


def test_config_fields_replace_flags_and_the_other_flags_stay(ws, captured):
    assert main(["identify", "-w", str(ws.root), "--samples-per-image", "7", "--max-per-image", "9",
                 "--config", '{"max_per_image": 3, "beta_a": 75}', "--quiet"]) == 2
    assert captured["cfg"] == IdentifyConfig(samples_per_image=7, max_per_image=3, beta_a=75.0)


def test_a_config_file_works_like_inline_json(ws, captured, tmp_path):
    path = tmp_path / "identify.json"
    path.write_text(json.dumps({"samples_per_image": 11, "subset": 40}))
    assert main(["identify", "-w", str(ws.root), "--config", str(path), "--quiet"]) == 2
    assert captured["cfg"] == IdentifyConfig(samples_per_image=11, subset=40)


def test_a_bad_value_in_the_config_is_named_by_the_config(ws, captured, capsys):
    assert main(["identify", "-w", str(ws.root), "--config", '{"samples_per_image": 0}', "--quiet"]) == 2
    assert "samples_per_image must be an integer in [1," in capsys.readouterr().err and "cfg" not in captured


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", r"--config is not valid JSON \(.* at line 1, column 2\)"),
    ("[1, 2]", "--config must be a JSON object of IdentifyConfig fields; got list"),
    ('{"samples": 3}', r"unknown IdentifyConfig fields \['samples'\]; valid fields: \['batch_size'"),
    ("no/such/file.json", "--config must be a JSON object or the path of a file holding one; 'no/such/file.json'"),
])
def test_bad_config_text_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        read_config(text, IdentifyConfig)


@pytest.mark.parametrize("command", ["identify", "distill", "correct", "train-classifier", "train-vae", "embed"])
def test_every_step_with_a_config_accepts_config(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0 and "--config FILE_OR_JSON" in capsys.readouterr().out


def test_the_dataset_spec_is_parsed_once_per_version_of_project_json(ws):
    spec = ws.dataset
    assert spec == DatasetSpec(source="digits") and ws.dataset is spec
    ws.update_project(dataset=DatasetSpec(source="digits", seed=3).to_dict())
    assert ws.dataset.seed == 3 and ws.dataset is not spec
    other = Workspace(ws.root)  # another handle on the same folder sees the change too
    assert other.dataset.seed == 3


def test_one_data_cache_serves_every_handle_on_the_project(ws):
    data = project.load_data(ws)
    assert project.load_data(Workspace(ws.root)) is data  # steps and the app's pages share one copy
    again = project.init_project(ws.root, ws.dataset, force=True)  # init reloads the data it checks
    assert project.load_data(again) is not data and len(project.load_data(again).train) == len(data.train)
