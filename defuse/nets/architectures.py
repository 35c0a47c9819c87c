"""The paper's networks (appendix B): the MNIST CNN classifier, β-VAE encoders and decoders, ResNet-18.

Every classifier takes images in [0, 1] and normalises them itself (the mean and std are buffers,
so they travel in the checkpoint). Every network is rebuilt from ``(architecture, kwargs)`` alone,
which is what a checkpoint's JSON sidecar records.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math

import torch
from torch import nn

from ..runtime.words import option

SUPPORTED_SIZES = (32, 64, 128)


def _check_geometry(channels: int, image_size: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour); got {channels}")
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(
            f"image_size must be one of {SUPPORTED_SIZES}; got {image_size}. "
            f"Load the data with {option('size-32')} to resize it."
        )


class Normalize(nn.Module):
    """(x - mean) / std per channel; x in [0, 1]."""

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class PaperCNN(nn.Module):
    """Appendix B.2, fig. 7: four 4x4 stride-2 convolutions (64), FC 256, FC 256, FC classes."""

    def __init__(self, channels: int = 1, image_size: int = 32, num_classes: int = 10,
                 mean: list[float] | None = None, std: list[float] | None = None, width: int = 64):
        super().__init__()
        _check_geometry(channels, image_size)
        self.normalize = Normalize(mean or [0.5] * channels, std or [0.5] * channels)
        layers, c_in = [], channels
        for _ in range(4):
            layers += [nn.Conv2d(c_in, width, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in = width
        self.features = nn.Sequential(*layers)
        flat = width * (image_size // 16) ** 2
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(inplace=True),
            nn.Linear(256, 256), nn.ReLU(inplace=True), nn.Linear(256, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalize(x)))


class ResNet18(nn.Module):
    """torchvision's ResNet-18, random init (weights come only from the user's files, never a download).

    For 32-pixel images the stem is the usual small-image one (3x3 stride-1 conv, no max-pool).
    """

    def __init__(self, channels: int = 3, image_size: int = 32, num_classes: int = 10,
                 mean: list[float] | None = None, std: list[float] | None = None):
        super().__init__()
        _check_geometry(channels, image_size)
        from torchvision.models import resnet18

        self.normalize = Normalize(mean or [0.5] * channels, std or [0.5] * channels)
        net = resnet18(weights=None, num_classes=num_classes)
        if image_size == 32:
            net.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif channels != 3:
            net.conv1 = nn.Conv2d(channels, 64, 7, stride=2, padding=3, bias=False)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                                  nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class SmallResNet(nn.Module):
    """A ResNet: a 3x3 stem down to 16x16 features, three stages (width, 2·width, 4·width channels;
    ``blocks`` basic blocks each, the later two at stride 2), global average pooling, a linear head.
    Width 16 with one block per stage trains at about the paper CNN's cost per image (measured on one
    CPU thread: 2.0 vs 2.7 ms), so it trains in CPU minutes; ResNet-18 does not.
    """

    def __init__(self, channels: int = 1, image_size: int = 32, num_classes: int = 10,
                 mean: list[float] | None = None, std: list[float] | None = None, width: int = 16, blocks: int = 1):
        super().__init__()
        _check_geometry(channels, image_size)
        if width < 1 or blocks < 1:
            raise ValueError(f"width and blocks must be >= 1; got width={width}, blocks={blocks}")
        self.normalize = Normalize(mean or [0.5] * channels, std or [0.5] * channels)
        stem_stride = image_size // 16  # features start at 16x16 whatever the image size: CPU-cheap
        layers, c_in = [nn.Conv2d(channels, width, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(width),
                        nn.ReLU(inplace=True)], width
        for stage in range(3):
            c_out = width * 2 ** stage
            for b in range(blocks):
                layers.append(_BasicBlock(c_in, c_out, 2 if stage and b == 0 else 1))
                c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalize(x)))


class BetaVAE(nn.Module):
    """The β-VAE of figs. 8-13: strided conv encoder to 4x4, FC 256 x2, (mu, logvar);
    decoder FC 256 x3 reshaped to 2x2, then 4x4 stride-2 transposed convs up to the image size.

    ``width`` is 32 for MNIST (figs. 8-9) and 64 for SVHN / German signs (figs. 10-13).
    """

    def __init__(self, channels: int = 1, image_size: int = 32, latent_dim: int = 10, width: int = 32):
        super().__init__()
        _check_geometry(channels, image_size)
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1; got {latent_dim}")
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        n_down = int(math.log2(image_size)) - 2       # 32 -> 3 convs to 4x4 (fig. 8); 64 -> 4 (fig. 10)
        enc, c_in = [], channels
        for _ in range(n_down):
            enc += [nn.Conv2d(c_in, width, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in = width
        self.encoder = nn.Sequential(
            *enc, nn.Flatten(), nn.Linear(width * 16, 256), nn.ReLU(inplace=True),
            nn.Linear(256, 256), nn.ReLU(inplace=True), nn.Linear(256, 2 * latent_dim),
        )
        self._seed_channels = 64                       # 256 = 64 x 2 x 2 feeds the first transposed conv
        self.decoder_fc = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(inplace=True), nn.Linear(256, 256), nn.ReLU(inplace=True),
            nn.Linear(256, 256), nn.ReLU(inplace=True),
        )
        n_up = int(math.log2(image_size)) - 1          # 2x2 -> 32 in 4 steps (fig. 9); -> 64 in 5 (fig. 11)
        dec, c_in = [], self._seed_channels
        for i in range(n_up):
            last = i == n_up - 1
            dec += [nn.ConvTranspose2d(c_in, channels if last else width, 4, stride=2, padding=1)]
            dec += [nn.Sigmoid() if last else nn.ReLU(inplace=True)]
            c_in = width
        self.decoder_conv = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (N, C, H, W) in [0, 1] -> (mu, logvar), each (N, latent_dim)."""
        h = self.encoder(x)
        return h[:, : self.latent_dim], h[:, self.latent_dim:]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (N, latent_dim) -> images (N, C, H, W) in [0, 1]."""
        h = self.decoder_fc(z).view(-1, self._seed_channels, 2, 2)
        return self.decoder_conv(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar


# A conditional VAE's code carries the label scaled by this much: the mixture that distils scenarios then
# separates source classes (label codes 1 apart would sit inside the style dims' spread).
CLASS_CODE_SCALE = 3.0


# Where a conditional VAE takes the label (its ``label_in`` kwarg). A checkpoint without the kwarg predates
# issue #21 and is "decoder-input"; train_vae records its choice, so the default here only serves old files.
LABEL_IN = {
    # issue #12: the label joins z at the decoder's first FC layer only; the encoder never sees it
    "decoder-input": "the decoder's first layer",
    # issue #21: the encoder's FC layers see the label (it need not store the class in z), and the decoder's
    # FC layers and every transposed-conv stage (a per-class scale and shift of its channels, FiLM)
    "every-layer": "the encoder's FC layers and every decoder layer",
}


class ConditionalBetaVAE(BetaVAE):
    """A class-conditional β-VAE: the decoder takes the label next to z, so z is free to hold only style.

    Identification encodes a source with its own label, perturbs z and decodes with the same label: the
    perturbation changes how the digit is drawn, not which class it is (issue #12). So that every step
    that stores, clusters, samples and decodes codes works unchanged, the *code* is ``(z, label code)``:
    ``latent_dim`` is its width (``style_dim + num_classes - 1``), noise moves only the first ``style_dim``
    entries (:func:`perturbed_dims`), and :meth:`decode` reads the label back as the nearest label code,
    so a code sampled from a scenario decodes to one clean class. The label code is
    ``CLASS_CODE_SCALE · one-hot`` without its last entry (the last class is the zero vector): a full
    one-hot sums to a constant, which makes the codes' covariance singular and the mixture's fit fail.

    ``label_in`` (a key of :data:`LABEL_IN`) says which layers take the label: "every-layer" (issue #21)
    lets the encoder know the class, so z need not hold it, and gives the decoder the label at each stage,
    so it can draw another class from the same z; "decoder-input" is the design of issue #12, kept so its
    checkpoints load (their ``arch_kwargs`` have no ``label_in``).
    """

    conditional = True

    def __init__(self, channels: int = 1, image_size: int = 32, latent_dim: int = 10, width: int = 32,
                 num_classes: int = 10, label_in: str = "decoder-input"):
        super().__init__(channels, image_size, latent_dim, width)
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2; got {num_classes}")
        if label_in not in LABEL_IN:
            raise ValueError(f"label_in must be one of {sorted(LABEL_IN)}; got {label_in!r}")
        self.style_dim, self.num_classes, self.label_in = latent_dim, num_classes, label_in
        self.latent_dim = latent_dim + num_classes - 1
        self.decoder_fc[0] = nn.Linear(latent_dim + num_classes, 256)
        if label_in == "every-layer":
            for seq in (self.encoder, self.decoder_fc):
                for i, m in enumerate(seq):
                    if isinstance(m, nn.Linear) and not (seq is self.decoder_fc and i == 0):
                        seq[i] = nn.Linear(m.in_features + num_classes, m.out_features)
            stages = sum(isinstance(m, nn.ReLU) for m in self.decoder_conv)
            # per class, a scale and a shift of each hidden stage's channels; zero: training starts from plain
            self.decoder_film = nn.Linear(num_classes, 2 * width * stages, bias=False)
            nn.init.zeros_(self.decoder_film.weight)

    def _style(self, x: torch.Tensor, one_hot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.label_in == "decoder-input":
            h = self.encoder(x)
        else:
            h = x
            for m in self.encoder:
                h = m(torch.cat([h, one_hot], 1)) if isinstance(m, nn.Linear) else m(h)
        return h[:, : self.style_dim], h[:, self.style_dim:]

    def _one_hot(self, labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(labels.long().to(like.device), self.num_classes).to(like.dtype)

    def label_code(self, labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """The code's label part (N, num_classes - 1) for ``labels`` (N,), in ``like``'s dtype and device."""
        return CLASS_CODE_SCALE * self._one_hot(labels.to(like.device), like)[:, :-1]

    def code_labels(self, part: torch.Tensor) -> torch.Tensor:
        """The labels (N,) of codes' label parts (N, num_classes - 1): the nearest label code, i.e. the largest
        entry when it passes half the scale, else the last class (whose code is zero)."""
        half = torch.full_like(part[:, :1], CLASS_CODE_SCALE / 2)
        return torch.cat([part, half], 1).argmax(1)

    def _decode_style(self, z: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        if self.label_in == "decoder-input":
            h = self.decoder_fc(torch.cat([z, one_hot], 1)).view(-1, self._seed_channels, 2, 2)
            return self.decoder_conv(h)
        h = z
        for m in self.decoder_fc:
            h = m(torch.cat([h, one_hot], 1)) if isinstance(m, nn.Linear) else m(h)
        h = h.view(-1, self._seed_channels, 2, 2)
        film = iter(self.decoder_film(one_hot).split(self.decoder_conv[0].out_channels, 1))
        for m in self.decoder_conv:
            if isinstance(m, nn.ReLU):  # a hidden stage: its channels scaled and shifted for the class
                h = h * (1 + next(film)[:, :, None, None]) + next(film)[:, :, None, None]
            h = m(h)
        return h

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and their labels -> (code mean, code log-variance), each (N, style_dim + num_classes - 1)."""
        if labels is None:
            raise ValueError("a class-conditional VAE encodes each image together with its label; "
                             "pass the labels (defuse.nets.architectures.latent_means does)")
        mu, logvar = self._style(x, self._one_hot(labels, x))
        part = self.label_code(labels, mu)
        # the label part of the code is exact: a log-variance far below any learnt one
        return torch.cat([mu, part], 1), torch.cat([logvar, torch.full_like(part, -30.0)], 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, latent_dim) -> images, decoded with the label their label part is nearest to."""
        labels = self.code_labels(z[:, self.style_dim:])
        return self._decode_style(z[:, : self.style_dim], self._one_hot(labels, z))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        """Training pass: (reconstruction, μ, log σ²) of z alone (the label is given, so it costs no KL)."""
        if labels is None:
            raise ValueError("a class-conditional VAE trains on images with their labels")
        one_hot = self._one_hot(labels, x)
        mu, logvar = self._style(x, one_hot)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self._decode_style(z, one_hot), mu, logvar


def is_conditional(vae: nn.Module) -> bool:
    return bool(getattr(vae, "conditional", False))


def perturbed_dims(vae: nn.Module, code_dim: int) -> int:
    """How many leading dims of a code identification perturbs: z's, never a conditional VAE's label."""
    return int(getattr(vae, "style_dim", code_dim))


def latent_means(vae: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """The codes μ of ``images``; a conditional VAE also takes their labels (a plain one ignores them)."""
    if is_conditional(vae):
        if labels is None:
            raise ValueError("this VAE is class-conditional: its codes need the images' labels")
        return vae.encode(images, labels)[0]
    return vae.encode(images)[0]


CLASSIFIERS = {"paper-cnn": PaperCNN, "resnet18": ResNet18, "small-resnet": SmallResNet}
VAES = {"beta-vae": BetaVAE, "conditional-beta-vae": ConditionalBetaVAE}


def _lookup(table: dict, name: str, what: str):
    if name not in table:
        raise ValueError(f"unknown {what} architecture {name!r}; choose one of {sorted(table)}, "
                         "or name your own network class as module:Class")
    return table[name]


def is_user_architecture(name: str) -> bool:
    """``"my_package.nets:SignNet"``: a network class of the user's own code, named explicitly."""
    return ":" in str(name)


def user_class(name: str) -> type:
    """The ``nn.Module`` subclass that ``module:Class`` names (importing the module, as Python would)."""
    module_name, _, class_name = str(name).partition(":")
    if not module_name or not class_name:
        raise ValueError(f"a network of your own is named module:Class, e.g. my_nets:SignNet; got {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import {module_name!r} for the network {name!r} ({e}). Make it importable: "
                         "install your package, run from the folder that holds the module, or add that folder "
                         "to PYTHONPATH") from e
    cls = module
    for part in class_name.split("."):
        cls = getattr(cls, part, None)
    # Only a network class is built: a name like os:system must never be called with the sidecar's kwargs.
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"{name!r} does not name an nn.Module subclass in {module_name!r}")
    return cls


# The data's geometry under the names networks commonly give it, so a user's class gets what it accepts.
GEOMETRY_NAMES = {"channels": ("channels", "in_channels", "in_chans", "num_channels"),
                  "image_size": ("image_size", "img_size", "input_size"),
                  "num_classes": ("num_classes", "n_classes", "classes")}


def arch_kwargs_for(name: str, geometry: dict, explicit: dict | None = None) -> dict:
    """The constructor arguments of ``name``: the data's geometry (for ``module:Class``, under the
    parameter names its ``__init__`` takes), overridden by the user's ``explicit`` ones."""
    if not is_user_architecture(name):
        return {**geometry, **(explicit or {})}
    params = inspect.signature(user_class(name).__init__).parameters
    kwargs = {}
    for key, names in GEOMETRY_NAMES.items():
        for n in names:
            if n in params and key in geometry:
                kwargs[n] = geometry[key]
                break
    return {**kwargs, **(explicit or {})}


def build_classifier(architecture: str, **kwargs) -> nn.Module:
    """Build a classifier from its name (built-in, or ``module:Class``) and the kwargs in its sidecar."""
    if is_user_architecture(architecture):
        try:
            return user_class(architecture)(**kwargs)
        except TypeError as e:
            raise ValueError(f"{architecture} cannot be built with {kwargs} ({e}); give its constructor "
                             f"arguments as JSON ({option('arch-kwargs')})") from e
    return _lookup(CLASSIFIERS, architecture, "classifier")(**kwargs)


def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy that trains like the original, for any network, TorchScript included."""
    # Copied with grad on, a TorchScript module gets non-leaf parameters (optimizers and requires_grad_
    # refuse them); with grad off, parameters that do not require grad: so copy without grad, then
    # restore which ones train.
    with torch.no_grad():
        twin = copy.deepcopy(model)
    for p, q in zip(twin.parameters(), model.parameters(), strict=True):
        p.requires_grad_(q.requires_grad)
    return twin


def build_vae(architecture: str = "beta-vae", **kwargs) -> BetaVAE:
    return _lookup(VAES, architecture, "VAE")(**kwargs)
