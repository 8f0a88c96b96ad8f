"""Where priors live and how to find them by name.

Shipped priors sit in geodiff/priors/weights/; user priors in $GEODIFF_MODELS (a folder, or several
separated by os.pathsep) or else ~/.local/share/geodiff/models. Each model is a pair
<name>.safetensors + <name>.json. A user model with a shipped model's name shadows it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from geodiff.priors.prior import UNetPrior, load_prior_files

SHIPPED_DIR = Path(__file__).parent / "weights"


def user_dirs() -> list[Path]:
    env = os.environ.get("GEODIFF_MODELS")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.local/share/geodiff/models").expanduser()]


def _models_in(folder: Path, origin: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return found
    for w in sorted(folder.glob("*.safetensors")):
        entry: dict[str, Any] = {
            "name": w.stem,
            "path": str(w),
            "config": str(w.with_suffix(".json")),
            "size_bytes": w.stat().st_size,
            "origin": origin,
            "domain": None,
        }
        try:
            with open(w.with_suffix(".json")) as f:
                cfg = json.load(f)
            entry |= {
                "domain": cfg.get("domain"),
                "channels": cfg.get("channels"),
                "stride": cfg.get("stride"),
                "tile": cfg.get("tile"),
                "parameters": cfg.get("parameters"),
                "training_steps": (cfg.get("training") or {}).get("steps"),
            }
        except (OSError, json.JSONDecodeError) as exc:
            entry["error"] = f"config unreadable: {exc}"
        found[w.stem] = entry
    return found


def list_models() -> list[dict[str, Any]]:
    """Shipped and user models (user ones shadow shipped ones of the same name), sorted by name."""
    models = _models_in(SHIPPED_DIR, "shipped")
    for d in reversed(user_dirs()):
        models |= _models_in(d, "user")
    return [models[k] for k in sorted(models)]


def resolve(name_or_path: str | os.PathLike) -> Path:
    """Path of the .safetensors file for a model name or a path (to the file or its .json)."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.suffix in (".safetensors", ".json") or os.sep in s or p.exists():
        w = p.with_suffix(".safetensors") if p.suffix == ".json" else p
        if not w.exists():
            raise FileNotFoundError(f"{w}: prior weight file not found (check the path)")
        return w
    for m in list_models():
        if m["name"] == s:
            return Path(m["path"])
    names = ", ".join(m["name"] for m in list_models()) or "none"
    raise FileNotFoundError(
        f"no prior named {s!r}; known: {names}. Give a path to a .safetensors file, or put "
        f"<name>.safetensors + <name>.json in {user_dirs()[0]} (or $GEODIFF_MODELS)"
    )


def load(name_or_path: str | os.PathLike = "gray", device: str = "cpu") -> UNetPrior:
    """Load a prior by name ("gray", "tiny", a user model) or by path; returns a DiffusionPrior."""
    return load_prior_files(resolve(name_or_path)).to(device)
