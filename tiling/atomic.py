"""All-or-nothing file outputs: write under a hidden temporary name, then rename into place.

Why: a job that fails, is interrupted (Ctrl-C, a killed worker) or runs out of disk must never leave a
half-written file under the name a user or a later job trusts. Every writer outside the diffusion core
(COG writer, tile-plan GeoPackage, quick-look PNG) writes through :func:`atomic_path`. The temporary
file lies in the output's own folder, so the final ``os.replace`` is a rename on one file system
(atomic on POSIX and Windows), and it keeps the output's suffix so that GDAL, PIL or pyogrio pick the
same driver they would pick for the final name.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import re
import shutil
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from tiling.errors import OutputWriteError, TilingError

log = logging.getLogger(__name__)

__all__ = [
    "Terminated",
    "atomic_path",
    "check_stop",
    "check_free_space",
    "free_bytes",
    "handle_termination",
    "remove_leftovers",
    "remove_quietly",
    "scratch_path",
    "write_error",
]

_MB = 2**20
#: errno values that mean "the output's file system failed us", not "the input is wrong"
_WRITE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
# libtiff/GDAL report a full disk in their message text, not in an errno
_NO_SPACE = re.compile(r"no space left|disk full|ENOSPC", re.IGNORECASE)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C (temporary files are removed on the way).

    ``signum`` is the signal's number; the command line exits with 128 + signum (143, 129)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")
        self.signum = signum


#: set while a termination signal (or Ctrl-C) unwinds the main thread: other threads stop too
_STOP: dict[str, int | None] = {"signum": None}


def check_stop() -> None:
    """Raise :class:`Terminated` (or ``KeyboardInterrupt`` for Ctrl-C) in any thread once the main
    thread was interrupted inside :func:`handle_termination`; a no-op otherwise. Long loops outside
    the main thread (the scenes of a batch) call it between units of work (blocks)."""
    signum = _STOP["signum"]
    if signum is None:
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt("interrupted")
    raise Terminated(signum)


@contextlib.contextmanager
def handle_termination() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` (a ``KeyboardInterrupt``), and
    they and Ctrl-C make :func:`check_stop` raise in every other thread too.

    Only in the main thread (signal handlers cannot be set elsewhere; there it is a no-op). The
    previous handlers are restored on exit.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:  # noqa: ARG001
        _STOP["signum"] = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    wanted = [s for s in ("SIGTERM", "SIGHUP") if hasattr(signal, s)]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # Ctrl-C: same, as KeyboardInterrupt
        wanted.append("SIGINT")
    old = {}
    for name in wanted:
        sig = getattr(signal, name)
        old[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        _STOP["signum"] = None


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Bytes free to this process on ``folder``'s file system (None when it cannot be told)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def check_free_space(folder: str | os.PathLike, needed: int) -> None:
    """Log a warning when ``folder`` has less than ``needed`` bytes free; never raises.

    ``needed`` is an estimate (compression usually makes the output smaller), hence a warning.
    """
    free = free_bytes(folder)
    if free is not None and free < needed:
        log.warning(
            "only %.0f MB free on %s; the output needs up to about %.0f MB while it is written: "
            "the run may fail with 'no space left'",
            free / _MB,
            folder,
            needed / _MB,
        )


def write_error(
    exc: BaseException,
    folder: str | os.PathLike,
    needed: int | None = None,
    free_before: int | None = None,
    room: int = 0,
) -> OutputWriteError | None:
    """The :class:`~tiling.errors.OutputWriteError` that ``exc`` (raised while writing into ``folder``)
    stands for, or None when ``exc`` is not a write failure (a bug, a bad input, Ctrl-C...).

    A full disk is recognised by ``errno.ENOSPC``, by GDAL/libtiff's message, or by the folder having
    less than ``room`` (what the failing step needed at most, e.g. two blocks, or a whole COG when
    GDAL removes its own partial output) plus 1 MB free at the moment of failure; the message then
    reads "no space left on <folder>: needs about N MB, M MB free", M being ``free_before`` (the
    free space when the run started) when given.
    """
    if isinstance(exc, OutputWriteError):
        return exc
    if not isinstance(exc, OSError) and not _is_gdal_error(exc):
        return None
    if isinstance(exc, (TilingError, FileNotFoundError, FileExistsError, IsADirectoryError)):
        return None  # tiling's own errors (an unreadable input block...) already say what is wrong
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None  # CPLE_*.errno is GDAL's
    text = str(exc).strip()
    free = free_bytes(folder)
    full = code == errno.ENOSPC or bool(_NO_SPACE.search(text))
    if not full and free is not None:
        full = free < _MB + room
    if full:
        code = errno.ENOSPC
        shown = free_before if free_before is not None else free
        need = f"needs about {needed / _MB:.0f} MB, " if needed else ""
        have = "?" if shown is None else f"{shown / _MB:.0f}"
        msg = f"no space left on {folder}: {need}{have} MB free; free some space or write to another folder"
    else:
        cause = os.strerror(code) if code in _WRITE_ERRNOS else (text.splitlines() or [type(exc).__name__])[0]
        code = code if code in _WRITE_ERRNOS else errno.EIO
        msg = f"writing to {folder} failed: {cause}; check the disk or write to another folder"
    err = OutputWriteError(msg)
    err.errno = code
    return err


def _is_gdal_error(exc: BaseException) -> bool:
    """rasterio's and GDAL's (``CPLE_*``) exceptions, which carry no errno."""
    return type(exc).__module__.startswith("rasterio") or type(exc).__name__.startswith("CPLE_")


def scratch_path(final: str | os.PathLike, tag: str = "part") -> Path:
    """A unique hidden name beside ``final`` that keeps its suffix.

    ``out/scene.tif`` -> ``out/.scene.tif.<pid>-<8 hex>.<tag>.tif``. Nothing is created.
    """
    out = Path(final)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return out.with_name(f".{out.name}.{token}.{tag}{out.suffix}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        log.debug("fsync of folder %s not supported", folder)
    finally:
        os.close(fd)


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.[a-z]+(\.|$)")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def remove_leftovers(final: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a killed run (SIGKILL, power loss) left beside ``final``.

    They are the hidden ``.<name>.<pid>-<8 hex>.<tag>...`` files of :func:`scratch_path` (and their
    GDAL side-cars such as ``.ovr.tmp``) whose process is gone; files of a live process (another run
    writing the same output) are left alone. Each removal is logged as a warning. Returns the removed
    paths.
    """
    out = Path(final)
    folder = out.parent if str(out.parent) else Path(".")
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _LEFTOVER.match(p.name)
        if not m or m["name"] != out.name or _alive(int(m["pid"])):
            continue
        try:
            size = p.stat().st_size
            p.unlink()
        except OSError:
            log.warning("could not remove %s, left by an interrupted run; remove it by hand", p)
            continue
        removed.append(p)
        log.warning("removed %s (%.1f MB), left by an interrupted run (process %s)", p, size / _MB, m["pid"])
    return removed


