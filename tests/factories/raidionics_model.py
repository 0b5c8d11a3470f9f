"""Small Raidionics model folders in the publisher's layout, with networks whose answers are known.

A folder holds ``pre_processing.ini`` (the publisher's section and key names) and, one folder down,
``fold0/model.onnx``: a tiny torch network exported with ``torch.onnx.export`` whose input is named
``input`` and laid out as the ini says — (1, 1, X, Y, Z) channels first or (1, X, Y, Z, 1) channels
last — with two output channels (background, class 1), spatial sizes dynamic:

* ``identity``: probabilities (1 − x, x): the mask is the threshold of the normalised intensity;
* ``logits``: scores (−g, g) with g = 20·(x − ½): softmax, when the ini says the graph lacks it,
  gives p₁ ≥ ½ exactly where x ≥ ½;
* ``shift``: the identity of the input moved one voxel along the network's last spatial axis (zero
  enters at the first slice): which volume axis moves shows the tensor layout was honoured.
"""
from __future__ import annotations

import configparser
import io
import zipfile
from functools import lru_cache
from pathlib import Path

BASE_INI = {
    "Default": {"imaging_modality": "CT", "training_backend": "Torch"},
    "PreProcessing": {"output_spacing": "1.0, 1.0, 1.0", "background_cropping": "false",
                      "normalization_method": "default", "number_inputs": "1", "channels_order": "channels_first"},
    "Training": {"nb_classes": "2", "classes": "Background, Target", "optimal_thresholds": "0.5, 0.5",
                 "activation_layer_included": "true", "activation_layer_type": "softmax"},
}


def ini_text(changes: dict[str, dict[str, str | None]] | None = None) -> str:
    """The base ini with ``changes`` applied (a value of None removes the key)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(BASE_INI)
    for section, items in (changes or {}).items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in items.items():
            if value is None:
                parser.remove_option(section, key)
            else:
                parser.set(section, key, value)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


@lru_cache(maxsize=8)
def network_bytes(kind: str = "identity", channels_first: bool = True) -> bytes:
    """The ONNX file of a tiny network (``identity``, ``logits`` or ``shift``)."""
    import torch

    class Net(torch.nn.Module):
        def forward(self, x):
            if not channels_first:
                x = x.permute(0, 4, 1, 2, 3)
            if kind == "shift":
                x = torch.nn.functional.pad(x, (1, 0))[..., :-1]
            if kind == "logits":
                g = 20.0 * (x - 0.5)
                out = torch.cat([-g, g], dim=1)
            else:
                out = torch.cat([1.0 - x, x], dim=1)
            return out if channels_first else out.permute(0, 2, 3, 4, 1)

    example = torch.zeros((1, 1, 6, 5, 4) if channels_first else (1, 6, 5, 4, 1))
    axes = {0: "b", 2: "x", 3: "y", 4: "z"} if channels_first else {0: "b", 1: "x", 2: "y", 3: "z"}
    buffer = io.BytesIO()
    torch.onnx.export(Net().eval(), (example,), buffer, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": axes, "output": axes}, opset_version=17, dynamo=False)
    return buffer.getvalue()


def write_model(folder: Path, *, changes: dict | None = None, kind: str = "identity") -> Path:
    """``folder/pre_processing.ini`` + ``folder/fold0/model.onnx``; returns ``folder``."""
    text = ini_text(changes)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    first = parser.get("PreProcessing", "channels_order", fallback="channels_last") == "channels_first"
    (folder / "fold0").mkdir(parents=True, exist_ok=True)
    (folder / "pre_processing.ini").write_text(text)
    (folder / "fold0" / "model.onnx").write_bytes(network_bytes(kind, first))
    return folder


def write_archive(path: Path, task: str, *, changes: dict | None = None, kind: str = "identity",
                  pipeline: bool = True) -> Path:
    """A zip as the publisher ships it: ``TASK/pre_processing.ini``, ``TASK/fold0/model.onnx``
    (and ``TASK/pipeline.json``); the pipeline's content is not read by volseg."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{task}/pre_processing.ini", ini_text(changes))
        first = (changes or {}).get("PreProcessing", {}).get("channels_order", "channels_first") == "channels_first"
        zf.writestr(f"{task}/fold0/model.onnx", network_bytes(kind, first))
        if pipeline:
            zf.writestr(f"{task}/pipeline.json", "{}")
    return path


def install_lymph_node_model(tmp_path: Path, monkeypatch):
    """``raidionics-ct-lymphnodes`` from tiny archives in the publisher's layout, installed into a
    temporary VOLSEG_HOME (crop from the lungs, 3.5×3.5×6 mm); returns its catalogue entry."""
    from volseg.segmenters.catalogue import get_entry
    from volseg.segmenters.weights import install_from_source

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    entry = get_entry("raidionics-ct-lymphnodes")
    source = tmp_path / "source"
    source.mkdir()
    lymph, lungs = (w.name for w in entry.weights)
    write_archive(source / lymph, "CT_LymphNodes", changes={"PreProcessing": {
        "background_cropping": "lungs_clip", "output_spacing": "3.5, 3.5, 6.0", "new_axial_size": "32, 32, 16"}})
    write_archive(source / lungs, "CT_Lungs", pipeline=False,  # identity: the crop is the box of bright voxels
                  changes={"PreProcessing": {"output_spacing": "3.5, 3.5, 6.0", "new_axial_size": "32, 32, 16"}})
    install_from_source(source, model=entry.name)
    return entry
