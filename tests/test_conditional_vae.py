"""The class-conditional β-VAE (issue #12): its code carries the label, noise moves only z, and the label it
decodes with decides the class a classifier sees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from defuse.identify.search import IdentifyConfig, identify
from defuse.nets import checkpoints
from defuse.nets.architectures import CLASS_CODE_SCALE, ConditionalBetaVAE, build_classifier, latent_means
from defuse.nets.class_control import class_control, swap_labels
from defuse.nets.train import TrainConfig, VAEConfig, train_classifier, train_vae
from tests.toys import tiny_image_data

# the xdist group: under pytest-xdist one worker runs this module, so its fixtures are built once
pytestmark = pytest.mark.xdist_group("test_conditional_vae")


@pytest.fixture(scope="module")
def data():
    return tiny_image_data()


@pytest.fixture(scope="module")
def trained(data):
    torch.manual_seed(0)
    clf = train_classifier(data, TrainConfig(epochs=2, batch_size=32, optimizer="adam", lr=1e-3), device="cpu").model
    cfg = VAEConfig(epochs=30, batch_size=32, latent_dim=4, width=8, kl_anneal_steps=20, beta=2.0, conditional=True)
    return clf, train_vae(data, cfg, device="cpu", classifier=clf)


def test_code_is_z_then_the_scaled_one_hot_label_and_decode_reads_the_label():
    torch.manual_seed(0)
    vae = ConditionalBetaVAE(channels=1, image_size=32, latent_dim=4, width=8, num_classes=3).eval()
    x, y = torch.rand(6, 1, 32, 32), torch.tensor([0, 1, 2, 2, 1, 0])
    code = latent_means(vae, x, y)
    assert code.shape == (6, 6) and vae.latent_dim == 6 and vae.style_dim == 4
    # the label code: 3·one-hot without its last entry (the last class is zero), so its sum is not constant
    assert torch.equal(code[:, 4:], CLASS_CODE_SCALE * torch.eye(3)[y][:, :2])
    assert torch.equal(vae.code_labels(code[:, 4:]), y)
    with torch.no_grad():
        jittered = code.clone()
        jittered[:, 4:] += 0.4 * torch.rand(6, 2) - 0.2     # still nearest to its own label code
        assert torch.allclose(vae.decode(code), vae.decode(jittered))
        other = code.clone()
        other[:, 4:] = vae.label_code((y + 1) % 3, code)
        assert not torch.allclose(vae.decode(code), vae.decode(other))


def test_encoding_or_training_without_labels_is_refused_in_words():
    vae = ConditionalBetaVAE(channels=1, image_size=32, latent_dim=4, width=8, num_classes=3)
    with pytest.raises(ValueError, match="label"):
        vae.encode(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="label"):
        vae(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="num_classes"):
        ConditionalBetaVAE(num_classes=1)


def test_identify_perturbs_z_only_so_every_failure_keeps_its_source_label():
    torch.manual_seed(0)
    vae = ConditionalBetaVAE(channels=1, image_size=32, latent_dim=4, width=8, num_classes=10).eval()
    clf = build_classifier("paper-cnn", channels=1, image_size=32, num_classes=10, width=8).eval()
    x, y = torch.rand(20, 1, 32, 32), torch.randint(0, 10, (20,), generator=torch.Generator().manual_seed(1))
    failures = identify(clf, vae, x, y, IdentifyConfig(samples_per_image=8, max_per_image=3, seed=1), device="cpu")
    assert len(failures) > 0 and failures.latents.shape[1] == 13
    label_codes = CLASS_CODE_SCALE * np.eye(10, dtype=np.float32)[failures.true_label][:, :9]
    assert np.array_equal(failures.latents[:, 4:], label_codes)
    # the recorded ‖ε‖ is z's alone, the paper's Beta(50, 50) noise on 4 dims: about 0.5 · 2
    assert np.all((failures.noise_norm > 0.5) & (failures.noise_norm < 1.5))


def test_class_control_counts_reads_of_the_swapped_in_label():
    torch.manual_seed(0)
    vae = ConditionalBetaVAE(channels=1, image_size=32, latent_dim=4, width=8, num_classes=3).eval()
    x, y = torch.rand(30, 1, 32, 32), torch.arange(30) % 3
    decodes, other = swap_labels(vae, x, y, seed=5)
    assert decodes.shape == x.shape and bool((other != y).all()) and set(other.tolist()) <= {0, 1, 2}
    assert class_control(vae, lambda imgs: other, x, y, seed=5) == 1.0     # a reader that sees the new label
    assert class_control(vae, lambda imgs: y, x, y, seed=5) == 0.0         # one that sees the source's class
    with pytest.raises(ValueError, match="conditional"):
        swap_labels(build_classifier("paper-cnn", channels=1, image_size=32, num_classes=3, width=8), x, y)


def test_a_trained_conditional_vae_moves_the_class_with_the_label(trained, data):
    clf, result = trained
    m = result.metrics
    # bar images: the class is the bar's band, so a decoder that obeys its label draws the bar where it says
    assert m["class_control_classifier"] > 0.8 and m["acc_reconstruction"] > 0.9
    assert m["latent_dim"] == 4 and 0 <= m["active_dims"] <= 4
    assert result.arch_kwargs["num_classes"] == data.num_classes


def test_a_conditional_vae_checkpoint_round_trips(trained, data, tmp_path):
    _, result = trained
    checkpoints.save_model(result.model, tmp_path / "vae", kind="vae", architecture="conditional-beta-vae",
                           arch_kwargs=result.arch_kwargs)
    loaded, meta = checkpoints.load_model(tmp_path / "vae.json", kind="vae")
    x, y = data.val.images[:8], data.val.labels[:8]
    assert isinstance(loaded, ConditionalBetaVAE) and meta["architecture"] == "conditional-beta-vae"
    with torch.no_grad():
        before = result.model.decode(latent_means(result.model, x, y))
        assert torch.allclose(loaded.decode(latent_means(loaded, x, y)), before)


def test_every_step_runs_on_a_conditional_vae_from_the_command_line(tmp_path):
    """train-vae --conditional, then identify, distill, the map and a scenario's review samples on digits."""
    from defuse.cli.main import main
    from defuse.distill.sampling import ReviewSamples
    from defuse.steps import project
    from defuse.steps.distill import load_scenarios
    from defuse.steps.identify import load_failures
    from defuse.workspace import Workspace

    root = str(tmp_path / "proj")
    assert main(["init", "-w", root, "--dataset", "digits", "--quiet"]) == 0
    assert main(["train-classifier", "-w", root, "--epochs", "1", "--optimizer", "adam", "--lr", "1e-3",
                 "--quiet"]) == 0
    assert main(["train-vae", "-w", root, "--conditional", "--epochs", "1", "--width", "8", "--quiet"]) == 0
    ws = Workspace.open(root)
    vae, meta = project.load_vae(ws)
    assert isinstance(vae, ConditionalBetaVAE) and meta["config"]["conditional"] is True
    assert "class_control_classifier" in meta["metrics"]
    assert main(["identify", "-w", root, "--subset", "60", "--samples-per-image", "20", "--max-per-image", "5",
                 "--accept-low-fidelity", "--quiet"]) == 0
    failures = load_failures(ws)
    assert np.array_equal(failures.latents[:, vae.style_dim:],
                          CLASS_CODE_SCALE * np.eye(10, dtype=np.float32)[failures.true_label][:, :9])
    assert main(["distill", "-w", root, "--max-iter", "20", "--quiet"]) == 0
    assert main(["embed", "-w", root, "--method", "pca", "--quiet"]) == 0
    scenarios = load_scenarios(ws)
    samples = ReviewSamples(vae, project.load_classifier(ws)[0], scenarios, tau=0.5, seed=0)
    assert len(scenarios) >= 1 and samples.render(0, 4).images.shape == (4, 1, 32, 32)


