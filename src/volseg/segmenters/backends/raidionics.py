"""Raidionics models (catalogue ``backend: "raidionics"``) with their own preprocessing.

A Raidionics model folder holds ``pre_processing.ini`` (read by :mod:`.raidionics_config`) and an
ONNX network. The steps, in the publisher's order (raidionics_seg_lib ``pre_processing.py``,
``predictions.py``, ``predictions_reconstruction.py``; see :mod:`.raidionics_steps` for each one):

1. the image in RAS axis order (an exact permutation/flip);
2. the crop the model was trained with, on the input grid (raidionicsseg 1.5 crops the loaded image,
   then resamples the crop): CT models crop to the box of the lungs found by the ``CT_Lungs``
   Raidionics model installed beside the model (the catalogue downloads it), else by volseg's
   rule-based ``classic-ct``; MR models crop to the head ('minimum') or to the brain found by the
   ``MRI_Brain`` model installed beside it (its largest face-connected component), run through this
   same pipeline; if it is absent the load fails naming it;
3. the crop resampled to the model spacing, resized to ``new_axial_size``, intensity clipping and
   normalisation, the network on the whole volume, on axial slabs or on patches (maximum where
   patches overlap), softmax/sigmoid when the graph lacks it;
4. back to **exactly** the input grid: resize undone, the probabilities resampled to the crop's
   input voxels and pasted into the input grid, then per-class thresholds (``resample_first``), or
   thresholds first and labels resampled (``resample_second``).

Parity with ``raidionicsseg`` 1.5.2 on fabricated networks: ``benchmarks/parity/raidionics.py``.

Deviation: the publisher resamples into a world-axis-aligned box (nibabel ``resample_to_output``);
volseg resamples along the image's own axes after the RAS permutation, so an oblique scan keeps
its tilt instead of being interpolated into a padded box. Axis-aligned scans give the same grid.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from volseg.errors import ModelError
from volseg.labels import LabelTable
from volseg.segmenters.backends import raidionics_steps as steps
from volseg.segmenters.backends.raidionics_config import (
    INI_NAME,
    RaidionicsConfig,
    find_model_folder,
    find_network,
    read_config,
)
from volseg.segmenters.base import ProgressCallback, check_on_grid, no_progress
from volseg.segmenters.provenance import ModelProvenance
from volseg.volume import Volume, reorient, undo_reorient

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry
    from volseg.segmenters.engine.settings import EngineOverrides

log = logging.getLogger(__name__)

BRAIN_TASK = "MRI_Brain"
LUNGS_TASK = "CT_Lungs"
RECONSTRUCTION_METHODS = ("thresholding", "argmax")
RECONSTRUCTION_ORDERS = ("resample_first", "resample_second")


def load(entry: ModelEntry, *, device: str = "auto", engine: EngineOverrides | None = None) -> RaidionicsSegmenter:
    """Factory for catalogue entries with ``backend: "raidionics"`` (``BACKENDS["raidionics"]``).

    The models run with the publisher's own inference settings: any engine override is refused.
    """
    from volseg.segmenters.backend_options import RaidionicsOptions
    from volseg.segmenters.engine_settings import NO_SETTINGS, refuse_unsupported
    from volseg.segmenters.weights import require_installed

    refuse_unsupported(engine, supported=NO_SETTINGS, model=entry.name)
    options = entry.backend_options
    if not isinstance(options, RaidionicsOptions):
        raise ModelError(f"model {entry.name!r} is not a Raidionics model (backend {entry.backend!r})")
    root = require_installed(entry.name)
    return RaidionicsSegmenter(root, options.task, name=entry.name, version=entry.version,
                               labels=entry.label_table(), device=device, entry=entry,
                               method=options.reconstruction_method, order=options.reconstruction_order)


class OnnxNetwork:
    """The ONNX graph with the publisher's tensor layout: (1, X, Y, Z, 1) channels last or
    (1, 1, X, Y, Z) channels first; swapped models see (Z, X, Y) of the swapped array."""

    def __init__(self, path: Path, config: RaidionicsConfig, device):
        from volseg.segmenters.backends.onnx_session import make_session

        self.path, self.config = path, config
        self.session, self.providers = make_session(path, device)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"Raidionics network has {len(inputs)} inputs; volseg gives it one image", path=path)
        self.input_name = inputs[0].name
        self.calls, self.seconds = 0, 0.0

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """(X, Y, Z) float32 in the network's array layout → (X, Y, Z, C) network output."""
        c = self.config
        spatial = block.transpose(2, 0, 1) if c.swap_input else block
        x = spatial[None, None] if c.channels_first else spatial[None, ..., None]
        t0 = time.perf_counter()
        out = np.asarray(self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})[0])
        self.calls, self.seconds = self.calls + 1, self.seconds + time.perf_counter() - t0
        if out.ndim == 5:
            out = out[0]
        out = np.moveaxis(out, 0, -1) if c.channels_first else out
        if out.shape != (*spatial.shape, c.nb_classes):
            raise ModelError(f"Raidionics network output {tuple(out.shape)} does not match its input "
                             f"{tuple(block.shape)} with {c.nb_classes} classes", path=self.path)
        return out.transpose(1, 2, 0, 3) if c.swap_input else out


