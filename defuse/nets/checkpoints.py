"""Checkpoints: safetensors weights + a JSON sidecar that says how to rebuild the network.

The safe path is safetensors + an architecture by name (built-in, or the user's own ``module:Class``).
A format that can run code when loaded — a pickle beyond ``weights_only``, TorchScript, torch.export
(:mod:`defuse.nets.model_files`) — is opened only when :mod:`defuse.nets.trust` says this user trusts that file's
checksum, or the caller passes ``trust_code=True`` for the user's explicit opt-in. The format is read
from the content, and a sidecar's checksum is verified before the file it names is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..runtime import atomic
from ..runtime.words import option
from . import code_models, trust
from .architectures import arch_kwargs_for, build_classifier, build_vae
from .model_files import PICKLE, SAFETENSORS, detect_format

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
                         f"Pass {option('architecture')} to load bare weights into a built-in network.")
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


def load_state_into(model: nn.Module, state: dict, source) -> nn.Module:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"the weights in {source} do not fit this architecture ({_mismatch(model, state)}). "
                         f"Check {option('architecture')}, the number of classes and the image size/channels.") from e
    if any(not torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise ValueError(f"{source} holds NaN or infinite weights; the model diverged: retrain it")
    return model.eval()


def load_model(path, *, kind: Optional[str] = None, verify: bool = True,
               trust_code: bool = False) -> tuple[nn.Module, dict]:
    """Rebuild a network from a Defuse checkpoint; returns ``(model, sidecar)``.

    A sidecar may point at a TorchScript / torch.export file (a user's classifier kept in its format):
    that file is verified against the sidecar's checksum, then opened only if this user trusts it.
    """
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
    if meta["architecture"] in code_models.LOADERS:
        # a sidecar from elsewhere grants nothing: the checksum must be in this user's trust store
        trust.require(weights_path, meta["architecture"], trust_code=trust_code,
                      sha256=meta.get("sha256") if verify else None)
        return code_models.LOADERS[meta["architecture"]](weights_path), meta
    build = build_classifier if meta["kind"] == "classifier" else build_vae
    try:
        model = build(meta["architecture"], **meta["arch_kwargs"])
    except TypeError as e:
        raise ValueError(f"{meta_path}: arch_kwargs do not fit {meta['architecture']} ({e})") from e
    return load_state_into(model, _read_safetensors(weights_path), weights_path), meta


EXTERNAL_FORMATS = tuple(code_models.LOADERS)  # architectures that are a file's own code, not a name


def _torch_load_state(path: Path, trust_code: bool) -> dict:
    """A ``torch.save`` file's state dict: the safe ``weights_only`` reader first; the general unpickler
    only for a file this user trusts."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError and others for unsafe or broken files
        if "Weights only load failed" not in str(e):  # not a refused pickle: a broken file
            raise ValueError(f"{path} is not a readable PyTorch checkpoint ({_first_words(e)}); pick the "
                             ".safetensors, .pt or .pth file the model was saved to") from e
        trust.require(path, PICKLE, trust_code=trust_code)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:
            raise ValueError(f"{path} could not be unpickled ({_first_words(e2)}): the code it needs may be "
                             "missing here") from e2
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} is not a state dict (a mapping of names to tensors)")
    return obj


def load_pickled_module(path, *, trust_code: bool = False) -> Optional[nn.Module]:
    """The network object of a ``torch.save(model)`` file (for conversion), or None for a plain state dict.
    A full pickle is unpickled only when this user trusts the file."""
    path = Path(path)
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return None  # the safe reader took it: tensors only, no network object inside
    except Exception as e:
        if "Weights only load failed" not in str(e):
            raise ValueError(f"{path} is not a readable PyTorch checkpoint ({_first_words(e)})") from e
    trust.require(path, PICKLE, trust_code=trust_code)
    obj = torch.load(path, map_location="cpu", weights_only=False)
    return obj if isinstance(obj, nn.Module) else None


def _first_words(e: Exception) -> str:
    first = str(e).strip().splitlines()[0].split(". ")[0][:160] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}" if len(first) > 8 else type(e).__name__


def load_classifier(path, *, architecture: Optional[str] = None, geometry: Optional[dict] = None,
                    arch_kwargs: Optional[dict] = None, trust_code: bool = False) -> tuple[nn.Module, dict]:
    """Load a classifier from any supported file; returns ``(model, sidecar-like meta)``.

    - Defuse checkpoint (``.safetensors`` + ``.json``): rebuilt from its sidecar.
    - bare safetensors or a ``torch.save`` state dict: loaded into ``architecture`` — a built-in name or
      the user's ``module:Class`` — built from the data's ``geometry`` (channels, image_size, num_classes;
      for ``module:Class`` those its constructor accepts) and the user's own ``arch_kwargs``.
    - TorchScript or torch.export: used as it is (input: images in [0, 1]).
    The format is read from the content; code-bearing files need the user's trust (``trust_code``).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"classifier file {path} does not exist")
    if path.suffix in (".safetensors", ".json") and _paths(path)[1].exists():
        return load_model(path, kind="classifier", trust_code=trust_code)
    fmt = detect_format(path)
    if fmt in code_models.LOADERS:
        trust.require(path, fmt, trust_code=trust_code)
        return code_models.LOADERS[fmt](path), {"kind": "classifier", "architecture": fmt}
    if architecture is None:
        raise ValueError(f"{path} holds bare weights: name the network they belong to with "
                         f"{option('architecture')}: "
                         "a built-in one (paper-cnn, resnet18) or your own class as module:Class")
    state = _read_safetensors(path) if fmt == SAFETENSORS else _torch_load_state(path, trust_code)
    kwargs = arch_kwargs_for(architecture, geometry or {}, arch_kwargs)
    model = build_classifier(architecture, **kwargs)
    return load_state_into(model, state, path), {"kind": "classifier", "architecture": architecture,
                                             "arch_kwargs": kwargs}


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


def trusted_workspace_files(root) -> list[str]:
    """Trust the code-bearing model files of the workspace at ``root`` whose bytes match their sidecar
    (the user's ``--trust-code`` on a workspace command); returns their checksums."""
    trusted = []
    for meta_path in sorted(Path(root).glob("*/*.json")):
        try:
            meta = atomic.read_json(meta_path, fix="re-create the checkpoint")
        except ValueError:  # not every JSON of a workspace is a sidecar; a broken one is not ours to judge here
            continue
        if not isinstance(meta, dict) or meta.get("architecture") not in EXTERNAL_FORMATS:
            continue
        weights = meta_path.with_name(str(meta.get("weights_file", "")))
        if weights.is_file() and meta.get("sha256") == atomic.sha256_file(weights):
            trusted.append(trust.trust(weights, meta["architecture"], meta["sha256"]))
    return trusted


def check_compatible(meta: dict, *, channels: int, image_size: int, num_classes: int, what: str) -> None:
    """Raise ValueError when a checkpoint was made for other images or classes than the data's."""
    kw = meta.get("arch_kwargs", {})
    for key, have in (("channels", channels), ("image_size", image_size), ("num_classes", num_classes)):
        want = kw.get(key)
        if want is not None and int(want) != int(have):
            raise ValueError(f"the {what} expects {key}={want} but the data has {key}={have}. "
                             f"Use a {what} trained on this data, or reload the data to match "
                             f"(for the image size: {option('size')}).")
