"""Save and load model weights as safetensors plus a JSON config (never pickle).

Why checks here: a weight file copied to an air-gapped station can arrive truncated, or be
paired with the wrong config; both must fail with a message that says what to do.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from geodiff.errors import InputError


def _atomic_write(path: Path, write) -> None:  # noqa: ANN001 - write(tmp_path: str) creates the file
    """``write(tmp)`` into a hidden file beside ``path``, fsync it, then rename it over ``path``.

    The diffusion core may not import :mod:`tiling` (layering), so weights and checkpoints keep this
    small copy of :func:`tiling.atomic.atomic_path`; everything outside the core writes through that.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Write tensors atomically (contiguous CPU copies) to a .safetensors file."""
    t = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_write(Path(path), lambda tmp: save_file(t, tmp, metadata=metadata))


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")

    _atomic_write(Path(path), write)


def load_json(path: str | os.PathLike) -> dict:
    """Read a model config; FileNotFoundError / ValueError (damaged JSON) name the file and the fix."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: model config not found; each .safetensors needs its .json next to it")
    try:
        with open(p) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{p}: model config is not valid JSON ({exc}); re-copy or re-export the model"
        ) from exc


def check_safetensors(path: str | os.PathLike) -> dict:
    """Validate the header and the file size of a .safetensors file; return its header.

    Catches truncated copies before the library reads past the end of the file.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: weight file not found (check the path or run `geodiff models`)")
    size = p.stat().st_size
    fix = "the file is damaged or truncated; copy it again or re-export the model"
    if size < 8:
        raise InputError(f"{p}: only {size} bytes, too short for a safetensors file; {fix}")
    with open(p, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > size - 8:
            raise InputError(f"{p}: safetensors header says {n} bytes but the file has {size - 8}; {fix}")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{p}: safetensors header is not valid JSON; {fix}") from exc
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise InputError(f"{p}: size is {size} bytes but its header describes {8 + n + end}; {fix}")
    return header


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a checked .safetensors file on the CPU (see :func:`check_safetensors`)."""
    check_safetensors(path)
    return load_file(str(path), device="cpu")


def load_state_into(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """load_state_dict with a message that names the missing/unexpected/mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    shape = [k for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
    if missing or extra or shape:
        detail = []
        if missing:
            detail.append(f"missing {len(missing)} (e.g. {missing[0]})")
        if extra:
            detail.append(f"unexpected {len(extra)} (e.g. {extra[0]})")
        if shape:
            k = shape[0]
            detail.append(
                f"{len(shape)} of other shape (e.g. {k}: {tuple(tensors[k].shape)} vs {tuple(own[k].shape)})"
            )
        raise InputError(
            f"{where}: weights do not match the architecture in the config ({'; '.join(detail)}); "
            "the .json and .safetensors belong to different models, pair them correctly"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})
