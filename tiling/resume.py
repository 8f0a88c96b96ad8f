"""Resume an interrupted raster run from its finished blocks.

Why: a scene takes minutes to hours; a run killed half-way (SIGKILL, power loss, a lost cluster)
must not start again from block 0. While :func:`tiling.runner.run_raster` works, every finished block
is saved beside the output in a hidden folder ``.<output name>.resume/``:

* ``journal.jsonl``: a header line (the run's key: a SHA-256 of the input's identity and the
  parameters, and what they were), then one line per finished block (band group, block index,
  file name, SHA-256 of the file, NaN/inf input count), each appended with one ``write`` and fsynced;
* ``g<group>-<row>-<col>.npy``: the block's pixels (float32, C x h x w) followed by its validity
  (bool, same shape), written under a temporary name, fsynced and renamed before its journal line.

A rerun with the same key verifies each listed block (file present, SHA-256 equal, shape right), keeps
those and computes only the rest; a block file is bytes of the very array the run computed, so the
result is bit-identical to an uninterrupted run. A different key (other parameters, a changed input)
removes the old state and starts fresh, saying why. The folder is removed when the output has its
final name; it is kept when the run is interrupted (Ctrl-C, SIGTERM) so that the next run continues.
A lock (``flock`` on the journal) keeps two live runs from sharing one state.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tiling.errors import OutputBusyError

log = logging.getLogger(__name__)

__all__ = ["BlockJournal", "input_identity", "remove_state", "resume_folder", "run_key"]

JOURNAL = "journal.jsonl"
_VERSION = 1


def resume_folder(out_path: str | os.PathLike) -> Path:
    """The hidden folder beside ``out_path`` that holds an interrupted run's finished blocks."""
    out = Path(out_path)
    return out.with_name(f".{out.name}.resume")


def remove_state(out_path: str | os.PathLike) -> bool:
    """Remove the resume state of ``out_path`` left by an earlier run (e.g. one killed with other
    parameters) once the output was written without it; a state a live run holds stays. Returns
    whether one was removed."""
    folder = resume_folder(out_path)
    if not folder.is_dir():
        return False
    try:
        fd = os.open(folder / JOURNAL, os.O_RDONLY)
    except OSError:
        fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live run's
    finally:
        if fd is not None:
            os.close(fd)
    shutil.rmtree(folder, ignore_errors=True)
    log.warning("%s: removed %s, the finished blocks of an interrupted earlier run", out_path, folder)
    return True


def input_identity(path: str) -> dict[str, Any]:
    """Identity of an input: absolute path, size (bytes) and mtime (ns) of a local file; for a GDAL
    path string (``/vsizip/...``) or anything not a local file, the string itself."""
    try:
        st = os.stat(path)
    except OSError:
        return {"path": str(path)}
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def run_key(description: dict[str, Any]) -> str:
    """SHA-256 (hex) of a run's description (sorted JSON): equal keys, equal block results."""
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class SavedBlock:
    """A verified finished block: pixels (C, h, w) float32, validity (C, h, w) bool, NaN/inf count."""

    data: np.ndarray
    valid: np.ndarray
    nonfinite: int