def test_the_mixture_fits_codes_whose_label_part_is_constant_within_a_class():
    """A full one-hot made the codes' covariance singular and the fit fail (5,759 Fashion-MNIST UAEs)."""
    from defuse.distill.dpgmm import DPGaussianMixture
    from defuse.distill.scenarios import DistillConfig

    torch.manual_seed(0)
    vae = ConditionalBetaVAE(channels=1, image_size=32, latent_dim=4, width=8, num_classes=10).eval()
    y = torch.arange(600) % 10
    codes = torch.cat([torch.randn(600, 4) * 0.05, vae.label_code(y, torch.zeros(1))], 1).numpy()
    assert np.linalg.matrix_rank(np.cov(codes.T)) == codes.shape[1]
    DPGaussianMixture(30, DistillConfig(max_iter=20)).fit(codes)


def test_a_conditional_vae_for_other_classes_is_refused_at_import(tmp_path):
    """Its label code has a slot per class: a 3-class VAE cannot encode digits' ten labels."""
    from defuse.data.datasets import DatasetSpec
    from defuse.steps import project

    vae = ConditionalBetaVAE(channels=1, image_size=32, latent_dim=4, width=8, num_classes=3)
    checkpoints.save_model(vae, tmp_path / "vae", kind="vae", architecture="conditional-beta-vae",
                           arch_kwargs=dict(channels=1, image_size=32, latent_dim=4, width=8, num_classes=3))
    ws = project.init_project(tmp_path / "proj", DatasetSpec(source="digits"))
    with pytest.raises(ValueError, match="num_classes=3 but the data has num_classes=10"):
        project.import_vae(ws, tmp_path / "vae.json")
    assert not ws.exists("vae/model.json")


