"""volseg's exception hierarchy.

Every expected failure is a :class:`VolsegError` subclass. Each subclass carries the exit code the
CLI uses for it, so the mapping from problem to exit status lives here and nowhere else. Messages
are one line: ``<what> : <problem>`` plus an optional hint, and never contain patient identifiers.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class VolsegError(Exception):
    """Base class of expected, user-facing errors."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str | None = None):
        self.message = " ".join(str(message).split())  # always one line
        self.path = None if path is None else str(path)
        self.hint = None if hint is None else " ".join(str(hint).split())
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class UsageError(VolsegError):
    """Options that do not fit together or name nothing that exists."""

    exit_code = 2


class InputError(VolsegError):
    """An input file or folder that cannot be read as an image (missing, corrupt, wrong kind)."""

    exit_code = 3


class GeometryError(InputError):
    """An image whose geometry is unusable or unsafe (missing slices, mixed orientations, 2-D...)."""

    exit_code = 4


class AmbiguousInputError(InputError):
    """An input that holds several candidates (e.g. DICOM series) and needs a choice."""

    exit_code = 5


class OutputError(VolsegError):
    """An output that cannot be written (not writable, disk full, failed rename)."""

    exit_code = 6


class ModelError(VolsegError):
    """A model that is unknown, not installed, or cannot run on this input."""

    exit_code = 7


class DependencyError(VolsegError):
    """An optional dependency that is not installed; the hint names the pip extra."""

    exit_code = 8


def closest(given: str, choices: Iterable[str]) -> str | None:
    """The closest valid choice to ``given`` (for 'did you mean ...?' hints), or None."""
    matches = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_choice_hint(given: str, choices: Iterable[str]) -> str:
    """A hint naming the closest choice, or listing the choices when nothing is close."""
    choices = sorted(choices)
    near = closest(given, choices)
    if near:
        return f"did you mean {near!r}?"
    shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
    return f"choose one of: {shown}"
