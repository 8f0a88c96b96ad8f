"""One progress reporter: tqdm on stderr for people, JSON lines on stderr for machines.

``GEODIFF_PROGRESS=json`` makes every update a line ``{"progress": 0.42}`` (the QGIS plugin reads
them); ``GEODIFF_PROGRESS=none`` silences it. Library code takes a reporter or ``None``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO


class Progress:
    """Count finished units of work out of ``total``."""

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
        self.done = min(self.total, self.done + n)
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "json":
            self._emit()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NoProgress(Progress):
    """A reporter that reports nothing."""

    def __init__(self, total: int = 1, desc: str = "") -> None:
        super().__init__(total, desc, mode="none")
