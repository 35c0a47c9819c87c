import pytest
import torch

from defuse.nets.architectures import BetaVAE, PaperCNN, build_classifier, build_vae


@pytest.mark.parametrize("size,channels", [(32, 1), (32, 3), (64, 3), (128, 1)])
def test_vae_and_cnn_shapes_for_every_supported_size(size, channels):
    vae = build_vae(channels=channels, image_size=size, latent_dim=7, width=8)
    x = torch.rand(3, channels, size, size)
    recon, mu, logvar = vae.eval()(x)
    assert recon.shape == x.shape and mu.shape == (3, 7) and logvar.shape == (3, 7)
    assert 0 <= recon.min() and recon.max() <= 1
    assert vae.decode(torch.zeros(2, 7)).shape == (2, channels, size, size)
    logits = build_classifier("paper-cnn", channels=channels, image_size=size, num_classes=5)(x)
    assert logits.shape == (3, 5)


def test_paper_architectures_follow_appendix_b():
    cnn = PaperCNN(channels=1, image_size=32, num_classes=10)
    convs = [m for m in cnn.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(64, (4, 4), (2, 2))] * 4
    vae = BetaVAE(channels=1, image_size=32, latent_dim=10, width=32)
    enc_convs = [m for m in vae.encoder if isinstance(m, torch.nn.Conv2d)]
    dec_convs = [m for m in vae.decoder_conv if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(enc_convs) == 3 and len(dec_convs) == 4          # figs. 8 and 9
    assert vae.encoder[-1].out_features == 20


def test_resnet18_builds_for_grey_small_images():
    net = build_classifier("resnet18", channels=1, image_size=32, num_classes=3)
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(channels=2), "channels must be 1"),
    (dict(image_size=48), "image_size must be one of"),
])
def test_bad_geometry_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_vae(**{"channels": 1, "image_size": 32, **kwargs})


def test_unknown_architecture_lists_choices():
    with pytest.raises(ValueError, match=r"choose one of \['paper-cnn', 'resnet18', 'small-resnet'\]"):
        build_classifier("vgg")


@pytest.mark.parametrize("size", [32, 64])
def test_small_resnet_gives_logits_for_every_supported_geometry(size):
    from defuse.nets.architectures import SmallResNet

    net = SmallResNet(channels=3, image_size=size, num_classes=7, width=4, blocks=2).eval()
    assert net(torch.rand(2, 3, size, size)).shape == (2, 7)
    with pytest.raises(ValueError, match="width and blocks must be >= 1; got width=0, blocks=1"):
        SmallResNet(width=0)