class RaidionicsPipeline:
    """One Raidionics model folder: preprocessing, inference and reconstruction on a volume."""

    def __init__(self, folder: Path, *, device, method: str, order: str, brain: RaidionicsPipeline | None = None,
                 lungs: RaidionicsPipeline | None = None):
        self.folder = folder
        self.config = read_config(folder / INI_NAME)
        if method not in RECONSTRUCTION_METHODS:
            raise ModelError(f"reconstruction_method {method!r} is not supported",
                             hint=f"one of {', '.join(RECONSTRUCTION_METHODS)}")
        if order not in RECONSTRUCTION_ORDERS:
            raise ModelError(f"reconstruction_order {order!r} is not supported",
                             hint=f"one of {', '.join(RECONSTRUCTION_ORDERS)}")
        if method == "thresholding" and not self.config.thresholds:
            raise ModelError("[Training] optimal_thresholds is needed for thresholding", path=folder / INI_NAME)
        if self.config.crop in ("brain_clip", "brain_mask") and brain is None:
            raise ModelError(f"the model crops to the brain ({self.config.crop}) but the {BRAIN_TASK} model is "
                             "not installed beside it", path=folder.parent / BRAIN_TASK,
                             hint="reinstall the catalogue entry, which downloads both archives")
        self.method, self.order, self.brain, self.lungs, self.device = method, order, brain, lungs, device
        self.network = OnnxNetwork(find_network(folder), self.config, device)
        self.last: dict[str, Any] = {}
        self.classic_masks: dict[str, np.ndarray] | None = None  # classic-ct's masks of the last crop

    def labels_ras(self, ras: Volume, *, progress: ProgressCallback = no_progress) -> np.ndarray:
        """Label codes on the grid of ``ras`` (a volume in RAS axis order)."""
        c = self.config
        t0 = time.perf_counter()
        spacing = tuple(float(s) for s in ras.spacing)
        target = c.output_spacing or (min(spacing),) * 3
        image = np.asarray(ras.array, dtype=np.float32)
        box, crop = self._crop(ras, image)
        mask = crop.pop("mask", None)
        data = image[box]
        if crop["kind"] == "brain_mask":
            data = np.where(mask[box], data, 0).astype(np.float32)
        cropped_shape = data.shape
        data = steps.apply(data, {d: steps.model_grid_matrix(n, s, t) for d, (n, s, t)
                                  in enumerate(zip(cropped_shape, spacing, target))}, self.device)
        model_shape = data.shape
        if c.new_axial_size:
            size = steps.resize_shape(data.shape, c.new_axial_size)
            data = steps.apply(data, {d: steps.resize_matrix(n, m) for d, (n, m) in enumerate(zip(data.shape, size))},
                               self.device)
        data = steps.normalise(steps.clip_intensities(data, modality=c.modality, percentiles=c.clip_percentiles),
                               c.normalisation, modality=c.modality)
        t1 = time.perf_counter()
        progress("raidionics", 0, 1)
        probs = self._infer(data.transpose(1, 0, 2) if c.swap_input else data)
        if c.swap_input:
            probs = probs.transpose(1, 0, 2, 3)
        probs = np.moveaxis(probs, -1, 0)  # (C, X, Y, Z)
        progress("raidionics", 1, 1)
        t2 = time.perf_counter()
        labels = self._reconstruct(probs, box, model_shape, cropped_shape, ras.shape, spacing, target)
        self.last = {"model_grid_shape": list(model_shape), "network_input_shape": list(data.shape),
                     "target_spacing_mm": [float(t) for t in target], "crop": crop, "mode": c.mode,
                     "network_calls": self.network.calls,
                     "timings_s": {"preprocess": t1 - t0, "inference": t2 - t1,
                                   "network_forward": self.network.seconds,
                                   "reconstruction": time.perf_counter() - t2}}
        self.network.calls, self.network.seconds = 0, 0.0
        return labels

    def _crop(self, ras: Volume, image: np.ndarray) -> tuple[tuple[slice, ...], dict]:
        """The publisher's background crop, on the input grid (before resampling, as raidionicsseg
        1.5 crops the loaded image and resamples the crop)."""
        kind = self.config.crop
        full = tuple(slice(0, n) for n in image.shape)
        if kind is None:
            return full, {"kind": None}
        box: tuple[slice, ...]
        info: dict[str, Any]
        if kind == "minimum":
            box, info = steps.minimum_box(image), {"kind": "minimum", "source": "image intensities"}
        elif kind in ("lungs", "invert"):
            box, source = self._lungs_box(ras)
            if kind == "invert":
                box = (box[0], box[1], slice(0, box[2].start))
            info = {"kind": kind, "source": source}
        else:
            if self.brain is None:
                raise ModelError(f"the {BRAIN_TASK} model is not loaded: the crop cannot be placed")
            mask = self.brain.labels_ras(ras) > 0
            found = steps.largest_component_box(mask)
            if found is None:
                raise ModelError(f"the {BRAIN_TASK} model found no brain: the crop cannot be placed")
            box = found
            inside = np.zeros_like(mask)
            inside[box] = True
            info = {"kind": kind, "source": f"{BRAIN_TASK} model", "mask": mask & inside}
        info["box_input_grid"] = [[int(s.start), int(s.stop)] for s in box]
        return box, info

    def _lungs_box(self, ras: Volume) -> tuple[tuple[slice, slice, slice], str]:
        """Box of the lungs: from the CT_Lungs model installed beside (the publisher's mask), else
        from classic-ct's rule-based lungs."""
        if self.lungs is not None:
            box = steps.box_of(self.lungs.labels_ras(ras) > 0)
            if box is None:
                raise ModelError(f"the {LUNGS_TASK} model found no lungs: the mediastinal crop cannot be placed")
            return box, f"{LUNGS_TASK} model"
        self.classic_masks = classic_masks(ras)
        box = steps.box_of(self.classic_masks["lung_left"] | self.classic_masks["lung_right"])
        if box is None:
            raise ModelError("classic-ct found no lungs: the mediastinal crop cannot be placed",
                             hint="the model needs a chest CT with both lungs in the field of view")
        return box, "classic-ct lungs (rule-based prior standing in for CT_Lungs)"

    def _infer(self, data: np.ndarray) -> np.ndarray:
        c = self.config
        if c.mode == "whole":
            out = self.network(data)
        elif c.mode == "slab":
            if c.slab_size is None:
                raise ModelError("a slab model's configuration gives no slab_size")
            out = infer_slabs(self.network, data, c.slab_size)
        else:
            out = infer_patches(self.network, data, c.patch_size, c.patch_offset or (0, 0, 0))
        return out if c.activation_included else steps.activate(out, c.activation)

    def _reconstruct(self, probs, box, model_shape, cropped_shape, in_shape, spacing, target) -> np.ndarray:
        """Network output back onto the whole input grid: resize undone (to the model grid of the
        crop), the crop's input voxels sampled from it, the crop pasted into the input grid."""
        c, method = self.config, self.method
        if self.order == "resample_second":
            codes = steps.labels_from_probabilities(probs, method=method, thresholds=c.thresholds, activation=c.activation)
            if codes.shape != model_shape:
                idx = [steps.unresize_indices(m, n) for m, n in zip(codes.shape, model_shape)]
                codes = codes[np.ix_(*idx)]
            idx = [steps.back_indices(n, m, s, t) for n, m, s, t in zip(cropped_shape, model_shape, spacing, target)]
            full = np.zeros(in_shape, dtype=np.int64)
            full[box] = codes[np.ix_(*idx)]
            return full
        if probs.shape[1:] != model_shape:
            probs = steps.apply(probs, {d + 1: steps.unresize_matrix(m, n) for d, (m, n)
                                        in enumerate(zip(probs.shape[1:], model_shape))}, self.device)
        back = steps.apply(probs, {d + 1: steps.back_matrix(n, m, s, t) for d, (n, m, s, t)
                                   in enumerate(zip(cropped_shape, model_shape, spacing, target))}, self.device)
        full = np.zeros((probs.shape[0], *in_shape), dtype=np.float32)
        full[(slice(None), *box)] = back
        return steps.labels_from_probabilities(full, method=method, thresholds=c.thresholds, activation=c.activation)


