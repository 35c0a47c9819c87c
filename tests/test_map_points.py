"""The Explore map's points (classifier's view, filters, margin order, export) and `select-export`."""

import csv
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from defuse.cli.main import main
from defuse.steps.distill import load_scenarios
from defuse.steps.identify import load_failures
from defuse.steps.map_points import (
    MapPoints,
    PointFilter,
    by_margin,
    classify,
    point_images,
    selection_csv,
    selection_zip,
    workspace_points,
)
from defuse.steps.project import load_classifier
from defuse.workspace import Workspace


def _toy() -> MapPoints:
    return MapPoints(is_failure=np.array([True, True, False, True]), row=np.array([0, 5, 2, 7]),
                     x=np.array([0.0, 1.0, 2.0, 3.0], np.float32), y=np.zeros(4, np.float32),
                     true_label=np.array([6, 6, 1, 4]), prediction=np.array([5, 0, 1, 9]),
                     confidence=np.array([0.9, 0.55, 0.99, 0.7], np.float32),
                     margin=np.array([0.85, 0.1, 0.98, 0.4], np.float32), scenario=np.array([0, 0, -1, 1]))


def test_filters_keep_what_they_name():
    p = _toy()
    assert PointFilter().mask(p).all()
    assert PointFilter(kinds=("failure",), true_labels=(6,)).mask(p).tolist() == [True, True, False, False]
    assert PointFilter(predictions=(1, 9), max_confidence=0.8).mask(p).tolist() == [False, False, False, True]
    assert PointFilter(scenarios=(0,), min_confidence=0.6).mask(p).tolist() == [True, False, False, False]
    assert p.take(by_margin(p)).ids == ["failure-5", "failure-7", "failure-0", "train-2"]
    with pytest.raises(ValueError, match="0 <= min <= max <= 1"):
        PointFilter(min_confidence=0.8, max_confidence=0.2)
    with pytest.raises(ValueError, match="kinds must be among"):
        PointFilter(kinds=("train",))


def test_csv_and_zip_hold_every_point_and_its_image():
    p = _toy()
    rows = list(csv.DictReader(io.StringIO(selection_csv(p))))
    assert [r["id"] for r in rows] == p.ids and rows[1]["prediction"] == "0" and rows[1]["confidence"] == "0.5500"
    assert rows[2]["kind"] == "training image" and rows[3]["scenario"] == "1" and rows[3]["x"] == "3"
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with zipfile.ZipFile(io.BytesIO(selection_zip(p, images))) as z:
        assert sorted(z.namelist()) == ["images/failure-0.png", "images/failure-5.png", "images/failure-7.png",
                                        "images/train-2.png", "selection.csv"]
        back = np.asarray(Image.open(io.BytesIO(z.read("images/failure-7.png"))))
    assert (back == (images[3, 0] * 255).round().numpy().astype(np.uint8)).all()
    with pytest.raises(ValueError, match="one image per point"):
        selection_zip(p, images[:2])


def test_points_of_a_project_carry_the_classifier_view(demo_done):
    ws = Workspace(demo_done)
    p = workspace_points(ws, "pca", device="cpu")
    failures, sc = load_failures(ws), load_scenarios(ws)
    f = p.is_failure
    assert (p.true_label[f] == failures.true_label[p.row[f]]).all()
    assert (p.scenario[f] == sc.assignment[p.row[f]]).all() and (p.scenario[~f] == -1).all()
    pred, conf, margin = classify(load_classifier(ws)[0], point_images(ws, p.is_failure, p.row))
    assert (pred == p.prediction).all() and np.allclose(conf, p.confidence) and (margin <= conf).all()
    assert np.mean(p.prediction[f] == failures.pred_label[p.row[f]]) > 0.9  # identify's labels, within precision
    assert len(workspace_points(ws, "pca", max_points=50)) == 50
    with pytest.raises(ValueError, match="no umap map"):
        workspace_points(ws, "umap")


def test_select_export_from_the_cli(demo_done, tmp_path, capsys):
    out = tmp_path / "sel.zip"
    assert main(["select-export", "-w", str(demo_done), "--kind", "failure", "--scenario", "0", "--out", str(out),
                 "--device", "cpu", "--quiet"]) == 0
    p = workspace_points(Workspace(demo_done), "pca")
    want = PointFilter(kinds=("failure",), scenarios=(0,)).mask(p)
    with zipfile.ZipFile(out) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("selection.csv").decode())))
        assert len([n for n in z.namelist() if n.endswith(".png")]) == len(rows) == int(want.sum())
    margins = [float(r["margin"]) for r in rows]
    assert margins == sorted(margins) and {r["scenario"] for r in rows} == {"0"}
    assert f"selected {int(want.sum())} of {len(p)} points" in capsys.readouterr().out
    assert main(["select-export", "-w", str(demo_done), "--out", str(tmp_path / "x.txt"), "--quiet"]) == 2
