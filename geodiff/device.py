"""The one device resolver of geodiff: "auto", "cpu", "cuda", "cuda:N" (or "mps") -> torch.device."""

from __future__ import annotations

import torch

from geodiff.errors import InvalidSettingError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a device name into a usable :class:`torch.device`.

    ``"auto"`` (or None / "") picks the first CUDA device when one is available, else the CPU. A named
    accelerator must exist here.

    Raises:
        ValueError: the name is not a torch device, or it names CUDA (or a CUDA index) / MPS that this
            machine does not have; the message names the fix (``--device cpu`` or ``auto``).
    """
    if device is None or str(device) in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidSettingError(
            f"device {device!r} is not a device name; use auto, cpu, cuda or cuda:N"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidSettingError(
                f"device {str(device)!r}: CUDA is not available here; use --device cpu or auto"
            )
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise InvalidSettingError(
                f"device {str(device)!r}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1}); "
                "pick one of them or use --device auto"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidSettingError(
            f"device {str(device)!r}: MPS is not available here; use --device cpu or auto"
        )
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InvalidSettingError(f"device {str(device)!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev
