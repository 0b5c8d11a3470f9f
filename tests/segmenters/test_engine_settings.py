"""One function turns a catalogue entry and the user's overrides into engine settings, for every backend."""
from __future__ import annotations

import pytest

from volseg.errors import UsageError
from volseg.segmenters.backend_options import BACKEND_OPTIONS
from volseg.segmenters.backends.blast_ct import SUPPORTED as BLAST_CT_SUPPORTED
from volseg.segmenters.catalogue import load_catalogue
from volseg.segmenters.engine.settings import EngineOverrides
from volseg.segmenters.engine_settings import ALL_SETTINGS, as_overrides, engine_settings, refuse_unsupported
from volseg.segmenters.registry import BACKENDS, load_segmenter

#: captured from the code before engine_settings() existed (nnU-Net's _engine_settings, MONAI's
#: _settings, BLAST-CT's options.engine + GPU batch): {model: (settings on the CPU, window_batch on CUDA)}
BEFORE = {
    'blast-ct': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': True, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.5, 'window_batch': 1}, 64),
    'liver_lesions': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.5, 'window_batch': 1}, 1),
    'lung_nodules': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.5, 'window_batch': 1}, 1),
    'lung_vessels': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.5, 'window_batch': 1}, 1),
    'mrsegmentator': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': True, 'precision': 'auto', 'step': 0.5, 'window_batch': 1}, 1),
    'total': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.8, 'window_batch': 1}, 1),
    'total-fast': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.8, 'window_batch': 1}, 1),
    'total-fastest': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.8, 'window_batch': 1}, 1),
    'total_mr': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.8, 'window_batch': 1}, 1),
    'total_v3': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.8, 'window_batch': 1}, 1),
    'total_v3-fast': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.8, 'window_batch': 1}, 1),
    'total_v3-fastest': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.8, 'window_batch': 1}, 1),
    'wholebody_ct_segmentation': ({'accumulator': 'auto', 'blend': 'auto', 'channels_last': False, 'export': 'exact', 'mirror': False, 'precision': 'auto', 'step': 0.75, 'window_batch': 1}, 1),
}
SUPPORTED = {"nnunet": ALL_SETTINGS, "monai_bundle": ALL_SETTINGS, "blast_ct": BLAST_CT_SUPPORTED}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_catalogued_models_keep_their_effective_engine_settings(name):
    entry = load_catalogue()[name]
    cpu, cuda_batch = BEFORE[name]
    supported = SUPPORTED[entry.backend]
    assert engine_settings(entry, None, supported=supported).as_dict() == cpu
    assert engine_settings(entry, None, supported=supported, device_type="cuda").as_dict() == \
        {**cpu, "window_batch": cuda_batch}


def test_every_model_with_an_engine_is_in_the_table():
    assert {n for n, e in load_catalogue().items() if e.backend in SUPPORTED} == set(BEFORE)


def test_user_overrides_win_over_the_catalogue():
    entry = load_catalogue()["wholebody_ct_segmentation"]
    settings = engine_settings(entry, EngineOverrides(step=0.5, mirror=True, export="nearest"))
    assert (settings.step, settings.mirror, settings.export, settings.window_batch) == (0.5, True, "nearest", 1)


def test_a_backend_refuses_what_it_cannot_honour_by_one_rule():
    with pytest.raises(UsageError, match=r"model 'blast-ct' cannot honour the engine setting step \(--step\)"):
        load_segmenter("blast-ct", engine=EngineOverrides(step=0.5))  # valid windows never overlap
    with pytest.raises(UsageError, match=r"cannot honour the engine setting mirror \(--tta\)"):
        load_segmenter("blast-ct", engine=EngineOverrides(mirror=True))
    with pytest.raises(UsageError, match=r"model 'raidionics-ct-airways' cannot honour the engine setting export"):
        load_segmenter("raidionics-ct-airways", engine=EngineOverrides(export="nearest"))
    refuse_unsupported(EngineOverrides(precision="fp32"), supported=frozenset(), fixed={"precision": "fp32"},
                       model="m")  # asking for the value the backend always uses is honoured
    with pytest.raises(UsageError, match="precision"):
        refuse_unsupported(EngineOverrides(precision="bf16"), supported=frozenset(), fixed={"precision": "fp32"},
                           model="m")


def test_the_public_api_mapping_becomes_typed_overrides():
    assert as_overrides({"step": 0.25}) == EngineOverrides(step=0.25)
    assert as_overrides(None) is None
    with pytest.raises(UsageError, match="unknown engine override.*window_batch"):
        as_overrides({"window_batch": 3})


def test_backend_names_are_one_list():
    assert set(BACKENDS) == set(BACKEND_OPTIONS)


def test_every_catalogue_entry_has_the_options_model_of_its_backend():
    for entry in load_catalogue().values():
        assert type(entry.backend_options) is BACKEND_OPTIONS[entry.backend], entry.name
