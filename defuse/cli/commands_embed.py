"""CLI subcommand `embed`: the Explore page's 2-D map of training and failure codes."""

from __future__ import annotations

from ..distill.embed import PROJECTIONS, EmbedConfig
from ..distill.umap_warmup import use_numba_cache
from ..steps.embed import embed_step
from .args import CommandTable, add_config_option, config_from_args, open_workspace

COMMANDS = CommandTable()  # this module's commands; defuse.cli.main lists the tables
register = COMMANDS.register


def _embed_args(p):
    d = EmbedConfig()
    p.add_argument("--method", default=d.method, help=f"projection: {', '.join(sorted(PROJECTIONS))}")
    p.add_argument("--max-points", type=int, default=d.max_points, help="codes projected at most (down-sampled)")
    p.add_argument("--train-points", type=int, default=d.train_points, help="training codes in the background")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--n-neighbors", type=int, default=d.n_neighbors, help="UMAP neighbours")
    p.add_argument("--min-dist", type=float, default=d.min_dist, help="UMAP minimum distance")
    p.add_argument("--perplexity", type=float, default=d.perplexity, help="t-SNE perplexity")
    p.add_argument("--fit-per-source", type=int, default=d.fit_per_source,
                   help="failure codes per source image the projection is fitted on, with the training codes; the "
                        "others are then placed on the fitted map (0: fitted on every code, which draws each "
                        "source's near-duplicate codes as a dot)")
    add_config_option(p, EmbedConfig)


def _embed(args, sink):
    # Before umap (and numba) is imported: keep numba's compiled functions between processes (~40 s each).
    use_numba_cache()
    cfg = config_from_args(args, EmbedConfig)
    meta = embed_step(open_workspace(args), cfg, on_progress=sink)
    return f"{cfg.method} map of {meta['points']} codes saved"


register("embed", "a 2-D map (UMAP, t-SNE or PCA) of training and failure codes, for the Explore page",
         _embed_args, _embed)
