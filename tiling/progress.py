"""One progress reporter: tqdm on stderr for people, JSON lines on stderr for machines.

``GEODIFF_PROGRESS=json`` makes every update a line ``{"progress": 0.42}`` (the QGIS plugin reads
them); ``GEODIFF_PROGRESS=none`` silences it. Library code takes a reporter or ``None``; it never
writes to stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import TextIO

__all__ = ["Progress", "reporter"]


class Progress:
    """Count finished units of work (blocks) out of ``total``.

    ``mode``: "tqdm" (a bar), "json" (one ``{"progress": fraction}`` line per update, fraction rounded
    to 4 digits) or "none"; default from ``GEODIFF_PROGRESS``, else "tqdm". Output goes to ``stream``
    (default stderr). Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self, total: int, desc: str = "", mode: str | None = None, stream: TextIO | None = None
    ) -> None:
        self.total = max(1, int(total))
        self.done = 0
        self.mode = (mode or os.environ.get("GEODIFF_PROGRESS", "tqdm")).lower()
        self.stream = stream or sys.stderr
        self._bar = None
        if self.mode == "tqdm":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit="block", file=self.stream, leave=False)
        elif self.mode == "json":
            self._emit()

    def _emit(self) -> None:
        self.stream.write(json.dumps({"progress": round(self.done / self.total, 4)}) + "\n")
        self.stream.flush()

    def update(self, n: int = 1) -> None:
        """``n`` more units are done (the count never passes ``total``)."""
        self.done = min(self.total, self.done + n)
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "json":
            self._emit()

    def close(self) -> None:
        """Close the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def reporter(progress: bool | Progress | None, total: int, desc: str = "") -> Iterator[Progress]:
    """The reporter a run should update: ``progress`` itself when it is a :class:`Progress` (left
    open: its owner closes it), a new one for ``True`` (closed on exit), a silent one otherwise."""
    if isinstance(progress, Progress):
        yield progress
        return
    with Progress(total, desc=desc, mode=None if progress else "none") as own:
        yield own