def remove_quietly(path: Path) -> None:
    """Remove ``path`` and GDAL side-car files named after it (``.aux.xml``, ``.ovr``, ``-wal``...).

    Never raises: it runs while another error is already on its way up.
    """
    for p in (path, *path.parent.glob(glob.escape(path.name) + "?*")):
        try:
            p.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove temporary file %s", p)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success fsync it and rename it to ``final``.

    Use::

        with atomic_path("out/plan.gpkg") as tmp:
            gdf.to_file(tmp, driver="GPKG")

    The body must create ``tmp`` (and close it). If the body raises (``KeyboardInterrupt`` included),
    the temporary file is removed and ``final`` is untouched (an existing file stays as it was);
    otherwise the file is fsynced, ``verify(tmp)`` (if given) re-opens and checks it, and ``final``
    is replaced in one rename. The caller decides beforehand whether replacing an
    existing ``final`` is allowed (see :func:`tiling.cog.check_output_path`); the folder must exist.

    Raises:
        FileNotFoundError: the body finished without creating the temporary file.
        OSError: the rename or fsync failed (disk full, file system gone); ``final`` is untouched.
        Whatever ``verify`` raises (e.g. :class:`~tiling.errors.OutputVerifyError`).
    """
    out = Path(final)
    tmp = scratch_path(out)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{out}: the writer produced no file; nothing was written")
        _fsync_file(tmp)
        if verify is not None:
            verify(tmp)
        os.replace(tmp, out)
        _fsync_folder(out.parent)
    finally:
        remove_quietly(tmp)
