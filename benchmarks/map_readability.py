"""How readable the Explore page's latent map is: do failure scenarios show as clusters in 2-D?

On the demo project's shipped first look (``models/demo-precomputed``: identify's failures and distill's
scenarios on mnist-sample), each projection is fitted several ways in one process, on the same codes:

* ``fit_per_source`` 0: fitted on every code (the old map);
* ``fit_per_source`` p > 0: fitted on the training codes plus p failure codes per source image, every other
  code placed with the fitted projection (the map now, p = 3).

Measured on the failures that belong to a scenario, in 2-D and, as a reference, in the latent space:

* ``silhouette``: the silhouette score of the scenario assignment (−1..1; higher: scenarios are compact,
  separate clusters). A scenario drawn as scattered dots scores low.
* ``other_source_agreement``: for each failure, the share of its 10 nearest neighbours *from other source
  images* in its own scenario (``chance``: the same share for random neighbours). A source's near-duplicate
  codes are left out, so this rewards scenarios that gather many sources, not a source's own dot.
* ``confusion_agreement``: ``other_source_agreement`` with each failure's *confusion* (its scenario's source →
  label, the map's colour since issue 23) in place of its scenario: how well the colours a user sees group.
* ``legend`` (once): scenarios, confusions (hues on the map), and names shared by several scenarios in the old
  legend ("9→7" eight times) against the new one ("9→7 a (#4)", …).
* ``progress_events``, ``monotonic`` and ``first_eta_s``: the progress the map job reports (codes placed).

One more UMAP row places the codes not fitted with UMAP's own ``transform`` instead of by their nearest
fitted codes (the map's way), to compare the two placements.

Each method first maps random codes once, so numba's one-time compiles are not in ``seconds``.

    python benchmarks/map_readability.py                     # PCA and UMAP (about 10 minutes on 2 busy cores)
    python benchmarks/map_readability.py --methods pca       # seconds
    python benchmarks/map_readability.py --json docs/runs/map-readability-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
K = 10  # neighbours of the agreement score


def other_source_agreement(coords: np.ndarray, scenario: np.ndarray, source: np.ndarray, k: int = K) -> float:
    """Mean share of each point's ``k`` nearest neighbours from other sources that share its scenario."""
    from sklearn.neighbors import NearestNeighbors

    most = int(np.unique(source, return_counts=True)[1].max())   # a source's own codes, all skipped at worst
    _, idx = NearestNeighbors(n_neighbors=min(len(coords), k + most)).fit(coords).kneighbors(coords)
    shares = []
    for i, row in enumerate(idx):
        others = row[source[row] != source[i]][:k]
        if len(others):
            shares.append(float(np.mean(scenario[others] == scenario[i])))
    return float(np.mean(shares))


def readability(coords: np.ndarray, scenario: np.ndarray, source: np.ndarray) -> dict:
    from sklearn.metrics import silhouette_score

    sample = min(len(coords), 5000)
    return {"silhouette": round(float(silhouette_score(coords, scenario, sample_size=sample, random_state=0)), 4),
            "other_source_agreement": round(other_source_agreement(coords, scenario, source), 4)}


def demo_codes(root: Path):
    """(training codes, failure codes, failures' sources, failures' scenarios, embed config) of the demo."""
    from defuse.distill.embed import EmbedConfig
    from defuse.steps.demo import open_demo_project
    from defuse.steps.distill import load_scenarios
    from defuse.steps.embed import training_codes
    from defuse.steps.identify import load_failures

    ws = open_demo_project(root)          # installs the verified precomputed identify and distill results
    cfg = EmbedConfig()
    _, train, _ = training_codes(ws, cfg)
    failures = load_failures(ws)
    demo_codes.labels = (failures.true_label, failures.pred_label)   # for the legend
    return train, failures.latents, failures.source_index, load_scenarios(ws).assignment, cfg


