"""The user's trust in code-bearing model files, by sha256 — kept per user, never per workspace.

A workspace can be copied from anyone, so nothing in it (a sidecar, a project.json) can grant trust.
Trust is a list of file checksums in the user's own configuration folder
(``$DEFUSE_TRUST_STORE``, else ``$XDG_CONFIG_HOME/defuse/trusted-files.json``, else
``~/.config/defuse/trusted-files.json``). A file is added only by the user's explicit act: the CLI's
``--trust-code`` or the app's "I trust this file" box, each naming the file and its checksum.
The checksum is computed from the bytes on disk *before* the file is opened by any loader, so a file
swapped after it was trusted is refused.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from ..runtime import atomic
from .model_files import FORMAT_WORDS, RISK_WORDS

STORE_ENV = "DEFUSE_TRUST_STORE"


class UntrustedCodeError(ValueError):
    """A code-bearing model file that this user has not trusted. ``path``, ``fmt`` and ``sha256`` say which."""

    def __init__(self, path, fmt: str, sha256: str):
        self.path, self.fmt, self.sha256 = Path(path), fmt, sha256
        super().__init__(
            f"{self.path.name} is a {FORMAT_WORDS[fmt]}: {RISK_WORDS[fmt]}. Defuse refused it and read "
            f"nothing from it. Safe alternative: save the weights as safetensors and name the network "
            f"(a built-in one, or your own as module:Class), or convert this file once where you trust it. "
            f"If you trust this file (sha256 {sha256[:16]}…), opt in for it explicitly.")


def store_path() -> Path:
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV])
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "defuse" / "trusted-files.json"


def _entries() -> dict:
    path = store_path()
    if not path.exists():
        return {}
    data = atomic.read_json(path, fix=f"delete {path} and trust your files again")
    return data.get("files", {}) if isinstance(data, dict) else {}


def is_trusted(sha256: str) -> bool:
    return bool(sha256) and sha256 in _entries()


def trust(path, fmt: str, sha256: str | None = None) -> str:
    """Record the user's trust in ``path`` (its current bytes); returns the checksum."""
    sha256 = sha256 or atomic.sha256_file(path)
    files = _entries()
    files[sha256] = {"format": fmt, "file": str(Path(path).resolve()),
                     "trusted_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    atomic.write_json(store_path(), {"format_version": 1, "files": files})
    return sha256


def require(path, fmt: str, *, trust_code: bool = False, sha256: str | None = None) -> str:
    """Allow loading the code-bearing ``path``: trusted before, or trusted now (``trust_code``); else raise.

    Returns the file's checksum, computed here from its bytes (or ``sha256``, when the caller has just
    verified the file against it).
    """
    sha256 = sha256 or atomic.sha256_file(path)
    if trust_code:
        trust(path, fmt, sha256)
    elif not is_trusted(sha256):
        raise UntrustedCodeError(path, fmt, sha256)
    return sha256
