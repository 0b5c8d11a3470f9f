"""comparison.html: content, the side-by-side pictures at the registration-mapped point, the poor-registration
warning, privacy, and a render in headless Chromium (skipped without it)."""
from __future__ import annotations

import io
import re
from dataclasses import replace

import numpy as np
import pytest

from tests.compare.comparison_case import BASELINE, FOLLOW_UP, PHI_FOLDER, RULE, build_case, moved
from volseg.compare.html import COMPARISON_HTML, write_comparison_html
from volseg.compare.pictures import match_points, pair_pictures
from volseg.compare.study_data import StudyData, read_study_data

LESION_RGB = np.array([124, 85, 242]) / 255.0  # default colour of label 6 (liver_tumor)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return build_case(tmp_path_factory.mktemp("case"))


@pytest.fixture(scope="module")
def page(case, tmp_path_factory):
    out = tmp_path_factory.mktemp("page")
    written = write_comparison_html(out, case.comparison)
    assert written == {"comparison_html": out / COMPARISON_HTML}
    return out / COMPARISON_HTML


def _pairs(text: str) -> list[str]:
    return re.findall(r'<div class="pair[^"]*" id="match-\d+">.*?</div></div>', text, flags=re.S)


def _by_status(comparison, status):
    return next(m for m in comparison.matches if m.status == status)


def test_points_are_the_lesion_centre_and_its_image_through_the_registration(case):
    c = case.comparison
    before, after = match_points(c, _by_status(c, "matched"))
    assert np.allclose(before, BASELINE["liver_tumor-1"].centre_mm)
    assert np.allclose(after, moved(BASELINE["liver_tumor-1"].centre_mm))
    before, after = match_points(c, _by_status(c, "new"))  # no earlier lesion: mapped back through the inverse
    assert np.allclose(after, moved(FOLLOW_UP["liver_tumor-2"].centre_mm))
    assert np.allclose(before, FOLLOW_UP["liver_tumor-2"].centre_mm, atol=1e-9)
    before, _ = match_points(c, _by_status(c, "merged"))  # equal volumes: the midpoint of E1 and E2
    assert np.allclose(before, (-10.0, 25.0, -30.0))


def _lesion_pixels(png: bytes) -> int:
    from matplotlib import image

    rgb = image.imread(io.BytesIO(png), format="png")[..., :3]
    return int((np.abs(rgb - LESION_RGB).max(axis=-1) < 0.12).sum())


def test_pictures_show_the_lesion_where_it_is_and_not_where_it_is_gone(case):
    c = case.comparison
    load = read_study_data
    t0, t1 = load(c.studies[0]), load(c.studies[1])
    assert t0.image is not None and t1.image is not None
    seen = {}
    for status in ("matched", "disappeared", "new", "split", "merged"):
        pair = pair_pictures(c, _by_status(c, status), t0, t1)
        assert pair.before is not None and pair.after is not None
        seen[status] = (_lesion_pixels(pair.before.png), _lesion_pixels(pair.after.png))
    assert all(b > 30 for b, _ in (seen[s] for s in ("matched", "disappeared", "split", "merged")))
    assert all(a > 30 for _, a in (seen[s] for s in ("matched", "new", "split", "merged")))
    assert seen["disappeared"][1] < 5 and seen["new"][0] < 5  # nothing of the class where the lesion is absent
    pair = pair_pictures(c, _by_status(c, "matched"), t0, t1)
    z_after = moved(BASELINE["liver_tumor-1"].centre_mm)[2]
    k_after = int(round((z_after - t1.labels.affine[2, 3]) / 2.0))  # the follow-up grid: 2 mm, RAS
    assert f"axial slice {k_after + 1} of 80" in pair.after.caption and "mapped through the registration" in pair.after.caption
    assert "axial slice 47 of 80 (S = 13.0 mm)" in pair.before.caption  # z = 14 mm on the baseline's 2 mm grid


def test_page_holds_studies_registration_recist_organs_and_one_pair_per_lesion_change(page, case):
    text = page.read_text()
    for heading in ("Studies", "Registration", "RECIST 1.1", "Target lesions", "Organ changes", "Lesion changes (5)"):
        assert f">{heading}<" in text, heading
    assert 'Response at T1: <span class="cat PD">PD</span>' in text and RULE in text
    assert "Baseline sum 28.0 mm, nadir 28.0 mm (T0)." in text
    assert "-28.6" in text and ">20.0<" in text
    assert re.search(r"<td>liver</td><td[^>]*>T0 → T1</td><td class=num>35.20</td><td class=num>33.10</td>", text)
    assert "rigid (Euler3D) + affine" in text and 'class="badge ok">registration good' in text
    assert 'id="registration-warning"' not in text
    pairs = _pairs(text)
    assert len(pairs) == len(case.comparison.matches) == 5
    assert [p.count("<img ") for p in pairs] == [2] * 5
    assert all(p.count('src="data:image/png;base64,') == 2 for p in pairs)
    statuses = re.findall(r'<span class="status (\w+)">', text)
    assert statuses == ["matched", "disappeared", "new", "split", "merged"]
    assert "T0 liver_tumor-4, liver_tumor-5 → T1 liver_tumor-5" in text
    assert "volume 2.14 → 4.19 mL (+95.3 %)" in text  # A: (10/8)^3 - 1
    assert "T1: lymph_node: empty (not found in this image)" in text


def test_page_is_self_contained_and_names_no_patient(page, case):
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "<link" not in text and "@import" not in text
    assert PHI_FOLDER not in text and str(case.root) not in text  # no paths: folders may name patients


