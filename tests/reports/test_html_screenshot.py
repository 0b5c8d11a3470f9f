"""report.html opened in headless Chromium: the screenshot shows the tables and pictures.

Chromium is installed by the test set-up (tools/test_setup.sh, run by ``make test``); without it
this test skips with the reason.
"""
import io
import re

import numpy as np
import pytest

from volseg.reports.screenshot import find_chromium, screenshot


@pytest.mark.slow
def test_report_page_screenshot(phantom_result, tmp_path):
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (tools/test_setup.sh installs it when run as root)")
    from matplotlib.image import imread

    page = phantom_result.outputs["html"]
    text = page.read_text(encoding="utf-8")
    assert text.count("<table") >= 3
    assert len(re.findall(r'src="data:image/png;base64,', text)) >= 3
    png = screenshot(page, tmp_path / "report.png", width=1400, height=3000)
    pixels = imread(io.BytesIO(png.read_bytes()), format="png")[..., :3]
    assert pixels.shape[:2] == (3000, 1400)
    assert pixels.std() > 0.1  # not blank
    colours = np.unique((pixels[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # pictures (grey levels, outline colours), not just text on white
    # the dark header band is at the top, the body below is light: the page was laid out
    assert pixels[:40].mean() < 0.3 and pixels[200:].mean() > 0.5