class BlockJournal:
    """The finished blocks of one output's run (see the module docstring).

    Use as a context manager (takes the lock, reads or starts the journal); :meth:`get` returns a
    verified saved block or None, :meth:`add` saves one; :meth:`discard` removes the whole state (on
    success, or on a failure that a rerun would repeat).

    Args:
        out_path: the final output path (the state lives beside it).
        description: what decides the blocks' values (input identity, parameters, plan, layout);
            JSON-serialisable; its :func:`run_key` must match for saved blocks to be reused.

    Raises:
        OutputBusyError (OSError): another live process holds this output's state.
    """

    def __init__(self, out_path: str | os.PathLike, description: dict[str, Any]) -> None:
        self.out = Path(out_path)
        self.folder = resume_folder(self.out)
        self.description = {"version": _VERSION, **description}
        self.key = run_key(self.description)
        self.entries: dict[tuple[int, int, int], dict[str, Any]] = {}
        self.reused = 0
        self.broken = False
        self._fd: int | None = None

    # ---- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> BlockJournal:
        self.folder.mkdir(exist_ok=True)
        fd = os.open(self.folder / JOURNAL, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputBusyError(
                f"{self.out}: another geodiff run is writing this output now; wait for it to end or "
                "choose another output path"
            ) from None
        self._fd = fd
        self._load()
        return self

    def __exit__(self, *exc: object) -> bool:
        self.close()
        return False

    def close(self) -> None:
        """Release the lock (the state stays on disk)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Remove the state folder (and release the lock)."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.entries.clear()

    # ---- journal -------------------------------------------------------------------------------
    def _append(self, record: dict[str, Any]) -> None:
        assert self._fd is not None
        os.write(self._fd, (json.dumps(record, sort_keys=True, default=str) + "\n").encode())
        os.fsync(self._fd)

    def _start_fresh(self, why: str | None) -> None:
        for p in self.folder.iterdir():
            if p.name != JOURNAL:
                with contextlib.suppress(OSError):
                    p.unlink()
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        if why:
            log.warning(
                "%s: %s; the finished blocks of the earlier run are discarded, starting fresh", self.out, why
            )
        self._append({"key": self.key, "description": self.description})
        _fsync_folder(self.folder)

    def _load(self) -> None:
        text = (self.folder / JOURNAL).read_text(errors="replace")
        lines = []
        for line in text.splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:  # a truncated last line of a killed run
                continue
        if not lines or "key" not in lines[0]:
            self._start_fresh(None)
            return
        header = lines[0]
        if header["key"] != self.key:
            self._start_fresh(self._why_different(header.get("description") or {}))
            return
        for rec in lines[1:]:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                self.entries[(int(rec["group"]), int(rec["row"]), int(rec["col"]))] = rec
        if self.entries:
            log.warning(
                "%s: continuing an interrupted run: %d finished block(s) found in %s",
                self.out,
                len(self.entries),
                self.folder,
            )

    def _why_different(self, old: dict[str, Any]) -> str:
        new = self.description
        if old.get("input") != new.get("input"):
            return "the input changed since the interrupted run (size, time or path)"
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return f"the parameters differ from the interrupted run's ({', '.join(changed) or 'version'})"

    # ---- blocks --------------------------------------------------------------------------------
    def get(self, group: int, index: tuple[int, int], shape: tuple[int, int]) -> SavedBlock | None:
        """The saved block ``index`` of band ``group`` if it verifies (file, SHA-256, size ``shape``),
        else None (a block that fails verification is computed again and logged)."""
        rec = self.entries.get((group, *index))
        if rec is None:
            return None
        path = self.folder / rec["file"]
        try:
            if _sha256(path) != rec["sha256"]:
                raise ValueError("checksum differs")
            with open(path, "rb") as f:
                data, valid = np.load(f), np.load(f)
            if data.shape[-2:] != tuple(shape) or valid.shape != data.shape or data.dtype != np.float32:
                raise ValueError(f"shape {data.shape} instead of (C, {shape[0]}, {shape[1]})")
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: saved block %s of band group %d fails verification (%s); computing it again",
                        self.out, index, group, exc)  # fmt: skip
            del self.entries[(group, *index)]
            return None
        self.reused += 1
        return SavedBlock(data, valid.astype(bool), int(rec.get("nonfinite", 0)))

    def add(
        self, group: int, index: tuple[int, int], data: np.ndarray, valid: np.ndarray, nonfinite: int
    ) -> None:
        """Save a finished block durably (file fsynced and renamed, then its journal line fsynced).

        A block that cannot be saved (disk full, I/O error) ends the resume state, not the run: the
        saved blocks are removed (their room goes back to the output) and a warning says the run
        can no longer be resumed."""
        if self.broken:
            return
        name = f"g{group}-{index[0]}-{index[1]}.npy"
        path, tmp = self.folder / name, self.folder / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(data, dtype=np.float32))
                np.save(f, np.ascontiguousarray(valid, dtype=bool))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_folder(self.folder)
            rec = {"group": group, "row": index[0], "col": index[1], "file": name, "sha256": _sha256(path),
                   "nonfinite": int(nonfinite)}  # fmt: skip
            self._append(rec)
        except OSError as exc:
            self.broken = True
            log.warning("%s: cannot save finished blocks in %s (%s); an interrupted run cannot resume",
                        self.out, self.folder, exc)  # fmt: skip
            for p in self.folder.iterdir():
                if p.name != JOURNAL:
                    with contextlib.suppress(OSError):
                        p.unlink()
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            self.entries.clear()
            return
        self.entries[(group, *index)] = rec