def test_poor_registration_is_warned_first(tmp_path):
    case = build_case(tmp_path / "case", poor=True)
    text = write_comparison_html(tmp_path / "out", case.comparison)["comparison_html"].read_text()
    warning = text.index('id="registration-warning"')
    assert warning < text.index(">Studies<")
    assert "mean organ Dice 0.41 &lt; 0.6 after alignment" in text[warning:text.index(">Studies<")]
    assert '<span class="badge">1 poor registration(s)</span>' in text
    assert "<tr class=qc><td>T0 → T1</td>" in text  # the registration row highlighted


def test_label_maps_only_and_a_cap_on_pictures(case, tmp_path):
    calls = []

    def loader(ref):
        calls.append(ref.timepoint)
        data = read_study_data(ref)
        return replace(data, image=None)

    path = write_comparison_html(tmp_path, case.comparison, loader=loader, max_pictured=2)["comparison_html"]
    text = path.read_text()
    assert sorted(calls) == [0, 1]  # each study read once
    pairs = _pairs(text)
    assert len(pairs) == 5 and [p.count("<img ") for p in pairs] == [2, 2, 0, 0, 0]
    assert "3 lesion change(s) are listed without pictures." in text


def test_a_comparison_without_lesions_has_no_pictures(case, tmp_path):
    comparison = case.comparison.model_copy(update={"matches": [], "lesions": [], "recist": None})

    def loader(ref) -> StudyData:
        raise AssertionError("no study is read when there is nothing to picture")

    text = write_comparison_html(tmp_path, comparison, loader=loader)["comparison_html"].read_text()
    assert "No lesions at any time point." in text and "No lesion classes: no RECIST." in text
    assert "<img " not in text


def test_api_compare_writes_the_page(must_show_result):
    """Through ``api.compare``: the page is one of the comparison's outputs, one pair per lesion change."""
    path = must_show_result.outputs["comparison_html"]
    text = path.read_text()
    pairs = _pairs(text)
    assert len(pairs) == len(must_show_result.comparison.matches) == 3
    assert [p.count("<img ") for p in pairs] == [2, 2, 2]
    assert '<span class="cat PD">PD</span>' in text


def test_headless_chromium_renders_the_page(page, tmp_path):
    from volseg.reports.screenshot import find_chromium, screenshot

    if find_chromium() is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium) to render comparison.html")
    from matplotlib import image

    png = screenshot(page, tmp_path / "comparison.png", width=1400, height=2400)
    pixels = image.imread(png)[..., :3]
    assert pixels.shape[:2] == (2400, 1400)
    assert pixels.std() > 0.1  # not blank
    dark = (pixels.max(axis=-1) < 0.1).mean()
    assert dark > 0.05  # the black picture panels were drawn
    lesion = (np.abs(pixels - LESION_RGB).max(axis=-1) < 0.12).sum()
    assert lesion > 100  # and the lesion outlines in them
    text = page.read_text()
    assert len(_pairs(text)) == 5 and text.count("<img ") == 10


def test_a_study_that_cannot_be_read_leaves_its_pairs_without_pictures(case, tmp_path):
    missing = tmp_path / PHI_FOLDER / "segmentation.nii.gz"
    studies = [case.comparison.studies[0],
               case.comparison.studies[1].model_copy(update={"label_map_path": str(missing)})]
    comparison = case.comparison.model_copy(update={"studies": studies})
    text = write_comparison_html(tmp_path / "out", comparison)["comparison_html"].read_text()
    pairs = _pairs(text)
    assert len(pairs) == 5 and all("<img " not in p for p in pairs)
    assert "T1: no pictures, its label map or image could not be read" in text
    assert PHI_FOLDER not in text


def test_three_time_points_picture_each_interval_through_its_own_registration(case, tmp_path):
    """T2 repeats T1 (identity registration T1 → T2): its pair is taken at the same point on both sides."""
    c = case.comparison
    t2 = c.studies[1].model_copy(update={"timepoint": 2, "name": "T2-study", "days_from_baseline": 182.0})
    identity = c.registrations[0].model_copy(update={
        "from_timepoint": 1, "to_timepoint": 2, "rotation_deg": 0.0, "translation_mm": (0.0, 0.0, 0.0),
        "matrix_ras_mm": tuple(tuple(float(v) for v in row) for row in np.eye(4))})
    again = _by_status(c, "matched").model_copy(update={"from_timepoint": 1, "to_timepoint": 2})
    lesion = c.lesion(1, "liver_tumor-1").model_copy(update={"timepoint": 2})
    three = c.model_copy(update={"studies": [*c.studies, t2], "registrations": [*c.registrations, identity],
                                 "matches": [*c.matches, again], "lesions": [*c.lesions, lesion], "recist": None})
    text = write_comparison_html(tmp_path, three)["comparison_html"].read_text()
    pairs = _pairs(text)
    assert len(pairs) == 6 and [p.count("<img ") for p in pairs] == [2] * 6
    last = pairs[-1]
    assert "T1 liver_tumor-1 → T2 liver_tumor-1" in last
    slices = re.findall(r"axial slice (\d+) of 80 \(S = ([-\d.]+) mm\)", last)
    assert len(slices) == 2 and slices[0] == slices[1]
    first = re.findall(r"axial slice (\d+) of 80", pairs[0])
    assert first[1] == slices[0][0]  # T1's slice of the lesion is the one T0's centre mapped to
