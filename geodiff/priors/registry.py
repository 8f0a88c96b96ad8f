"""Where priors live and how to find them by name.

Shipped priors sit in geodiff/priors/weights/; user priors in $GEODIFF_MODELS (a folder, or several
separated by os.pathsep) or else ~/.local/share/geodiff/models. Each model is a pair
<name>.safetensors + <name>.json. A user model with a shipped model's name shadows it.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import torch

from geodiff.device import resolve_device
from geodiff.priors.prior import UNetPrior, load_prior_files

SHIPPED_DIR = Path(__file__).parent / "weights"


def user_dirs() -> list[Path]:
    """Folders searched for user models: $GEODIFF_MODELS (os.pathsep-separated), else the user data folder."""
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


def load(name_or_path: str | os.PathLike = "gray", device: str | torch.device = "cpu") -> UNetPrior:
    """Load a prior by name ("gray", "tiny", a user model) or by path, on ``device`` ("auto", "cuda:N", ...).

    Returns a fresh :class:`~geodiff.priors.prior.UNetPrior` (a DiffusionPrior in float32). Raises
    FileNotFoundError for an unknown name or a missing file, ValueError for a damaged or mismatched
    model and for an unavailable device.
    """
    return load_prior_files(resolve(name_or_path)).to(resolve_device(device))


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, device: str) -> UNetPrior:
    return load_prior_files(path).to(device)


def load_cached(name_or_path: str | os.PathLike = "gray", device: str | torch.device = "cpu") -> UNetPrior:
    """Like :func:`load`, but each (model file, device) pair is loaded once per process and shared.

    A scene's tiles, the fusion and despeckle apps and the benchmarks all call this, so the weights are
    read and moved to the device once. The returned prior is shared: do not call ``.to()`` on it (load
    it for the device you need instead). A model file rewritten on disk is loaded again.
    """
    path = resolve(name_or_path)
    return _cached(str(path), path.stat().st_mtime_ns, str(resolve_device(device)))


load_cached.cache_clear = _cached.cache_clear  # type: ignore[attr-defined]
