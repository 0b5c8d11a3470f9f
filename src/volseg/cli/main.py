"""Console-script entry point: runs the Typer app and turns expected errors into one stderr line.

``-q``/``--quiet`` and ``-v``/``--verbose`` are global options that may stand anywhere on the line
(``volseg segment ct.nii.gz -o out -q``): they are moved before the subcommand before Typer parses.
"""
from __future__ import annotations

import re
import sys

_GLOBAL_FLAGS = re.compile(r"-q|--quiet|-v+|--verbose")


def hoist_global_flags(args: list[str]) -> list[str]:
    """``args`` with the verbosity flags moved to the front (nothing after a ``--`` is touched)."""
    args = [str(a) for a in args]
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if _GLOBAL_FLAGS.fullmatch(a)]
    if not flags:
        return args
    return flags + [a for a in args[:end] if not _GLOBAL_FLAGS.fullmatch(a)] + args[end:]


def main(argv: list[str] | None = None) -> int:
    from volseg.cli.app import app
    from volseg.errors import VolsegError

    try:
        args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
        app(args=args, prog_name="volseg", standalone_mode=True)
    except SystemExit as exc:  # Typer/Click finish with SystemExit(code)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return _finish(code, argv)
    except VolsegError as exc:
        from volseg.cli.console import err

        err.print(f"volseg: error: {exc.one_line()}", markup=False, highlight=False, soft_wrap=True)
        return _finish(exc.exit_code, argv)
    except KeyboardInterrupt:
        return _finish(130, argv)
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback in a log
        return _finish(_internal_error(exc), argv)
    return _finish(0, argv)


INTERNAL_ERROR_EXIT_CODE = 70  # EX_SOFTWARE (sysexits.h)


def _internal_error(exc: Exception) -> int:
    """Write the traceback to a log file (or to stderr with -v) and print one line naming it."""
    import traceback

    from volseg.cli.console import err, verbosity

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    where = getattr(exc, "volseg_log_file", None)  # the batch run's log already holds it
    if verbosity.level > 0:
        sys.stderr.write(text)
    if where is None:
        where = _write_crash_log(text)
    message = " ".join(str(exc).split())[:300]
    err.print(f"volseg: internal error: {type(exc).__name__}: {message} — this is a bug; the traceback is in "
              f"{where if where is not None else 'nowhere (no log folder is writable; rerun with -v)'}",
              markup=False, highlight=False, soft_wrap=True)
    return INTERNAL_ERROR_EXIT_CODE


def _write_crash_log(text: str):
    """``$VOLSEG_HOME/logs/crash-<UTC time>-<pid>.log`` (the platform's user log folder without it)."""
    import datetime as dt
    import os
    from pathlib import Path

    home = os.environ.get("VOLSEG_HOME")
    if home:
        folder = Path(home) / "logs"
    else:
        import platformdirs

        folder = Path(platformdirs.user_log_dir("volseg", appauthor=False))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"crash-{stamp}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError:
        return None
    return path


def _finish(code: int, argv) -> int:
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
