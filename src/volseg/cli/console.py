"""Consoles and rendering shared by the CLI commands: data to stdout, everything else to stderr."""
from __future__ import annotations

import logging
from contextlib import contextmanager

from rich.console import Console

out = Console()  # data (tables, JSON) on stdout
err = Console(stderr=True)  # messages, progress, warnings on stderr


def setup_logging(verbosity: int) -> None:
    """-q → warnings only, default → info, -v → debug. Library loggers go to stderr via Rich."""
    from rich.logging import RichHandler

    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = RichHandler(console=err, show_path=False, show_time=False, rich_tracebacks=False,
                          markup=False)
    root = logging.getLogger("volseg")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


@contextmanager
def progress_bar(enabled: bool = True):
    """Yield a ``progress(stage, done, total)`` callback rendered as a Rich bar on stderr."""
    if not enabled or not err.is_terminal:
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
