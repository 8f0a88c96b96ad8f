"""Run the `geodiff` command line from QGIS.

QGIS's Python has no torch, so the plugin never imports geodiff: every algorithm builds an argument
list (never a shell string) and runs the `geodiff` executable through ``QgsBlockingProcess``
(QGIS >= 3.18). The child's stderr carries one ``{"progress": fraction}`` line per finished block
(``GEODIFF_PROGRESS=json``), which drives ``feedback.setProgress``; every other stderr line goes to
the log. Exit codes follow the CLI: 0 done, 1 processing failed, 2 bad input; the CLI's one-line
error becomes the algorithm's error. Cancel terminates the child; outputs are written into a
private staging folder beside the final file and moved into place only after a clean exit, so a
cancelled or failed run leaves neither a partial output nor temporary files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from qgis.core import QgsBlockingProcess, QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtCore import QProcess

#: Processing setting (Settings > Options > Processing > Providers > geodiff) and environment
#: variable holding the path of the `geodiff` executable.
EXECUTABLE_SETTING = "GEODIFF_EXECUTABLE"
EXECUTABLE_ENV = "GEODIFF_EXECUTABLE"

#: Where to fix the executable path, quoted in error messages.
WHERE_TO_SET = (
    "set the path of the geodiff executable under Settings > Options > Processing > Providers > "
    "geodiff (or the GEODIFF_EXECUTABLE environment variable), e.g. /path/to/venv/bin/geodiff"
)

# Environment variables of QGIS's own Python that must not leak into the geodiff Python.
_PYTHON_ENV = ("PYTHONPATH", "PYTHONHOME")
_ENV_LOCK = threading.Lock()


def default_executable() -> str:
    """The `geodiff` executable to use when none is configured: ``$GEODIFF_EXECUTABLE``, else the
    first `geodiff` on PATH, else "" (none found)."""
    return os.environ.get(EXECUTABLE_ENV) or shutil.which("geodiff") or ""


def configured_executable() -> str:
    """The executable set in the Processing options (falling back to :func:`default_executable`)."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig

        value = ProcessingConfig.getSetting(EXECUTABLE_SETTING)
    except ImportError:  # Processing plugin absent (e.g. a bare PyQGIS script)
        value = None
    return str(value).strip() if value else default_executable()


def resolve_executable(path: str | None = None) -> str:
    """Check that ``path`` (default: :func:`configured_executable`) is an executable file.

    Raises:
        QgsProcessingException: no executable configured or found, or the path is not executable;
            the message says where to set it.
    """
    path = (path if path is not None else configured_executable()).strip()
    if not path:
        raise QgsProcessingException(
            f"geodiff executable not found on PATH; install geodiff (pip install geodiff) and {WHERE_TO_SET}"
        )
    found = shutil.which(path) if os.sep not in path else path
    if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise QgsProcessingException(
            f"geodiff executable {path!r} does not exist or is not executable; {WHERE_TO_SET}"
        )
    return found


@contextlib.contextmanager
def _child_environment() -> Iterator[None]:
    """Set the environment the child inherits: JSON progress, no PYTHONPATH/PYTHONHOME of QGIS.

    ``QgsBlockingProcess`` of QGIS 3.22 cannot take an environment, and a QProcess child inherits the
    parent's, so the variables are set for the start of the child and restored afterwards (under a
    lock, as Processing may run algorithms in several threads).
    """
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in (*_PYTHON_ENV, "GEODIFF_PROGRESS")}
        for key in _PYTHON_ENV:
            os.environ.pop(key, None)
        os.environ["GEODIFF_PROGRESS"] = "json"
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class _Lines:
    """Split a byte stream delivered in chunks into text lines."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]

    def rest(self) -> list[str]:
        rest, self._buffer = self._buffer, b""
        return [rest.decode("utf-8", "replace")] if rest.strip() else []


def parse_progress(line: str) -> float | None:
    """The fraction in a ``{"progress": 0.42}`` line of ``GEODIFF_PROGRESS=json``, else None."""
    if not line.startswith("{") or "progress" not in line:
        return None
    try:
        value = json.loads(line).get("progress")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def error_line(lines: Sequence[str]) -> str:
    """The CLI's one-line error among its stderr lines ("geodiff: error: ...", "geodiff: failed: ..."
    or click's "Error: ..."), without the prefix; else the last non-empty line."""
    for line in reversed(lines):
        for prefix in ("geodiff: error: ", "geodiff: failed: ", "geodiff: ", "Error: "):
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
    text = [line for line in lines if line.strip()]
    return text[-1].strip() if text else "no message"


