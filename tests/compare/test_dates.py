"""Intervals from the DICOM study dates, used for doubling times and never written out."""
from __future__ import annotations

import pytest

from tests.compare.conftest import TRUE_MATRIX
from tests.factories.follow_up import grid, must_show_scenes, render


def test_interval_from_dicom_study_dates(must_show_pair, tmp_path):
    from tests.factories.dicom_series import write_series
    from volseg import api

    before, after = must_show_scenes()
    images = []
    for name, scene, moved, affine, date in (("ct0", before, None, grid(), "20240105"),
                                             ("ct1", after, TRUE_MATRIX, grid(centre=(10.0, 0.0, 0.0)), "20240405")):
        ct = render(scene, moved=moved, affine=affine)[1]
        n = ct.shape[2]
        write_series(tmp_path / name, ct.array.astype("int16"), affine,
                     slice_overrides={k: {"StudyDate": date} for k in range(n)})
        images.append(tmp_path / name)
    result = api.compare([must_show_pair.baseline, must_show_pair.followup], tmp_path / "out", images=images,
                         html=False)
    c = result.comparison
    assert [s.days_from_baseline for s in c.studies] == [0.0, 91.0]
    assert c.studies[1].days_source == "dicom" and c.studies[1].image_kind == "dicom"
    grown = next(m for m in c.matches if m.status == "matched")
    assert grown.interval_days == 91.0
    assert grown.doubling_time_days == pytest.approx(91.0 * 0.6931 / 0.7870, rel=0.03)  # ln 2 / ln 2.197
    text = result.outputs["comparison"].read_text()
    assert not any(d in text for d in ("20240105", "2024-01-05", "20240405", "2024-04-05"))  # intervals only


def test_unknown_interval_leaves_doubling_time_empty_with_a_reason(must_show_pair, tmp_path):
    from volseg import api

    c = api.compare([must_show_pair.baseline, must_show_pair.followup], tmp_path / "out", html=False,
                    options=api.CompareOptions(registration="label_map")).comparison
    grown = next(m for m in c.matches if m.status == "matched")
    assert grown.doubling_time_days is None and "interval unknown" in grown.doubling_time_note
    assert any("interval between the studies unknown" in w for w in c.warnings)
