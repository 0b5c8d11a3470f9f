"""Options: defaults, engine overrides mapped to the engine's names, errors raised at construction."""
import pytest

from volseg.errors import UsageError
from volseg.options import SegmentOptions, engine_overrides


def test_engine_overrides_leave_unset_flags_out():
    assert SegmentOptions().engine.changes() == {} and not SegmentOptions().engine
    assert SegmentOptions(tta=False, precision="bf16").engine.changes() == {"mirror": False, "precision": "bf16"}
    assert engine_overrides(step=0.5, export="nearest").changes() == {"step": 0.5, "export": "nearest"}


@pytest.mark.parametrize("given, message", [({"step": 0.0}, "window step"), ({"export": "cubic"}, "invalid export"),
                                            ({"precision": "fp8"}, "invalid precision"),
                                            ({"device": "gpu"}, "invalid device")])
def test_bad_options_fail_when_built(given, message):
    with pytest.raises(UsageError, match=message):
        SegmentOptions(**given)
