"""The one device resolver of geodiff ("auto", "cpu", "cuda", "cuda:N" or "mps" -> torch.device) and the
one place that sets how the network runs on the CPU (intra-op threads, the allocator, the precision).

CPU thread rule (:func:`cpu_threads`): ``threads = max(1, cores // workers)``, where ``cores`` are the
cores this process may run on (``os.sched_getaffinity``) and ``workers`` the processes running the
network at the same time on this machine. The scene jobs take ``workers = cores``: every tile call
runs torch on one thread (``tiling.runner.torch_threads``, which keeps ``--workers 1/2/4`` and
in-process runs bit-identical), and a machine's cores are used by ``--workers N`` processes, not by
threads. ``GEODIFF_THREADS=N`` overrides both (they read the same variable). One thread is also the
cheapest: on the shared 2-core machine a second thread cost 1.6x the CPU time per network call and
was slower in wall time too, waiting for cores other jobs held (bench/cpu_profile.py). The thread
count changes results in the last bits (about 1e-6 relative), never more.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import sys

import torch

from geodiff.errors import InvalidSettingError

__all__ = [
    "configure_cpu",
    "cpu_precision",
    "cpu_threads",
    "gpu_chunk",
    "gpu_precision",
    "resolve_device",
    "tune_cpu_allocator",
]

log = logging.getLogger(__name__)

#: Environment variable that overrides the thread rule (a whole number >= 1).
THREADS_ENV = "GEODIFF_THREADS"
#: Environment variable that switches the allocator tuning off ("0") (see :func:`tune_cpu_allocator`).
ALLOCATOR_ENV = "GEODIFF_CPU_ALLOCATOR"
#: Environment variable that opts in to bfloat16 autocast of the network on the CPU ("bf16").
PRECISION_ENV = "GEODIFF_CPU_PRECISION"
#: Environment variable for the network's precision on accelerators ("fp32", "bf16"; :func:`gpu_precision`).
GPU_PRECISION_ENV = "GEODIFF_GPU_PRECISION"
#: Environment variable for the tiles per network evaluation on accelerators (see :func:`gpu_chunk`).
GPU_CHUNK_ENV = "GEODIFF_GPU_CHUNK"
#: Default tiles per network evaluation on accelerators: one despeckle block (4 x 4 tiles) per call,
#: so neither the PnP-ADMM steps (one draw) nor the refinement (whole draws) pad a chunk.
GPU_CHUNK = 16
#: Default network precision on accelerators (None: float32, TF32 convolutions as torch sets them).
GPU_PRECISION: torch.dtype | None = None

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_ALLOCATOR_BYTES = 1 << 30
_allocator_done: bool | None = None


def cpu_threads(workers: int = 1, cores: int | None = None, env: dict[str, str] | None = None) -> int:
    """Intra-op torch threads for one of ``workers`` processes sharing ``cores`` CPU cores (see the
    module docstring): ``GEODIFF_THREADS`` when set in ``env`` (default ``os.environ``), else
    ``max(1, cores // workers)``; ``cores`` defaults to the cores this process may run on.

    Raises:
        InvalidSettingError (ValueError): ``workers`` < 1, or ``GEODIFF_THREADS`` is not an integer >= 1
            (the message names the variable and the fix).
    """
    env = os.environ if env is None else env
    if workers < 1:
        raise InvalidSettingError(f"workers must be >= 1 (got {workers})")
    raw = env.get(THREADS_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise InvalidSettingError(
                f"{THREADS_ENV}={raw!r} is not a thread count; set it to a whole number >= 1 or unset it"
            )
        return value
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, int(cores) // int(workers))


def tune_cpu_allocator(env: dict[str, str] | None = None) -> bool:
    """Keep freed network activations in the process instead of unmapping them (glibc only).

    Why: a full-size activation of the prior (e.g. 4 x 96 x 256 x 256 float32, 100 MB) is above glibc's
    mmap threshold (at most 32 MB by default), so every one is mapped, page-faulted in and unmapped
    again; on the CPU those page faults cost about 40 % of a network call (bench/cpu_profile.py).
    Raising the mmap and trim thresholds to 1 GiB (``mallopt``) lets the heap reuse the memory: same
    numbers, same peak RSS, freed memory stays with the process until it exits. Idempotent; a no-op
    (returns False) off glibc or with ``GEODIFF_CPU_ALLOCATOR=0``.
    """
    global _allocator_done
    env = os.environ if env is None else env
    if env.get(ALLOCATOR_ENV, "").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    if _allocator_done is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, _ALLOCATOR_BYTES))
            ok = bool(libc.mallopt(_M_TRIM_THRESHOLD, _ALLOCATOR_BYTES)) and ok
        except (OSError, AttributeError):  # not glibc (musl has no mallopt)
            ok = False
        _allocator_done = ok
        log.debug("CPU allocator tuning %s", "applied" if ok else "not available")
    return _allocator_done


def cpu_precision(env: dict[str, str] | None = None) -> torch.dtype | None:
    """The autocast dtype the network runs in on the CPU: None (float32, the default) or
    ``torch.bfloat16`` with ``GEODIFF_CPU_PRECISION=bf16`` (opt-in: about 2x faster on CPUs with
    AVX512-BF16/AMX, results differ beyond float rounding; see bench/README.md for its accuracy).

    Raises:
        InvalidSettingError (ValueError): another value than fp32 / bf16.
    """
    env = os.environ if env is None else env
    raw = env.get(PRECISION_ENV, "").strip().lower()
    if raw in ("", "fp32", "float32"):
        return None
    if raw in ("bf16", "bfloat16"):
        if not _native_bf16():
            log.warning(
                "%s=bf16 on a CPU without native bfloat16 (AVX512-BF16/AMX): the network is slower than "
                "in float32; unset %s",
                PRECISION_ENV,
                PRECISION_ENV,
            )
        return torch.bfloat16
    raise InvalidSettingError(f"{PRECISION_ENV}={raw!r} is not a precision; use fp32 or bf16")


def gpu_precision(env: dict[str, str] | None = None) -> torch.dtype | None:
    """The autocast dtype the network runs in on an accelerator (CUDA, MPS): None (float32) or
    ``torch.bfloat16``; ``GEODIFF_GPU_PRECISION=fp32|bf16`` overrides :data:`GPU_PRECISION`. bfloat16
    halves the bytes every convolution moves; its accuracy and speed on an H200 are in
    bench/README.md (``bench/gpu_speed.py``).

    Raises:
        InvalidSettingError (ValueError): another value than fp32 / bf16.
    """
    env = os.environ if env is None else env
    raw = env.get(GPU_PRECISION_ENV, "").strip().lower()
    if raw == "":
        return GPU_PRECISION
    if raw in ("fp32", "float32"):
        return None
    if raw in ("bf16", "bfloat16"):
        return torch.bfloat16
    raise InvalidSettingError(f"{GPU_PRECISION_ENV}={raw!r} is not a precision; use fp32 or bf16")


def gpu_chunk(env: dict[str, str] | None = None) -> int:
    """Tiles per network evaluation on an accelerator: :data:`GPU_CHUNK` unless ``GEODIFF_GPU_CHUNK=N``.
    Fixed for a run, whatever ``--batch`` or the number of tiles (see :mod:`geodiff.priors.chunked`),
    so results stay bit-identical across batch and worker settings on one device.

    Raises:
        InvalidSettingError (ValueError): not a whole number >= 1.
    """
    env = os.environ if env is None else env
    raw = env.get(GPU_CHUNK_ENV, "").strip()
    if not raw:
        return GPU_CHUNK
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise InvalidSettingError(
            f"{GPU_CHUNK_ENV}={raw!r} is not a tile count; set a whole number >= 1 or unset it"
        )
    return n


@functools.lru_cache(maxsize=1)
def _native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (where autocast to bf16 is faster)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def configure_cpu(workers: int = 1, threads: bool = True) -> int:
    """Set this process up to run the network on the CPU: the allocator (:func:`tune_cpu_allocator`)
    and, with ``threads``, torch's intra-op threads by :func:`cpu_threads`; returns the thread count
    torch uses afterwards. Raises what :func:`cpu_threads` raises."""
    tune_cpu_allocator()
    if threads:
        n = cpu_threads(workers)
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return torch.get_num_threads()


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
