#!/usr/bin/env python3
"""Save a screenshot of a volseg report.html with headless Chromium, so a person can look at it.

    python examples/report_screenshot.py out/report.html report.png [--width 1400 --height 3000]

Needs Chromium (Debian: apt-get install chromium; tools/test_setup.sh installs it as root).
"""
from __future__ import annotations

import argparse
import sys

from volseg.errors import VolsegError
from volseg.reports.screenshot import screenshot


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_html")
    parser.add_argument("out_png")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=3000)
    args = parser.parse_args()
    try:
        path = screenshot(args.report_html, args.out_png, width=args.width, height=args.height)
    except VolsegError as exc:
        print(f"report_screenshot: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
