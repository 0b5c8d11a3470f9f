"""``--members N`` on an nnU-Net model: its first N folds (of each part)."""
import numpy as np
import pytest

from volseg.errors import UsageError
from volseg.phantom import make_phantom
from volseg.segmenters.engine.settings import EngineOverrides, EngineSettings

pytest.importorskip("nnunetv2")


def test_members_1_runs_the_first_fold_only(tmp_path):
    from tests.factories.nnunet_model import FOLDER_NAME, SPACING_IJK, write_random_model
    from volseg.segmenters.backends import nnunet as backend

    folder = write_random_model(tmp_path / FOLDER_NAME, folds=(0, 1))
    ct = make_phantom((40, 48, 36), SPACING_IJK, orientation="LPS", seed=3).image
    fast = EngineSettings(precision="fp32")
    first = backend.load_folder(folder, device="cpu", settings=fast, engine=EngineOverrides(members=1))
    assert [str(f.fold) for f in first.parts[0].folder.folds] == ["0"]
    assert first.settings.members == 1
    only_0 = backend.load_folder(folder, device="cpu", settings=fast, folds=(0,))
    both = backend.load_folder(folder, device="cpu", settings=fast)
    assert len(both.parts[0].folder.folds) == 2
    np.testing.assert_array_equal(first.predict(ct).array, only_0.predict(ct).array)
    assert [w["file"].split("/")[1] for w in first.provenance().as_dict()["weights"]] == ["fold_0"]
    with pytest.raises(UsageError, match="--members 3: model .* has 2 folds"):
        backend.load_folder(folder, device="cpu", settings=fast, engine=EngineOverrides(members=3))
