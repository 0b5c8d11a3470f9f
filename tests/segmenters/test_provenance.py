"""Segmenters carry their catalogue entry and return a frozen ModelProvenance whose mapping is the
report's ``provenance.model`` exactly as before."""
from __future__ import annotations

import dataclasses
import json

import pytest

from volseg.segmenters.catalogue import get_entry
from volseg.segmenters.provenance import ModelProvenance
from volseg.segmenters.registry import load_segmenter


def test_classic_ct_carries_its_entry_and_keeps_its_mapping_without_a_backend_key():
    segmenter = load_segmenter("classic-ct")
    assert segmenter.entry == get_entry("classic-ct")
    prov = segmenter.provenance()
    assert isinstance(prov, ModelProvenance) and prov.backend == "classic"
    assert json.dumps(prov.as_dict()) == json.dumps(
        {"model": "classic-ct", "version": get_entry("classic-ct").version, "device": "cpu", "weights": []})
    with pytest.raises(dataclasses.FrozenInstanceError):
        prov.name = "other"  # type: ignore[misc]


def test_the_mapping_follows_the_layout_then_the_details_in_order():
    prov = ModelProvenance(name="m", version="1", backend="onnx", device="cpu", weights=({"file": "a"},),
                           settings={"step": 0.5}, details={"providers": ["CPU"], "seconds": 2.0, "fallbacks": ["x"]},
                           layout=("model", "version", "backend", "weights", "device", "providers", "settings"))
    assert list(prov.as_dict()) == ["model", "version", "backend", "weights", "device", "providers", "settings",
                                    "seconds", "fallbacks"]
    assert prov.as_dict()["weights"] == [{"file": "a"}] and prov.fallbacks == ["x"]
