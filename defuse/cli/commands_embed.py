"""CLI subcommand `embed`: the Explore page's 2-D map of training and failure codes."""

from __future__ import annotations

from ..distill.embed import EmbedConfig
from ..distill.umap_warmup import use_numba_cache
from ..steps.embed import embed_step
from .args import CommandTable, add_setting_flags, config_from_args, open_workspace

COMMANDS = CommandTable()  # this module's commands; defuse.cli.main lists the tables
register = COMMANDS.register


def _embed_args(p):
    add_setting_flags(p, EmbedConfig)


def _embed(args, sink):
    # Before umap (and numba) is imported: keep numba's compiled functions between processes (~40 s each).
    use_numba_cache()
    cfg = config_from_args(args, EmbedConfig)
    meta = embed_step(open_workspace(args), cfg, on_progress=sink)
    return f"{cfg.method} map of {meta['points']} codes saved"


register("embed", "a 2-D map (UMAP, t-SNE or PCA) of training and failure codes, for the Explore page",
         _embed_args, _embed)