def infer_slabs(network, data: np.ndarray, slab: int) -> np.ndarray:
    """Axial slabs of ``slab`` slices, end padded by repeating the last slice (non-overlapping)."""
    n = data.shape[2]
    pad = (-n) % slab
    padded = np.pad(data, ((0, 0), (0, 0), (0, pad)), mode="edge") if pad else data
    parts = [network(padded[:, :, z:z + slab]) for z in range(0, n + pad, slab)]
    return np.concatenate(parts, axis=2)[:, :, :n]


def infer_patches(network, data: np.ndarray, patch, offset) -> np.ndarray:
    """Patches with ``offset`` voxels of overlap, the maximum kept where they overlap; axes not
    longer than the patch are padded on both ends by repeating the border (the publisher's tiling)."""
    pads = [int(np.ceil((p - n) / 2)) if n <= p else 0 for n, p in zip(data.shape, patch)]
    x = np.pad(data, [(p, p) for p in pads], mode="edge") if any(pads) else data
    out = None
    for i in steps.patch_starts(x.shape[0], patch[0], offset[0]):
        for j in steps.patch_starts(x.shape[1], patch[1], offset[1]):
            for k in steps.patch_starts(x.shape[2], patch[2], offset[2]):
                window = (slice(i, i + patch[0]), slice(j, j + patch[1]), slice(k, k + patch[2]))
                pred = network(x[window])
                if out is None:
                    out = np.full(x.shape + (pred.shape[-1],), -100.0, dtype=np.float32)
                np.maximum(out[window], pred, out=out[window])
    if out is None:
        raise ModelError("no patch fits the preprocessed volume")
    return out[tuple(slice(p, n - p) for p, n in zip(pads, x.shape))]