def warm(method: str) -> None:
    """One small map fitted per source (placing codes too), so numba's compiles are not timed below."""
    from defuse.distill.embed import EmbedConfig, embed_codes

    rng = np.random.default_rng(1)
    codes = rng.normal(size=(6000, 8)).astype(np.float32)
    embed_codes(codes[:3000], codes[3000:], EmbedConfig(method=method), sources=np.arange(3000) // 6)


def legend(fail_true, fail_pred, scenario) -> tuple[dict, np.ndarray]:
    """The map's legend, old and new, and each failure's confusion index (-1: outside any scenario)."""
    from collections import Counter

    from defuse.ui.map_style import scenario_categories
    from defuse.ui.ranking import top_pairs

    n = int(scenario.max() + 1)
    pairs = top_pairs(scenario, fail_true, fail_pred, n, int(max(fail_true.max(), fail_pred.max()) + 1))
    sizes = np.bincount(scenario[scenario >= 0], minlength=n)
    cats = [c for c in scenario_categories(dict(enumerate(pairs)), dict(enumerate(sizes))) if c.key >= 0]
    groups = sorted({c.group for c in cats})
    group_of = {c.key: groups.index(c.group) for c in cats}
    old = Counter("–" if p is None else f"{p[0]}→{p[1]}" for p in pairs)
    confusion = np.array([group_of.get(int(j), -1) for j in scenario])
    return {"scenarios": n, "confusions": len(groups),
            "old_names_shared": sum(v for v in old.values() if v > 1),
            "old_most_shared": max(old.values()), "new_names_shared": n - len({c.name for c in cats}),
            "largest_confusion": max(Counter(c.group for c in cats).values())}, confusion


def measure(train, fail, source, scenario, cfg, confusion=None) -> dict:
    from defuse.distill.embed import embed_codes
    from defuse.distill.projections import PLACE_NEIGHBOURS

    events = []
    t0 = time.perf_counter()
    emb = embed_codes(train, fail, cfg, sources=source, on_progress=events.append)
    seconds = time.perf_counter() - t0
    rows = emb.row[emb.is_failure]
    keep = scenario[rows] >= 0
    done = [e.done for e in events]
    return {"method": cfg.method, "fit_per_source": cfg.fit_per_source,
            "placement": "fitted" if cfg.fit_per_source == 0 else "pca transform" if cfg.method == "pca" else
            f"nearest {PLACE_NEIGHBOURS} fitted codes", "points": len(emb),
            "fitted_on": events[0].metrics["fitted_on"], "seconds": round(seconds, 2),
            **readability(emb.coords[emb.is_failure][keep], scenario[rows][keep], source[rows][keep]),
            **({} if confusion is None else {"confusion_agreement": round(other_source_agreement(
                emb.coords[emb.is_failure][keep], confusion[rows][keep], source[rows][keep]), 4)}),
            "progress_events": len(events), "monotonic": bool(np.all(np.diff(done) > 0)),
            "first_eta_s": next((round(e.eta_s, 1) for e in events if e.eta_s is not None), None)}


def umap_transform_row(train, fail, source, scenario, cfg) -> dict:
    """The alternative placement: UMAP fitted on the same codes as the map, the other codes placed by UMAP's own
    ``transform`` instead of by their nearest fitted codes. ``transform_s`` includes its compile (first call)."""
    import umap

    from defuse.distill.projections import per_source_rows

    codes = np.concatenate([train, fail]).astype(np.float32)
    fit = np.r_[np.arange(len(train)), len(train) + per_source_rows(source, cfg.fit_per_source)]
    rest = np.setdiff1d(np.arange(len(codes)), fit)
    t0 = time.perf_counter()
    model = umap.UMAP(n_components=2, n_neighbors=cfg.n_neighbors, min_dist=cfg.min_dist, random_state=cfg.seed,
                      n_jobs=1).fit(codes[fit])
    t1 = time.perf_counter()
    coords = np.empty((len(codes), 2), np.float32)
    coords[fit], coords[rest] = model.embedding_, model.transform(codes[rest])
    keep = scenario >= 0
    return {"method": "umap", "fit_per_source": cfg.fit_per_source, "placement": "umap transform",
            "fit_s": round(t1 - t0, 2), "transform_s": round(time.perf_counter() - t1, 2),
            **readability(coords[len(train):][keep], scenario[keep], source[keep])}


def environment(threads: int) -> dict:
    import sklearn
    import torch
    import umap

    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "python": platform.python_version(),
            "torch": torch.__version__, "umap_learn": umap.__version__, "sklearn": sklearn.__version__,
            "device": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "threads": threads, "load_average": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["pca", "umap"], choices=["pca", "umap", "tsne"])
    parser.add_argument("--per-source", type=int, nargs="+", default=[0, 1, 2, 3, 5, 10],
                        help="fit_per_source values (0: fitted on every code, the old map)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-umap-transform", dest="umap_transform", action="store_false",
                        help="skip the row that places codes with UMAP's own transform (it compiles for a minute)")
    parser.add_argument("--json", default=None, help="also write the results and environment here")
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    from defuse.distill.embed import EmbedConfig

    torch.set_num_threads(args.threads)
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="defuse-map-") as tmp, threadpool_limits(args.threads):
        train, fail, source, scenario, cfg = demo_codes(Path(tmp) / "demo")
        keep = scenario >= 0
        result = {**environment(args.threads), "command": "python benchmarks/map_readability.py " + " ".join(
            sys.argv[1:] if argv is None else argv), "failures": len(fail), "in_scenarios": int(keep.sum()),
            "scenarios": int(scenario.max() + 1), "sources": int(len(np.unique(source))),
            "training_codes": len(train), "k": K,
            "chance": round(float(np.sum((np.bincount(scenario[keep]) / keep.sum()) ** 2)), 4),
            "latent_space": readability(fail[keep], scenario[keep], source[keep]), "maps": []}
        result["legend"], confusion = legend(*demo_codes.labels, scenario)
        print(json.dumps({k: v for k, v in result.items() if k != "maps"}), flush=True)
        for method in args.methods:
            warm(method)
            for per_source in args.per_source:
                row = measure(train, fail, source, scenario, EmbedConfig(method=method, fit_per_source=per_source),
                              confusion)
                result["maps"].append(row)
                print(json.dumps(row), flush=True)
            if method == "umap" and args.umap_transform:
                row = umap_transform_row(train, fail, source, scenario, EmbedConfig(method="umap"))
                result["maps"].append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
