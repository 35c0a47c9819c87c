"""Checkpoints: safetensors weights + a JSON sidecar that says how to rebuild the network.

Loading never unpickles: our own checkpoints are safetensors; a user's ``.pt`` state dict goes
through ``torch.load(weights_only=True)``; anything that needs full unpickling is refused unless
the caller passes ``allow_pickle=True`` (the user's explicit opt-in for a file they trust).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..runtime import atomic
from .architectures import build_classifier, build_vae

FORMAT_VERSION = 1
KINDS = ("classifier", "vae")


def _paths(path) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_model(model: nn.Module, path, *, kind: str, architecture: str, arch_kwargs: dict,
               class_names: Optional[list] = None, config: Optional[dict] = None,
               metrics: Optional[dict] = None, extra: Optional[dict] = None) -> dict:
    """Write ``<path>.safetensors`` and ``<path>.json`` atomically; return the sidecar dict."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    weights_path, meta_path = _paths(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic.atomic_path(weights_path) as tmp:
        save_file(state, str(tmp))
    meta = {"format_version": FORMAT_VERSION, "kind": kind, "architecture": architecture,
            "arch_kwargs": arch_kwargs, "class_names": list(class_names or []),
            "config": config or {}, "metrics": metrics or {}, "weights_file": weights_path.name,
            "sha256": atomic.sha256_file(weights_path), **(extra or {})}
    atomic.write_json(meta_path, meta)
    return meta


def read_meta(path) -> dict:
    """The sidecar of a checkpoint (``x.safetensors`` or ``x.json``)."""
    _, meta_path = _paths(path)
    if not meta_path.exists():
        raise ValueError(f"{meta_path} is missing: a Defuse checkpoint needs its JSON sidecar. "
                         "Pass --architecture to load bare weights into a built-in network.")
    meta = atomic.read_json(meta_path, fix="re-create the checkpoint")
    for key in ("kind", "architecture", "arch_kwargs"):
        if key not in meta:
            raise ValueError(f"{meta_path} lacks {key!r}; it is not a Defuse checkpoint sidecar")
    return meta


def _read_safetensors(path: Path) -> dict:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e}); re-create or re-export it") from e


def _mismatch(model: nn.Module, state: dict) -> str:
    """The key and shape differences in a few words (torch lists every key: thousands of characters)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} is {tuple(state[k].shape)}, expected {tuple(v.shape)}" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    parts = [f"{len(keys)} {what} tensor(s), e.g. {keys[0]}" for what, keys in
             (("missing", missing), ("unexpected", unexpected)) if keys]
    parts += [f"{len(shapes)} of another shape, e.g. {shapes[0]}"] if shapes else []
    return "; ".join(parts) or "the state dict does not load"


def _load_state(model: nn.Module, state: dict, source) -> nn.Module:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"the weights in {source} do not fit this architecture ({_mismatch(model, state)}). "
                         "Check --architecture, the number of classes and the image size/channels.") from e
    if any(not torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise ValueError(f"{source} holds NaN or infinite weights; the model diverged: retrain it")
    return model.eval()


def load_model(path, *, kind: Optional[str] = None, verify: bool = True) -> tuple[nn.Module, dict]:
    """Rebuild a network from a Defuse checkpoint; returns ``(model, sidecar)``."""
    weights_path, meta_path = _paths(path)
    meta = read_meta(meta_path)
    weights_path = weights_path.with_name(meta.get("weights_file", weights_path.name))
    if kind is not None and meta["kind"] != kind:
        raise ValueError(f"{meta_path} holds a {meta['kind']}, not a {kind}")
    if not weights_path.exists():
        raise ValueError(f"{weights_path} is missing (its sidecar {meta_path.name} is there)")
    if verify and meta.get("sha256") and atomic.sha256_file(weights_path) != meta["sha256"]:
        raise ValueError(f"{weights_path} does not match the checksum in its sidecar: the file is corrupt "
                         "or was replaced. Re-run the step that made it.")
    if meta["architecture"] in EXTERNAL_FORMATS:
        return EXTERNAL_FORMATS[meta["architecture"]](weights_path.with_name(meta["weights_file"])), meta
    build = build_classifier if meta["kind"] == "classifier" else build_vae
    try:
        model = build(meta["architecture"], **meta["arch_kwargs"])
    except TypeError as e:
        raise ValueError(f"{meta_path}: arch_kwargs do not fit {meta['architecture']} ({e})") from e
    return _load_state(model, _read_safetensors(weights_path), weights_path), meta


class _ExternalClassifier(nn.Module):
    """Wraps a TorchScript / torch.export module that takes images in [0, 1]."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