class CliRun:
    """The result of one `geodiff` run: exit code, stdout text, stderr lines (progress excluded)."""

    def __init__(self, code: int, stdout: str, stderr: list[str]) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr

    def json(self) -> dict:
        """stdout parsed as the one JSON document ``--json`` prints."""
        try:
            return json.loads(self.stdout)
        except ValueError as exc:
            raise QgsProcessingException(
                f"geodiff printed no JSON summary ({exc}): {self.stdout[:200]!r}"
            ) from exc


def run_geodiff(
    args: Sequence[str],
    feedback: QgsProcessingFeedback | None,
    executable: str | None = None,
    progress_range: tuple[float, float] = (0.0, 100.0),
) -> CliRun:
    """Run ``geodiff ARGS`` (no shell), reporting progress in ``progress_range`` (percent).

    Returns the finished run (exit code 0).

    Raises:
        QgsProcessingException: the executable is missing or did not start; the user cancelled
            ("cancelled"); the CLI exited 2 (bad input) or 1 (processing failed) - the message quotes
            its one-line error and names which of the two it was; the child was killed.
    """
    program = resolve_executable(executable)
    args = [str(a) for a in args]
    feedback = feedback or QgsProcessingFeedback()
    lo, hi = progress_range
    err_lines, out_chunks, log_lines = _Lines(), [], []

    def on_stderr(chunk) -> None:  # noqa: ANN001 - QByteArray
        for line in err_lines.feed(bytes(chunk)):
            fraction = parse_progress(line)
            if fraction is not None:
                feedback.setProgress(lo + (hi - lo) * min(1.0, max(0.0, fraction)))
            elif line.strip():
                log_lines.append(line)
                feedback.pushConsoleInfo(line)

    def on_stdout(chunk) -> None:  # noqa: ANN001 - QByteArray
        out_chunks.append(bytes(chunk))

    feedback.pushCommandInfo(" ".join([program, *(_quote(a) for a in args)]))
    process = QgsBlockingProcess(program, args)
    # QgsBlockingProcess keeps only a C++ reference: the handlers must outlive run().
    process.setStdErrHandler(on_stderr)
    process.setStdOutHandler(on_stdout)
    with _child_environment():
        code = process.run(feedback)
    log_lines.extend(err_lines.rest())
    stdout = b"".join(out_chunks).decode("utf-8", "replace")

    if feedback.isCanceled():
        raise QgsProcessingException("cancelled: geodiff was stopped and no output was written")
    if process.processError() == QProcess.FailedToStart:
        raise QgsProcessingException(f"could not start the geodiff executable {program!r}; {WHERE_TO_SET}")
    if process.exitStatus() == QProcess.CrashExit:
        raise QgsProcessingException(
            f"geodiff was killed (exit code {code}) before it finished: {error_line(log_lines)}"
        )
    if code == 2:
        raise QgsProcessingException(f"geodiff: bad input (exit code 2): {error_line(log_lines)}")
    if code == 1:
        raise QgsProcessingException(f"geodiff: processing failed (exit code 1): {error_line(log_lines)}")
    if code != 0:
        raise QgsProcessingException(f"geodiff exited with code {code}: {error_line(log_lines)}")
    feedback.setProgress(hi)
    return CliRun(code, stdout, log_lines)


def _quote(arg: str) -> str:
    """``arg`` quoted for display in the log (the process itself gets the list, not this text)."""
    import shlex

    return shlex.quote(arg)


@contextlib.contextmanager
def staged_output(final: str) -> Iterator[str]:
    """Yield a path in a private hidden folder beside ``final``; move it to ``final`` on success.

    The folder (and whatever a killed child left in it) is removed in every case, so a cancelled or
    failed run leaves neither ``final`` nor temporary files; an existing ``final`` is replaced only
    by a finished output.

    Raises:
        QgsProcessingException: the output folder does not exist, or the run produced no file.
    """
    target = Path(final)
    if not target.parent.is_dir():
        raise QgsProcessingException(f"{target.parent}: the output folder does not exist; choose another")
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.geodiff-", dir=target.parent))
    try:
        staged = stage / target.name
        yield str(staged)
        if not staged.exists():
            raise QgsProcessingException(f"{target}: geodiff finished without writing the output")
        os.replace(staged, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def same_file(a: str, b: str) -> bool:
    """Whether two paths name the same existing file (an output must never replace its input)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
