"""ONNX models through onnxruntime and the shared engine: a lab's own ``.onnx`` file with a sidecar.

``volseg segment ct.nii.gz --model path/to/model.onnx`` reads ``model.onnx.json`` (or
``model.volseg.json``) beside it: the classes and what the network expects (:class:`OnnxSidecar`,
validated strictly). The network takes one float32 input (B, 1, *patch) and its first output is
(B, C, *patch) logits or probabilities, channel c = label c (0 = background). The session runs on
CUDA when the device is CUDA and onnxruntime has its CUDA provider, else on the CPU; windows go
through the engine (Gaussian blending, argmax on the model grid, labels to exactly the input grid).

Catalogued Raidionics models are their own backend (:mod:`volseg.segmenters.backends.raidionics`);
both build their session with :func:`volseg.segmenters.backends.onnx_session.make_session`.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_validator

from volseg.errors import ModelError
from volseg.labels import LabelTable
from volseg.segmenters.backends.onnx_session import make_session
from volseg.segmenters.backends.window_pipeline import NetworkInput, run_pipeline
from volseg.segmenters.base import ProgressCallback, check_on_grid, no_progress
from volseg.segmenters.engine_settings import ALL_SETTINGS, engine_settings
from volseg.segmenters.provenance import ModelProvenance
from volseg.strict import StrictModel
from volseg.volume import Volume

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry
    from volseg.segmenters.engine.settings import EngineOverrides

log = logging.getLogger(__name__)

SIDECAR_SCHEMA_VERSION = "1.0"
SIDECAR_SUFFIXES = (".onnx.json", ".volseg.json")


#: onnxruntime runs the graph in its own precision: autocast would only mislabel provenance
SUPPORTED = ALL_SETTINGS - {"precision"}


class OnnxSidecar(StrictModel):
    """``model.onnx.json``: everything volseg needs to run a custom ONNX segmentation model."""

    schema_version: str = SIDECAR_SCHEMA_VERSION
    name: str | None = Field(None, description="model name for reports (default: the file name)")
    version: str = "custom"
    modality: str | None = Field(None, pattern=r"^(CT|MR|PET)$")
    classes: dict[int, str] = Field(description="label value → class name; 0 (background) is implicit")
    input: NetworkInput
    window_batch: int | None = Field(None, ge=1)
    export: str | None = Field(None, pattern=r"^(exact|nearest)$")

    @field_validator("classes")
    @classmethod
    def _classes(cls, classes: dict[int, str]) -> dict[int, str]:
        if not classes:
            raise ValueError("at least one class is needed")
        if sorted(classes) != list(range(1, len(classes) + 1)):
            raise ValueError("class values must be 1..N without gaps (output channel c = label c)")
        return classes

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value.split(".")[0] != SIDECAR_SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"sidecar schema {value} is not supported (this volseg reads {SIDECAR_SCHEMA_VERSION})")
        return value


def find_sidecar(model_path: Path) -> Path:
    """``model.onnx.json`` or ``model.volseg.json`` beside ``model.onnx``; ModelError when absent."""
    candidates = [model_path.with_name(model_path.name + ".json"), model_path.with_suffix(".volseg.json")]
    for path in candidates:
        if path.is_file():
            return path
    raise ModelError("ONNX model has no sidecar describing its classes and preprocessing", path=model_path,
                     hint=f"write {candidates[0].name} (see README, 'Custom models')")


def read_sidecar(path: str | Path) -> OnnxSidecar:
    path = Path(path)
    try:
        return OnnxSidecar.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ModelError(f"sidecar is not valid JSON: {exc.msg} (line {exc.lineno})", path=path) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ModelError(f"invalid sidecar: {first['msg']} at {where or 'top level'}", path=path) from exc


def load(entry: ModelEntry, *, device: str = "auto", engine: EngineOverrides | None = None) -> OnnxSegmenter:
    """Factory for catalogue entries with ``backend: "onnx"`` (none yet: custom models come by path)."""
    raise ModelError(f"model {entry.name!r}: catalogued ONNX models need a 'model' and 'sidecar' option")


def load_file(path: str | Path, *, device: str = "auto", sidecar: str | Path | None = None,
              settings=None, engine: EngineOverrides | None = None) -> OnnxSegmenter:
    """A custom ``.onnx`` model with its sidecar as a segmenter."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("ONNX model file not found", path=path)
    meta = read_sidecar(sidecar or find_sidecar(path))
    return OnnxSegmenter(path, meta, device=device, settings=settings, engine=engine)


class OnnxPredictor:
    """Windows (B, 1, *patch) torch → the session's first output as a torch tensor."""

    def __init__(self, session, input_name: str):
        self.session, self.input_name = session, input_name

    def __call__(self, x):
        import numpy as np
        import torch

        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        out = self.session.run(None, {self.input_name: array})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)


class OnnxSegmenter:
    def __init__(self, path: Path, meta: OnnxSidecar, *, device: str = "auto", settings=None,
                 engine: EngineOverrides | None = None):
        from volseg.segmenters.device import resolve_device
        from volseg.segmenters.engine.settings import EngineSettings
        from volseg.segmenters.weights import weight_records

        self.path, self.meta = path, meta
        self.entry: ModelEntry | None = None  # a file given by path
        self.name = meta.name or path.stem
        self.version = meta.version
        self.labels = LabelTable.from_names(meta.classes)
        self.device = resolve_device(device)
        base = (settings or EngineSettings()).with_options(step=meta.input.step, window_batch=meta.window_batch,
                                                           export=meta.export)
        self.settings = engine_settings(None, engine, supported=SUPPORTED, fixed={"precision": "fp32"},
                                        base=base.with_options(precision="fp32"), model=self.name)
        self.session, self.providers = make_session(path, self.device)
        self.weight_records = weight_records([path])
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"ONNX model has {len(inputs)} inputs; volseg gives it one image", path=path)
        self.predictor = OnnxPredictor(self.session, inputs[0].name)
        self.channels = len(meta.classes) + 1
        self._last: dict[str, Any] = {}

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback = no_progress) -> Volume:
        import numpy as np

        t0 = time.perf_counter()
        result = run_pipeline(volume, self.predictor, spec=self.meta.input, channels=self.channels,
                              settings=self.settings, device=self.device, progress=progress)
        dtype = np.uint8 if self.channels <= 256 else np.uint16
        self._last = {**result.info, "seconds": time.perf_counter() - t0}
        return check_on_grid(volume.with_array(result.labels.astype(dtype)), volume, self.name)

    def provenance(self) -> ModelProvenance:
        from volseg.segmenters.device import describe_device

        return ModelProvenance(name=self.name, version=self.version, backend="onnx",
                               device=describe_device(self.device), weights=tuple(self.weight_records),
                               settings=self.settings.as_dict(),
                               details={"providers": list(self.providers),
                                        "input": self.meta.input.model_dump(mode="json"), **self._last},
                               layout=("model", "version", "backend", "weights", "device", "providers",
                                       "settings"))