def _load_export(path: Path) -> nn.Module:
    try:
        return _ExternalClassifier(torch.export.load(str(path)).module()).eval()
    except Exception as e:
        raise ValueError(f"{path} is not a loadable torch.export program ({e})") from e


def _load_torchscript(path: Path) -> nn.Module:
    # TorchScript archives are read by TorchScript's own restricted loader, not by a general unpickler.
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as e:
        raise ValueError(f"{path} is not a loadable TorchScript file ({e})") from e


EXTERNAL_FORMATS = {"torch.export": _load_export, "torchscript": _load_torchscript}


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def _torch_load_state(path: Path, allow_pickle: bool) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as e:  # torch raises UnpicklingError and others for unsafe or broken files
        if allow_pickle or "Weights only load failed" not in str(e):  # not a refused pickle: a broken file
            first = str(e).strip().splitlines()[0].split(". ")[0][:160] if str(e).strip() else ""
            why = f"{type(e).__name__}: {first}" if len(first) > 8 else type(e).__name__
            raise ValueError(f"{path} is not a readable PyTorch checkpoint ({why}); pick the "
                             ".safetensors, .pt or .pth file the model was saved to") from e
        raise ValueError(
            f"{path} is a pickle that holds more than plain tensors, and unpickling it could run code. "
            "Defuse refused it. Convert it where you trust it: "
            "`safetensors.torch.save_file(model.state_dict(), 'model.safetensors')`, or, if you trust this "
            "file, opt in explicitly with --allow-pickle (allow_pickle=True in Python)."
        ) from e
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} is not a state dict (a mapping of names to tensors)")
    return obj


def load_classifier(path, *, architecture: Optional[str] = None, arch_kwargs: Optional[dict] = None,
                    allow_pickle: bool = False) -> tuple[nn.Module, dict]:
    """Load a classifier from any supported file; returns ``(model, sidecar-like meta)``.

    - Defuse checkpoint (``.safetensors`` + ``.json``): rebuilt from its sidecar.
    - bare ``.safetensors`` or a ``.pt``/``.pth`` state dict: loaded into ``architecture`` built with
      ``arch_kwargs`` (channels, image_size, num_classes) — the caller takes those from the data.
    - TorchScript archive or ``torch.export`` ``.pt2`` file: used as it is (input: images in [0, 1]).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"classifier file {path} does not exist")
    if path.suffix in (".safetensors", ".json") and _paths(path)[1].exists():
        return load_model(path, kind="classifier")
    if path.suffix == ".pt2":
        return _load_export(path), {"kind": "classifier", "architecture": "torch.export"}
    if _is_torchscript(path):
        return _load_torchscript(path), {"kind": "classifier", "architecture": "torchscript"}
    if architecture is None:
        raise ValueError(f"{path} holds bare weights: say which built-in network they belong to with "
                         "--architecture (paper-cnn or resnet18)")
    is_safetensors = path.suffix == ".safetensors"
    state = _read_safetensors(path) if is_safetensors else _torch_load_state(path, allow_pickle)
    model = build_classifier(architecture, **(arch_kwargs or {}))
    return _load_state(model, state, path), {"kind": "classifier", "architecture": architecture,
                                             "arch_kwargs": arch_kwargs or {}}


def import_external(src, dest, *, architecture: str, class_names: list, extra: Optional[dict] = None) -> dict:
    """Copy a TorchScript / torch.export file next to a sidecar at ``dest`` (e.g. ``classifier/model``)."""
    src, (_, meta_path) = Path(src), _paths(dest)
    weights = meta_path.with_suffix(src.suffix or ".pt")
    atomic.write_bytes(weights, src.read_bytes())
    meta = {"format_version": FORMAT_VERSION, "kind": "classifier", "architecture": architecture,
            "arch_kwargs": {}, "class_names": list(class_names), "config": {}, "metrics": {},
            "weights_file": weights.name, "sha256": atomic.sha256_file(weights), **(extra or {})}
    atomic.write_json(meta_path, meta)
    return meta


def check_compatible(meta: dict, *, channels: int, image_size: int, num_classes: int, what: str) -> None:
    """Raise ValueError when a checkpoint was made for other images or classes than the data's."""
    kw = meta.get("arch_kwargs", {})
    for key, have in (("channels", channels), ("image_size", image_size), ("num_classes", num_classes)):
        want = kw.get(key)
        if want is not None and int(want) != int(have):
            raise ValueError(f"the {what} expects {key}={want} but the data has {key}={have}. "
                             f"Use a {what} trained on this data, or reload the data to match "
                             "(--size for image size).")
