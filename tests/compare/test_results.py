"""The comparison's result types validate themselves; the committed JSON Schema is current."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from volseg.compare.results import LesionMatch, Registration

IDENTITY = ((1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0))


def _registration(**changes):
    fields = dict(from_timepoint=0, to_timepoint=1, matrix_ras_mm=IDENTITY, method="none",
                  registered_on="none", initialisation="identity", rotation_deg=0.0,
                  translation_mm=(0.0, 0.0, 0.0), quality="good")
    return Registration(**{**fields, **changes})


def test_a_poor_registration_needs_its_warning():
    with pytest.raises(ValidationError, match="a poor registration must carry a warning"):
        _registration(quality="poor")
    assert _registration(quality="poor", warning="poor registration: x").quality == "poor"


def test_the_matrix_is_affine():
    bad = (*IDENTITY[:3], (0.0, 0.0, 1.0, 1.0))
    with pytest.raises(ValidationError, match="last row must be"):
        _registration(matrix_ras_mm=bad)


@pytest.mark.parametrize(("status", "before", "after"), [
    ("split", ["a"], ["b"]), ("merged", ["a"], ["b", "c"]), ("new", ["a"], []), ("matched", ["a", "b"], ["c"]),
])
def test_status_must_fit_the_ids(status, before, after):
    with pytest.raises(ValidationError, match=f"status '{status}' does not fit"):
        LesionMatch(from_timepoint=0, to_timepoint=1, status=status, before_ids=before, after_ids=after,
                    class_name="liver_tumor", kind="lesion")


def test_committed_schema_is_current():
    from volseg.compare.results import SCHEMA_VERSION
    from volseg.compare.schema import SNAPSHOT_DIR, committed_schema, generate_schema, package_dir

    assert committed_schema() == generate_schema(), "run tools/comparison_schema.py"
    assert (package_dir() / SNAPSHOT_DIR / f"comparison-{SCHEMA_VERSION}.schema.json").is_file()