def classic_masks(ras: Volume) -> dict[str, np.ndarray]:
    """classic-ct's masks on a RAS volume (refuses images that are not CT in HU)."""
    from volseg.segmenters.classic import check_ct, segment_masks

    check_ct(np.asarray(ras.array), ras.meta.get("modality"))
    return segment_masks(ras)


def lungs_mask(ras: Volume) -> np.ndarray:
    """Both lungs from classic-ct on a RAS volume (refuses images that are not CT in HU)."""
    masks = classic_masks(ras)
    return masks["lung_left"] | masks["lung_right"]


class RaidionicsSegmenter:
    """A catalogued Raidionics model; satisfies :class:`volseg.segmenters.base.Segmenter`."""

    def __init__(self, root: Path, task: str, *, name: str, version: str, labels: LabelTable, device: str = "auto",
                 method: str = "thresholding", order: str = "resample_first", entry: ModelEntry | None = None):
        from volseg.segmenters.device import resolve_device
        from volseg.segmenters.weights import weight_records

        self.root, self.task, self.name, self.version, self.labels = Path(root), task, name, version, labels
        self.entry = entry
        self.device = resolve_device(device)
        folder = find_model_folder(self.root, task)
        config = read_config(folder / INI_NAME)
        brain = None
        if config.crop in ("brain_clip", "brain_mask") and (self.root / BRAIN_TASK).is_dir():
            brain = RaidionicsPipeline(find_model_folder(self.root, BRAIN_TASK), device=self.device,
                                       method="thresholding", order="resample_first")
        lungs = None
        if config.crop in ("lungs", "invert") and (self.root / LUNGS_TASK).is_dir():
            lungs = RaidionicsPipeline(find_model_folder(self.root, LUNGS_TASK), device=self.device,
                                       method="thresholding", order="resample_first")
        self.pipeline = RaidionicsPipeline(folder, device=self.device, method=method, order=order, brain=brain,
                                           lungs=lungs)
        pipes = [self.pipeline] + [p for p in (brain, lungs) if p is not None]
        self.weight_records = weight_records([p for pipe in pipes for p in (pipe.network.path, pipe.folder / INI_NAME)],
                                             relative_to=self.root)
        channels = config.nb_classes - config.first_label_channel()
        if len(labels) < channels:
            raise ModelError(f"model {name!r}: the network has {channels} classes but the catalogue names "
                             f"{len(labels)}", path=folder / INI_NAME)
        self._last: dict[str, Any] = {}

    @property
    def classic_masks(self) -> dict[str, np.ndarray] | None:
        """classic-ct's masks of the last mediastinal crop (reused for station landmarks)."""
        return self.pipeline.classic_masks

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback = no_progress) -> Volume:
        t0 = time.perf_counter()
        ras = reorient(volume, "RAS")
        codes = self.pipeline.labels_ras(ras, progress=progress)
        dtype = np.uint8 if len(self.labels) < 256 else np.uint16
        labels = undo_reorient(codes.astype(dtype), volume)
        self._last = {**self.pipeline.last, "seconds": time.perf_counter() - t0}
        return check_on_grid(labels, volume, self.name)

    def provenance(self) -> ModelProvenance:
        from dataclasses import asdict

        from volseg.segmenters.device import describe_device
        settings = {"framework": "raidionics", "task": self.task, "reconstruction_method": self.pipeline.method,
                    "reconstruction_order": self.pipeline.order, "pre_processing": asdict(self.pipeline.config)}
        return ModelProvenance(name=self.name, version=self.version, backend="raidionics",
                               device=describe_device(self.device), weights=tuple(self.weight_records),
                               settings=settings,
                               details={"providers": list(self.pipeline.network.providers), **self._last},
                               layout=("model", "version", "backend", "weights", "device", "providers",
                                       "settings"))
