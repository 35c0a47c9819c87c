"""The fidelity gate: a β-VAE too blurry to search with is named on Setup and Home, Identify asks for a
confirmation, the CLI refuses unless --accept-low-fidelity; the default recipe fits the source's size."""

import pytest

from defuse.cli.main import main
from defuse.nets.vae_recipe import MIN_STEPS, default_vae_config, fidelity_gate
from defuse.workspace import Workspace

BLURRY = {"acc_original": 0.91, "acc_reconstruction": 0.21, "n_images": 1797, "active_dims": 3, "latent_dim": 10}


def test_a_faithful_vae_passes_and_a_blurry_one_is_named_in_plain_words():
    assert fidelity_gate({"acc_original": 0.91, "acc_reconstruction": 0.88}) is None
    text = fidelity_gate(BLURRY, {"epochs": 30, "batch_size": 128, "beta": 0.4})
    assert "recognises only 21% of its reconstructions, against 91%" in text
    assert "30 epochs were 450 steps; use 141 epochs at batch 32" in text


def test_the_advice_never_repeats_what_was_already_done():
    done_long = {"epochs": 600, "batch_size": 32, "beta": 0.4, "latent_dim": 10, "width": 32, "train_on": "all"}
    text = fidelity_gate(BLURRY, done_long)
    assert "lower β" not in text and "train longer" not in text
    assert "latent dimensions 10 → 20, width 32 → 64" in text
    high_beta = fidelity_gate(BLURRY, {**done_long, "beta": 4.0, "train_on": "train"})
    assert "lower β from 4 to 0.4" in high_beta and "--train-on train+val" in high_beta


@pytest.mark.parametrize("n, batch, epochs", [(1797, 32, 141), (5000, 128, 200), (70000, 128, 15)])
def test_the_default_recipe_takes_enough_steps_for_the_sources_size(n, batch, epochs):
    cfg = default_vae_config(n)
    assert (cfg.batch_size, cfg.epochs) == (batch, epochs)
    assert cfg.epochs * -(-n // cfg.batch_size) >= MIN_STEPS


def _blur(root):
    Workspace(root).save_json("vae/fidelity.json", {k: BLURRY[k] for k in ("acc_original", "acc_reconstruction")})
    return root


def test_cli_identify_refuses_a_blurry_vae_unless_accepted(project_copy, capsys):
    root = _blur(project_copy("blur-cli"))
    assert main(["identify", "-w", str(root), "--subset", "8", "--samples-per-image", "4", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "too blurry to search with" in err and "--accept-low-fidelity" in err
    assert main(["identify", "-w", str(root), "--subset", "8", "--samples-per-image", "4", "--accept-low-fidelity",
                 "--quiet"]) == 0


def test_setup_and_home_say_so_and_setup_does_not_point_to_identify(run_page, project_copy):
    root = _blur(project_copy("blur-pages"))
    for page in ("setup", "home"):
        at = run_page(page, root)
        assert not at.exception
        assert "too blurry to search with" in at.error[0].value and "Retrain the β-VAE" in at.error[0].value
    at = run_page("setup", root)
    assert not any("Next: identify" in c.value for c in at.caption)
    home = run_page("home", root)
    assert not any("Next: Identify" in c.value for c in home.caption)


def test_identify_starts_only_after_an_explicit_confirmation(run_page, project_copy, started):
    root = _blur(project_copy("blur-identify"))
    at = run_page("identify", root)
    assert "too blurry" in at.error[0].value
    at.checkbox(key="again-identify").check()                                 # identify was done: a re-run
    next(b for b in at.button if b.label.startswith("Run identify")).click().run()
    assert started == [] and any("tick “Search with this VAE anyway”" in e.value for e in at.error)
    at.checkbox(key="accept-low-fidelity").check().run()
    next(b for b in at.button if b.label.startswith("Run identify")).click().run()
    assert started and started[0][0] == "identify" and started[0][1][-1] == "--accept-low-fidelity"
