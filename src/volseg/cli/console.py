"""Consoles and rendering shared by the CLI commands: data to stdout, everything else to stderr.

When a stream is not a terminal (a pipe, a log file, nohup, SLURM) its console is made wide, so
tables and messages come out whole instead of cut or wrapped at 80 columns.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console

out = Console()  # data (tables, JSON) on stdout
err = Console(stderr=True)  # messages, progress, warnings on stderr

_OWN_WIDTH = (out._width, err._width)  # $COLUMNS, when set

#: console width used when a stream is not a terminal: wide enough for any name or UID
PIPED_WIDTH = 4096


@dataclass
class Verbosity:
    """The CLI's verbosity for this invocation: -1 = quiet (errors only), 0 = normal, 1+ = debug."""

    level: int = 0

    @property
    def quiet(self) -> bool:
        return self.level < 0


verbosity = Verbosity()


def setup_logging(level: int) -> None:
    """-q → errors only, default → info, -v → debug. Library loggers go to stderr.

    On a terminal through Rich; otherwise as plain ``LEVEL message`` lines (no padding to a width).
    """
    verbosity.level = level
    fit_to_streams()
    log_level = {-1: logging.ERROR, 0: logging.INFO}.get(level, logging.DEBUG)
    root = logging.getLogger("volseg")
    root.handlers[:] = [_handler()]
    root.setLevel(log_level)
    root.propagate = False


def _handler() -> logging.Handler:
    if err.is_terminal:
        from rich.logging import RichHandler

        return RichHandler(console=err, show_path=False, show_time=False, rich_tracebacks=False, markup=False)
    handler = _ErrStreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler


class _ErrStreamHandler(logging.StreamHandler):
    """A plain handler on whatever ``sys.stderr`` is now (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        import sys

        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; always use sys.stderr
        pass


def fit_to_streams() -> None:
    """Wide consoles for streams that are not terminals, the terminal's width otherwise."""
    for console, width in ((out, _OWN_WIDTH[0]), (err, _OWN_WIDTH[1])):
        console.width = width if console.is_terminal else PIPED_WIDTH  # type: ignore[assignment]


def note(message: str) -> None:
    """An information message on stderr (whole, never wrapped into a table); nothing with -q."""
    if not verbosity.quiet:
        err.print(message, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def progress_bar(enabled: bool = True):
    """Yield a ``progress(stage, done, total)`` callback: a Rich display on a terminal, plain
    throttled lines otherwise, nothing with ``-q``."""
    from volseg.cli.progress import progress_view

    with progress_view(err, enabled=enabled and not verbosity.quiet) as progress:
        yield progress
