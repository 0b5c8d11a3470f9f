"""The Must-show pair, built once per session: follow-up rotated by 10° and shifted by 20 mm, on another
grid; lesion A grows by 30 % in diameter (volume × 2.197), lesion B disappears, lesion C is new."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.factories.follow_up import grid, must_show_scenes, rigid, write_study

TRUE_MATRIX = rigid(10.0, (20.0, 0.0, 0.0))
INTERVAL_DAYS = 90.0


@dataclass(frozen=True)
class Pair:
    baseline: Path
    followup: Path
    baseline_image: Path
    followup_image: Path
    matrix: np.ndarray


@pytest.fixture(scope="session")
def must_show_pair(tmp_path_factory) -> Pair:
    root = tmp_path_factory.mktemp("must_show")
    before, after = must_show_scenes()
    t0, i0 = write_study(root / "t0", before)
    t1, i1 = write_study(root / "t1", after, moved=TRUE_MATRIX, affine=grid(centre=(10.0, 0.0, 0.0)))
    return Pair(t0, t1, i0, i1, TRUE_MATRIX)


@pytest.fixture(scope="session")
def must_show_result(must_show_pair, tmp_path_factory):
    from volseg import api

    p = must_show_pair
    out = tmp_path_factory.mktemp("must_show_out")
    return api.compare([p.baseline, p.followup], out, images=[p.baseline_image, p.followup_image],
                       options=api.CompareOptions(interval_days=(INTERVAL_DAYS,)))
