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
    return _finish(0, argv)


def _finish(code: int, argv) -> int:
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
