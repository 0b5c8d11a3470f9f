"""A failed study, described without patient identifiers: stage, error class, exit code, one line."""
from __future__ import annotations

import errno
import signal
from dataclasses import dataclass, replace
from pathlib import Path

from volseg.errors import InputError, ModelError, VolsegError
from volseg.reports.failure_records import (  # noqa: F401 - RecordedFailure, find_failures re-exported
    INTERNAL_EXIT_CODE,
    RecordedFailure,
    find_failures,
)


@dataclass(frozen=True)
class Failure:
    stage: str  # "read" | "segment" | "write"
    error_class: str  # e.g. "InputError", "ReaderCrash", "OutOfMemory", "InternalError"
    exit_code: int
    message: str  # one line; paths relative to the input folder

    def one_line(self) -> str:
        return f"{self.error_class} while {_VERB.get(self.stage, self.stage)}: {self.message}"


_VERB = {"read": "reading", "segment": "segmenting", "write": "writing"}


def from_exception(exc: BaseException, stage: str, *, input_root: str | Path | None = None) -> Failure:
    """A :class:`Failure` for an exception raised while processing a study."""
    if isinstance(exc, VolsegError):
        return Failure(stage, type(exc).__name__, exc.exit_code,
                       _volseg_line(exc.message, exc.hint, exc.path, input_root))
    name = type(exc).__name__
    if isinstance(exc, OSError) and exc.errno is not None:  # disk full, permissions, I/O error
        from volseg.errors import OutputError

        what = errno.errorcode.get(exc.errno, str(exc.errno))
        return Failure(stage, "OutputError" if stage == "write" else type(exc).__name__,
                       OutputError.exit_code if stage == "write" else INTERNAL_EXIT_CODE,
                       f"{what}: {exc.strerror or _short(exc)}")
    if name == "OutOfMemoryError" or isinstance(exc, MemoryError):  # torch.cuda.OutOfMemoryError
        return Failure(stage, "OutOfMemory", ModelError.exit_code, f"out of memory ({_short(exc)})")
    return Failure(stage, "InternalError", INTERNAL_EXIT_CODE, f"{name}: {_short(exc)}")


def without_path(failure: Failure, study, input_root: str | Path) -> Failure:
    """``failure`` with the study's input path (which may name a patient) replaced by its id."""
    message = failure.message
    for text in (str(study.path), study.rel_path, Path(study.path).name):
        if text and text != ".":
            message = message.replace(text, study.study_id)
    return replace(failure, message=message)


def from_fields(stage: str, error_class: str, exit_code: int, message: str, hint: str | None,
                path: str | None, input_root: str | Path | None) -> Failure:
    """Rebuild a failure sent by a reader process as plain fields (exceptions do not pickle well)."""
    return Failure(stage, error_class, exit_code, _volseg_line(message, hint, path, input_root))


def crashed(stage: str, exitcode: int | None, what: str = "reader process", *, error_class: str = "ReaderCrash",
            exit_code: int = InputError.exit_code) -> Failure:
    """A worker process that died: by a signal (segfault, OOM killer) or an abrupt exit."""
    if exitcode is not None and exitcode < 0:
        try:
            sig = signal.Signals(-exitcode).name
        except ValueError:
            sig = f"signal {-exitcode}"
        extra = " (killed: out of memory?)" if sig == "SIGKILL" else ""
        return Failure(stage, error_class, exit_code, f"{what} crashed with {sig}{extra}")
    return Failure(stage, error_class, exit_code, f"{what} exited unexpectedly (code {exitcode})")


def _volseg_line(message: str, hint: str | None, path: str | None, input_root) -> str:
    text = message
    if path:
        text = f"{_relative(path, input_root)}: {text}"
    if hint:
        text += f" ({hint})"
    return " ".join(text.split())


def _relative(path: str, root) -> str:
    p = Path(path)
    if root is not None:
        try:
            return p.resolve().relative_to(Path(root).resolve()).as_posix() or "."
        except ValueError:
            pass
    return p.name


def _short(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]