# --- issue #21: a class-free z (the label in every layer, an adversary on z) ---------------------------------

@pytest.mark.parametrize("channels,size,classes", [(1, 32, 2), (3, 32, 43), (3, 64, 5)])
def test_every_layer_design_keeps_the_code_layout_for_any_classes_channels_and_size(channels, size, classes):
    torch.manual_seed(0)
    vae = ConditionalBetaVAE(channels=channels, image_size=size, latent_dim=4, width=8, num_classes=classes,
                             label_in="every-layer").eval()
    x, y = torch.rand(5, channels, size, size), torch.arange(5) % classes
    code = latent_means(vae, x, y)
    assert code.shape == (5, 4 + classes - 1) and torch.equal(vae.code_labels(code[:, 4:]), y)
    with torch.no_grad():
        assert vae.decode(code).shape == x.shape
        recon, mu, logvar = vae.train()(x, y)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (5, 4)


def test_every_layer_encoder_and_decoder_stages_depend_on_the_label():
    torch.manual_seed(0)
    vae = ConditionalBetaVAE(channels=1, image_size=32, latent_dim=4, width=8, num_classes=3, label_in="every-layer")
    torch.nn.init.normal_(vae.decoder_film.weight)  # zero at the start of training: give it a value
    vae.eval()
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        mu0, mu1 = vae.encode(x, torch.zeros(4))[0][:, :4], vae.encode(x, torch.ones(4))[0][:, :4]
        assert not torch.allclose(mu0, mu1)  # the encoder reads the label, so z need not hold the class
        one_hot = vae._one_hot(torch.ones(4), x)
        with_film = vae._decode_style(mu0, one_hot)
        vae.decoder_film.weight.zero_()      # the conv stages' per-class scale and shift are used
        assert not torch.allclose(with_film, vae._decode_style(mu0, one_hot))


def test_label_in_and_class_adversary_are_validated_with_the_choices():
    with pytest.raises(ValueError, match=r"label_in must be one of \['decoder-input', 'every-layer'\]"):
        ConditionalBetaVAE(label_in="film")
    with pytest.raises(ValueError, match=r"label_in must be one of"):
        VAEConfig(conditional=True, label_in="everywhere")
    with pytest.raises(ValueError, match=r"class_adversary must be a finite number in \[0, 1000\]; got -1"):
        VAEConfig(class_adversary=-1.0)


def test_a_checkpoint_saved_before_issue_21_still_loads_as_the_decoder_input_design(tmp_path):
    """Its arch_kwargs have no label_in: it must rebuild the first design, weights and decodes alike."""
    torch.manual_seed(0)
    old_kwargs = dict(channels=1, image_size=32, latent_dim=4, width=8, num_classes=3)
    old = ConditionalBetaVAE(**old_kwargs).eval()
    checkpoints.save_model(old, tmp_path / "vae", kind="vae", architecture="conditional-beta-vae",
                           arch_kwargs=old_kwargs)
    loaded, meta = checkpoints.load_model(tmp_path / "vae.json", kind="vae")
    assert loaded.label_in == "decoder-input" and "label_in" not in meta["arch_kwargs"]
    assert not hasattr(loaded, "decoder_film")
    x, y = torch.rand(6, 1, 32, 32), torch.arange(6) % 3
    with torch.no_grad():
        assert torch.allclose(loaded.decode(latent_means(loaded, x, y)), old.decode(latent_means(old, x, y)))


