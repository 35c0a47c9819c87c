"""Model files that run code when loaded unguarded, built by the tests (never committed as files)."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path


def _payload(marker: Path):
    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('pwned')",))
    return Payload()


def tampered_pt2(src: Path, dest: Path, marker: Path) -> Path:
    """``torch.export.save``'s archive with its first weight switched to a pickle that runs a payload."""
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    cfg_name = next(n for n in entries if n.endswith("data/weights/model_weights_config.json"))
    config = json.loads(entries[cfg_name])
    first = next(iter(config["config"]))
    config["config"][first]["use_pickle"] = True
    entries[cfg_name] = json.dumps(config).encode()
    weight = cfg_name.rsplit("/", 1)[0] + "/" + config["config"][first]["path_name"]
    entries[weight] = pickle.dumps(_payload(marker))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as z:
        for n, data in entries.items():
            z.writestr(n, data)
    return dest


def malicious_pickle(dest: Path, marker: Path) -> Path:
    with open(dest, "wb") as f:
        pickle.dump({"weight": _payload(marker)}, f)
    return dest
