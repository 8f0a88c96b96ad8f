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
import glob
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["atomic_path", "remove_quietly", "scratch_path"]


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
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success fsync it and rename it to ``final``.

    Use::

        with atomic_path("out/plan.gpkg") as tmp:
            gdf.to_file(tmp, driver="GPKG")

    The body must create ``tmp`` (and close it). If the body raises (``KeyboardInterrupt`` included),
    the temporary file is removed and ``final`` is untouched (an existing file stays as it was);
    otherwise ``final`` is replaced in one rename. The caller decides beforehand whether replacing an
    existing ``final`` is allowed (see :func:`tiling.cog.check_output_path`); the folder must exist.

    Raises:
        FileNotFoundError: the body finished without creating the temporary file.
        OSError: the rename or fsync failed (disk full, file system gone); ``final`` is untouched.
    """
    out = Path(final)
    tmp = scratch_path(out)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{out}: the writer produced no file; nothing was written")
        _fsync_file(tmp)
        os.replace(tmp, out)
        _fsync_folder(out.parent)
    finally:
        remove_quietly(tmp)
