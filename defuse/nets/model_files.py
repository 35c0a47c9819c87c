"""What a model file is, read from its bytes (never from its name), and whether loading it runs code.

PyTorch's file formats differ in what *loading* does:

* **safetensors** holds tensors and a JSON header, nothing else: safe to read from anyone.
* **torch.save pickle** (``.pt``/``.pth``; a zip with ``data.pkl``, or an old raw pickle): a plain state
  dict reads safely through ``torch.load(weights_only=True)``; anything more needs the general
  unpickler, which runs whatever the file asks for.
* **TorchScript** (``torch.jit.save``; a zip with ``code/`` or ``constants.pkl``): its Python code is
  compiled and run; ``torch.jit.load`` has no safe mode.
* **torch.export** (``torch.export.save``, ``.pt2``; a zip with ``archive_format`` / ``models/*.json``):
  ``torch.export.load`` calls ``torch.load(weights_only=False)`` and ``pickle.loads`` on its contents.

So the format is decided from the content before a byte is unpickled or compiled, and the loaders ask
:mod:`defuse.nets.trust` before opening a format that can run code.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

SAFETENSORS, PICKLE, TORCHSCRIPT, TORCH_EXPORT = "safetensors", "pickle", "torchscript", "torch.export"

# Formats whose loading can run code carried by the file (a pickle only when weights_only refuses it).
CODE_FORMATS = (PICKLE, TORCHSCRIPT, TORCH_EXPORT)

FORMAT_WORDS = {
    SAFETENSORS: "safetensors file (tensors only)",
    PICKLE: "PyTorch pickle (torch.save) that holds more than plain tensors",
    TORCHSCRIPT: "TorchScript file (torch.jit.save)",
    TORCH_EXPORT: "torch.export program (.pt2)",
}
RISK_WORDS = {
    PICKLE: "unpickling it can run any code hidden in the file",
    TORCHSCRIPT: "loading it compiles and runs the code it carries (TorchScript has no safe mode)",
    TORCH_EXPORT: "torch.export.load unpickles parts of it, which can run any code hidden in the file",
}


def detect_format(path) -> str:
    """One of :data:`SAFETENSORS`, :data:`PICKLE`, :data:`TORCHSCRIPT`, :data:`TORCH_EXPORT`.

    Raises ValueError for a file that is none of them (text, a broken archive, an image...).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from e
    if _looks_like_safetensors(head):
        return SAFETENSORS
    if head[:4] == b"PK\x03\x04":
        return _zip_format(path)
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:  # a pickle's PROTO opcode
        return PICKLE
    raise ValueError(f"{path} is not a model file Defuse can read (neither safetensors, a torch.save file, "
                     "TorchScript nor torch.export); pick the file the model was saved to")


def _looks_like_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length, then the JSON header itself
    return len(head) >= 9 and head[8:9] == b"{" and 0 < struct.unpack("<Q", head[:8])[0] < 100 * 2**20


def _zip_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{path} is a broken archive ({e}); save the model again") from e
    inner = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if any(n.startswith("code/") or n.endswith("constants.pkl") for n in inner):
        return TORCHSCRIPT
    if "archive_format" in inner or any(n.startswith("models/") and n.endswith(".json") for n in inner):
        return TORCH_EXPORT
    if "data.pkl" in inner:
        return PICKLE
    raise ValueError(f"{path} is a zip archive but not a PyTorch model file (no data.pkl, code/ or "
                     "archive_format inside); pick the file the model was saved to")
