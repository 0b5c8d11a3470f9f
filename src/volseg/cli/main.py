"""Console-script entry point: runs the Typer app and turns expected errors into one stderr line."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from volseg.cli.app import app
    from volseg.errors import VolsegError

    try:
        app(args=argv, prog_name="volseg", standalone_mode=True)
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
