"""A PNG screenshot of an HTML page with headless Chromium (used by tests and examples, optional).

Chromium is a system program (Debian: ``apt-get install chromium``); :func:`find_chromium` returns
None when it is missing. Nothing here is needed to write reports.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from volseg.errors import DependencyError, OutputError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html_path: str | Path, png_path: str | Path, *, width: int = 1400, height: int = 3000,
               timeout_s: float = 120.0) -> Path:
    """Render ``html_path`` headless and save a ``width`` × ``height`` PNG at ``png_path``."""
    browser = find_chromium()
    if browser is None:
        raise DependencyError("no Chromium found for the screenshot", hint="apt-get install chromium")
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="volseg-chromium-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png_path}",
                   f"--window-size={width},{height}", html_path.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise OutputError(f"Chromium did not finish within {timeout_s:.0f} s", path=png_path) from exc
    if done.returncode != 0 or not png_path.is_file():
        tail = " ".join((done.stderr or "").split()[-30:])
        raise OutputError(f"Chromium exited with {done.returncode} and no screenshot ({tail})", path=png_path)
    return png_path
