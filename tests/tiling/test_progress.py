"""The progress reporter: JSON lines for machines, silence on request, reporters passed through."""

from __future__ import annotations

import io
import json

import pytest

from tiling.progress import Progress, reporter


def test_progress_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEODIFF_PROGRESS", "json")
    buf = io.StringIO()
    with Progress(4, stream=buf) as p:
        for _ in range(5):  # one update too many: the fraction stops at 1
            p.update()
    values = [json.loads(line)["progress"] for line in buf.getvalue().splitlines()]
    assert values == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_reporter_passes_a_reporter_through_and_silences_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEODIFF_PROGRESS", "json")
    buf = io.StringIO()
    outer = Progress(2, stream=buf)
    with reporter(outer, 99) as rep:
        assert rep is outer  # the caller's reporter, left open for its owner
    with reporter(False, 3) as rep:
        assert rep.mode == "none"
        rep.update()
    with reporter(True, 3) as rep:
        assert rep.mode == "json" and rep.total == 3
