"""Convert a classifier file that carries code (TorchScript, torch.export, a pickle) into the safe form:
safetensors weights + a sidecar naming its architecture (built-in, or the user's ``module:Class``).

Done once, where the user trusts the file; every later load is then safe (no code from the file runs)
and trains normally (a torch.export program cannot be put in training mode; the rebuilt class can).
The converted network must compute what the file computes: its outputs are compared on random images
of the data's shape, and a mismatch (another architecture that happens to have the same tensor names)
is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from . import checkpoints, code_models
from .architectures import arch_kwargs_for, build_classifier
from .model_files import PICKLE, detect_format

# Outputs of the file and of the rebuilt network may differ by float noise only (fused kernels, layouts).
OUTPUT_TOLERANCE = 1e-4
_PROBE_SEED = 0  # of the random images both networks are run on


def convert_classifier(src, dest, *, architecture: str, input_shape: tuple, arch_kwargs: Optional[dict] = None,
                       class_names: Optional[list] = None, trust_code: bool = False) -> dict:
    """Write ``dest`` (``.safetensors`` + ``.json``) from the classifier in ``src``; return its sidecar.

    Parameters
    ----------
    architecture : a built-in name (paper-cnn, resnet18) or ``module:Class`` of the user's code.
    input_shape : (C, H, W) of the images the classifier takes.
    arch_kwargs : constructor arguments beyond the data's geometry.
    trust_code : the user trusts ``src`` (needed for TorchScript, torch.export and full pickles).
    """
    channels, height, width = (int(v) for v in input_shape)
    if height != width:
        raise ValueError(f"input_shape must be square (C, S, S); got {tuple(input_shape)}")
    x = torch.rand(4, channels, height, width, generator=torch.Generator().manual_seed(_PROBE_SEED))
    geometry = {"channels": channels, "image_size": height}
    source, fmt = _reference(src, architecture, geometry, arch_kwargs, trust_code)
    with torch.no_grad():
        expected = source.eval()(x).float()
    geometry["num_classes"] = int(expected.shape[1])
    kwargs = arch_kwargs_for(architecture, geometry, arch_kwargs)
    target = build_classifier(architecture, **kwargs)
    weights = code_models.weights_of(source) if fmt in code_models.LOADERS else \
        {k: v.detach() for k, v in source.state_dict().items()}
    checkpoints.load_state_into(target, weights, src)
    with torch.no_grad():
        got = target.eval()(x).float()
    gap = float((got - expected).abs().max()) if got.shape == expected.shape else float("inf")
    if gap > OUTPUT_TOLERANCE * (1 + float(expected.abs().max())):
        raise ValueError(f"the weights of {Path(src).name} load into {architecture}, but its outputs differ "
                         f"from the file's by up to {gap:.3g}: {architecture} is not the network that was "
                         "saved. Name the class the file was made from, with the same arguments.")
    return checkpoints.save_model(target, dest, kind="classifier", architecture=architecture, arch_kwargs=kwargs,
                                  class_names=class_names, extra={"converted_from": {
                                      "file": Path(src).name, "format": fmt, "max_output_gap": gap}})


def _reference(src, architecture: str, geometry: dict, arch_kwargs, trust_code: bool):
    """The network as the file computes it, and the file's format: a program for TorchScript / torch.export,
    the unpickled module for a full pickle, else the weights in ``architecture`` (nothing else to compare)."""
    fmt = _format(src)
    if fmt in code_models.LOADERS:
        return checkpoints.load_classifier(src, trust_code=trust_code)[0], fmt
    module = checkpoints.load_pickled_module(src, trust_code=trust_code) if fmt == PICKLE else None
    if module is not None:
        return module, fmt
    return checkpoints.load_classifier(src, architecture=architecture, geometry=geometry, arch_kwargs=arch_kwargs,
                                       trust_code=trust_code)[0], fmt


def _format(src) -> str:
    path = Path(src)
    if path.suffix in (".json", ".safetensors") and path.with_suffix(".json").exists():
        return checkpoints.read_meta(path)["architecture"]
    return detect_format(path)