def test_the_default_conditional_vae_is_the_every_layer_design(trained):
    """Measured on Fashion-MNIST (docs/runs/class-control-*.json): every-layer beat the first design and
    every adversary weight tried, so the adversary is an option, off by default."""
    _, result = trained
    assert result.arch_kwargs["label_in"] == "every-layer" and VAEConfig().class_adversary == 0
    assert result.model.label_in == "every-layer"


def test_the_critic_charges_nothing_when_it_reads_only_the_class_frequencies():
    from defuse.nets.train import LabelCritic

    vae = ConditionalBetaVAE(channels=1, image_size=32, latent_dim=4, width=8, num_classes=3)
    critic = LabelCritic(vae, torch.tensor([0, 0, 1, 2]), VAEConfig(conditional=True), torch.device("cpu"))
    assert torch.allclose(critic.prior, torch.tensor([0.5, 0.25, 0.25]))
    last = critic.net[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(critic.prior.log())
    assert critic.leak(torch.randn(8, 4)).abs().item() < 1e-6
    with torch.no_grad():
        last.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    assert critic.leak(torch.randn(8, 4)).item() > 1.0


def _probe_accuracy(z_train, y_train, z_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(max_iter=2000).fit(z_train, y_train)
    return float(probe.score(z_test, y_test))


def test_the_adversary_takes_the_class_out_of_z():
    """Blobs whose class is their position, a plain-decoder VAE that must store the class in z to place the
    blob: with the adversary, a probe reads the class from z far less often."""
    gen = torch.Generator().manual_seed(0)
    n, c = 384, 4
    y = torch.arange(n) % c
    x = torch.rand(n, 1, 32, 32, generator=gen) * 0.1
    for k in range(c):  # class k: a square in quadrant k, its size (the style) random
        r0, c0 = 16 * (k // 2), 16 * (k % 2)
        for i in torch.nonzero(y == k).flatten().tolist():
            s = int(torch.randint(4, 14, (1,), generator=gen))
            x[i, :, r0 + 1:r0 + 1 + s, c0 + 1:c0 + 1 + s] = 0.9
    from defuse.data.datasets import DatasetSpec, ImageData, Split

    data = ImageData(Split(x[:256], y[:256]), Split(x[256:320], y[256:320]), Split(x[320:], y[320:]),
                     class_names=[f"c{i}" for i in range(c)], spec=DatasetSpec(source="npz"))
    accs = {}
    for weight in (0.0, 20.0):
        cfg = VAEConfig(epochs=25, batch_size=32, latent_dim=4, width=8, kl_anneal_steps=20, beta=1.0,
                        conditional=True, label_in="decoder-input", class_adversary=weight)
        vae = train_vae(data, cfg, device="cpu").model
        with torch.no_grad():
            z_tr, z_te = (vae.encode(s.images, s.labels)[0][:, :4].numpy() for s in (data.train, data.test))
        accs[weight] = _probe_accuracy(z_tr, data.train.labels.numpy(), z_te, data.test.labels.numpy())
    assert accs[20.0] < accs[0.0] - 0.2, accs


def test_train_vae_flags_choose_the_design_and_the_sidecar_records_it(tmp_path):
    from defuse.cli.main import main
    from defuse.steps import project
    from defuse.workspace import Workspace

    root = str(tmp_path / "proj")
    assert main(["init", "-w", root, "--dataset", "digits", "--quiet"]) == 0
    assert main(["train-vae", "-w", root, "--conditional", "--label-in", "decoder-input", "--class-adversary", "2",
                 "--epochs", "1", "--width", "8", "--quiet"]) == 0
    vae, meta = project.load_vae(Workspace.open(root))
    assert vae.label_in == "decoder-input" and meta["arch_kwargs"]["label_in"] == "decoder-input"
    assert meta["config"]["class_adversary"] == 2.0
