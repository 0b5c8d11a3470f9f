"""Options: defaults, engine overrides mapped to the engine's names, errors raised at construction."""
import pytest

from volseg.errors import UsageError
from volseg.options import SegmentOptions, engine_overrides


def test_engine_overrides_leave_unset_flags_out():
    assert SegmentOptions().engine.changes() == {} and not SegmentOptions().engine
    options = SegmentOptions(engine=engine_overrides(tta=False, precision="bf16"))
    assert options.engine.changes() == {"mirror": False, "precision": "bf16"}
    assert options.engine_flags() == {"tta": False, "precision": "bf16"}  # by CLI name (run keys, scripts)
    assert engine_overrides(step=0.5, export="nearest").changes() == {"step": 0.5, "export": "nearest"}


@pytest.mark.parametrize("given, message", [({"step": 0.0}, "window step"), ({"export": "cubic"}, "invalid export"),
                                            ({"precision": "fp8"}, "invalid precision"),
                                            ({"device": "gpu"}, "invalid device")])
def test_bad_options_fail_when_built(given, message):
    given = dict(given)
    engine = {k: given.pop(k) for k in ("step", "export", "precision") if k in given}
    with pytest.raises(UsageError, match=message):
        SegmentOptions(engine=engine_overrides(**engine), **given)
