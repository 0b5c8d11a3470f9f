"""The nnU-Net v2 backend: trained-model folders through volseg's own preprocessing and engine.

Two ways in:

* a catalogue entry with ``backend: "nnunet"``; its ``backend_options`` (validated by
  :class:`NnUNetOptions`) name the folder (``model_dir`` + dataset/trainer/plans/configuration), the
  folds, an optional class-index map, multi-part models (``parts``: TotalSegmentator's ``total`` is
  five nnU-Net models each predicting some classes, merged into one label map, later parts winning
  where they predict a class), ``reorient_to`` (TotalSegmentator feeds nnU-Net RAS-reoriented images;
  plain nnU-Net does not reorient) and engine settings;
* a path to any trained-model folder (``volseg segment ct.nii.gz --model path/to/folder``), whose
  classes come from its ``dataset.json``.

The model is loaded once (weights on the device) and predicts many volumes.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from volseg.errors import ModelError
from volseg.labels import LabelTable
from volseg.segmenters.backend_options import NnUNetOptions, PartOptions, TripleSplit
from volseg.segmenters.backends.nnunet_folder import ModelFolder, read_model_folder
from volseg.segmenters.backends.nnunet_pipeline import BodyCrop, NnUNetPart
from volseg.segmenters.backends.nnunet_presample import PreResample
from volseg.segmenters.backends.nnunet_split import predict_in_slabs, split_applies
from volseg.segmenters.base import ProgressCallback, check_on_grid, no_progress
from volseg.segmenters.device import describe_device, resolve_device
from volseg.segmenters.engine.settings import EngineOverrides, EngineSettings
from volseg.segmenters.engine_settings import ALL_SETTINGS, ENSEMBLE, engine_settings, first_members
from volseg.segmenters.provenance import ModelProvenance
from volseg.segmenters.roi_subset import check_roi_subset
from volseg.volume import Volume, reorient, undo_reorient

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry

log = logging.getLogger(__name__)
FOLDS = ALL_SETTINGS | ENSEMBLE  # --members N: the first N folds of each part


def load(entry: ModelEntry, *, device: str = "auto", model_dir: str | Path | None = None,
         engine: EngineOverrides | None = None, classes: Iterable[str] | None = None) -> NnUNetSegmenter:
    """Factory for catalogue entries (``BACKENDS["nnunet"]``).

    The weights folder is ``model_dir``, else ``backend_options.model_dir``, else the weights
    manager's installed folder. Parts come from ``backend_options.parts`` or the entry's ``parts``
    (each naming its ``model_folder`` and its labels by class name); sliding-window settings from
    ``backend_options.engine`` and the entry's ``sliding_window``, then the user's ``engine``
    overrides; orientation from ``input``. ``classes`` (names; TotalSegmentator's ``--roi_subset``)
    loads and runs only the parts that predict one of them.
    """
    options = entry.backend_options
    if not isinstance(options, NnUNetOptions):
        raise ModelError(f"model {entry.name!r} is not an nnU-Net model (backend {entry.backend!r})")
    root = Path(model_dir or options.model_dir or _installed_folder(entry))
    if not root.is_dir():
        raise ModelError(f"the weights folder of model {entry.name!r} does not exist", path=root)
    labels = entry.label_table()
    parts = options.parts or _entry_parts(entry, options, labels) or (options,)
    if classes is not None:
        check_roi_subset(list(classes), labels, model=entry.name)
        parts = select_parts(parts, [labels.index_of(name) for name in classes], model=entry.name)
    folders = [(read_part(p, root), p.label_map) for p in parts]
    orientation = options.reorient_to or entry.input.orientation
    device_type = resolve_device(device).type
    return NnUNetSegmenter(folders, name=entry.name, version=entry.version, labels=labels, device=device,
                           settings=engine_settings(entry, engine, device_type=device_type, supported=FOLDS),
                           reorient_to=orientation, entry=entry,
                           body_crop=BodyCrop() if options.crop_to_body else None,
                           pre_resample=_pre_resample(entry, options), triple_split=options.triple_split)


def _pre_resample(entry: ModelEntry, options: NnUNetOptions) -> PreResample | None:
    """TotalSegmentator's resampling before nnU-Net (``pre_resample_order`` and ``input.spacing_mm``)."""
    if options.pre_resample_order is None:
        return None
    if entry.input.spacing_mm is None:
        raise ModelError(f"model {entry.name!r} asks for pre-resampling but gives no input.spacing_mm")
    return PreResample(entry.input.spacing_mm, order=options.pre_resample_order)


def load_folder(path: str | Path, *, device: str = "auto", folds=None, checkpoint: str | None = None,
                settings: EngineSettings | None = None, reorient_to: str | None = None,
                engine: EngineOverrides | None = None) -> NnUNetSegmenter:
    """A user's own trained-model folder as a segmenter (classes from its dataset.json)."""
    folder = read_model_folder(path, folds=folds, checkpoint=checkpoint)
    name = _folder_name(folder.path)
    return NnUNetSegmenter([(folder, None)], name=name, version=_folder_version(folder),
                           labels=labels_from_dataset_json(folder), device=device,
                           settings=engine_settings(None, engine, base=settings, model=name, supported=FOLDS),
                           reorient_to=reorient_to)


def load_parts(parts: list[tuple[str | Path, dict[int, int]]], *, labels: LabelTable, device: str = "auto",
               settings: EngineSettings | None = None, name: str = "nnunet-parts",
               reorient_to: str | None = None) -> NnUNetSegmenter:
    """Several trained-model folders combined into one label map with ``{part label: label}`` maps."""
    folders: list[tuple[ModelFolder, dict[int, int] | None]] = [
        (read_model_folder(path), dict(mapping)) for path, mapping in parts]
    return NnUNetSegmenter(folders, name=name, version="custom", labels=labels, device=device,
                           settings=settings or EngineSettings(), reorient_to=reorient_to)


def parse_options(raw: dict | NnUNetOptions) -> NnUNetOptions:
    """``backend_options`` of an nnU-Net model (the catalogue validates them when it loads)."""
    if isinstance(raw, NnUNetOptions):
        return raw
    try:
        return NnUNetOptions.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ModelError(f"invalid nnU-Net backend options: {first['msg']} at "
                         f"{'.'.join(str(x) for x in first['loc'])}") from exc


def read_part(part: PartOptions, root: Path) -> ModelFolder:
    if part.model_folder:
        path = Path(part.model_folder) if Path(part.model_folder).is_absolute() else root / part.model_folder
    elif part.dataset:
        path = root / part.dataset / f"{part.trainer}__{part.plans}__{part.configuration}"
    else:
        path = root
    return read_model_folder(path, folds=part.folds, checkpoint=part.checkpoint,
                             configuration=part.configuration if part.dataset else None)


def parts_for_classes(produced: Sequence[Iterable[int] | None], wanted: Iterable[int]) -> list[int]:
    """Positions of the parts to run for the ``wanted`` output labels: those whose output labels
    (``None``: not known before loading, so kept) hold one of them, in their original order."""
    wanted = {int(w) for w in wanted}
    return [i for i, labels in enumerate(produced) if labels is None or wanted & {int(v) for v in labels}]


def select_parts(parts: Sequence[PartOptions], wanted: Sequence[int], *,
                 model: str) -> tuple[PartOptions, ...]:
    """The parts that predict one of the ``wanted`` labels (the others are neither loaded nor run)."""
    keep = parts_for_classes([set(p.label_map.values()) if p.label_map is not None else None for p in parts],
                             wanted)
    if not keep:
        raise ModelError(f"no part of model {model!r} predicts labels {sorted(wanted)}")
    if len(keep) < len(parts):
        log.info("%s: running %d of its %d parts for the classes asked", model, len(keep), len(parts))
    return tuple(parts[i] for i in keep)


def _installed_folder(entry: ModelEntry) -> Path:
    try:
        from volseg.segmenters.weights import require_installed
    except ImportError:
        raise ModelError(f"model {entry.name!r} is not installed",
                         hint=f"install it with `volseg models install {entry.name}`") from None
    return Path(require_installed(entry.name))


def _entry_parts(entry: ModelEntry, options: NnUNetOptions, labels: LabelTable) -> tuple[PartOptions, ...]:
    """Parts declared by the catalogue entry: model folder and labels by class name."""
    parts = []
    for part in entry.parts:
        try:
            mapping = {int(k): labels.index_of(str(name)) for k, name in part.labels.items()}
        except KeyError as exc:
            raise ModelError(f"part {part.name!r} of {entry.name!r} names unknown class {exc}") from None
        folder = part.options.model_folder or options.model_folder
        parts.append(PartOptions(model_folder=folder, trainer=options.trainer, plans=options.plans,
                                 configuration=options.configuration, folds=options.folds,
                                 checkpoint=options.checkpoint, label_map=mapping))
    return tuple(parts)


class NnUNetSegmenter:
    """Segmenter over one or more nnU-Net models (parts), loaded once, predicting many volumes."""

    def __init__(self, parts: list[tuple[ModelFolder, dict[int, int] | None]], *, name: str, version: str,
                 labels: LabelTable, device: str = "auto", settings: EngineSettings | None = None,
                 reorient_to: str | None = None, body_crop: BodyCrop | None = None,
                 entry: ModelEntry | None = None, pre_resample: PreResample | None = None,
                 triple_split: TripleSplit | None = None):
        self.entry = entry  # None: a trained-model folder given by path
        self.name, self.version, self.labels = name, version, labels
        self.settings = settings = settings or EngineSettings()
        self.reorient_to = reorient_to
        self.body_crop = body_crop
        self.pre_resample = pre_resample
        self.triple_split = triple_split
        self.device = resolve_device(device)
        self.parts = [NnUNetPart(replace(folder, folds=tuple(first_members(folder.folds, settings.members, model=name,
                                                                           kind="folds"))), self.device, settings)
                      for folder, _ in parts]
        self.label_maps = [_check_label_map(m, p, labels) for (_, m), p in zip(parts, self.parts)]
        self._last: dict[str, Any] = {}

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback = no_progress) -> Volume:
        t0 = time.perf_counter()
        self._check_modality(modality or volume.meta.get("modality"))
        # resampled next: the zoom reads any memory order, so no transposing copy first
        work = reorient(volume, self.reorient_to, keep_layout=self.pre_resample is not None) \
            if self.reorient_to else volume
        array = work.array
        spacing: tuple[float, ...] = work.spacing
        if self.pre_resample is not None:
            array, spacing = self.pre_resample.image(array, spacing)
        split = self.triple_split if split_applies(array.shape, self.triple_split) else None
        if split is not None:
            log.info("%s: image of %s voxels on the model grid, predicted in three slabs (as TotalSegmentator)",
                     self.name, "x".join(str(n) for n in array.shape))
        combined, runs = self._merge_parts(array, spacing, progress, split)
        if self.pre_resample is not None:
            combined = self.pre_resample.labels_back(combined, work.shape)
        out = undo_reorient(combined, volume, self.reorient_to) if self.reorient_to else volume.with_array(combined)
        self._last = {"parts": runs, "seconds": time.perf_counter() - t0, "split": split is not None}
        return check_on_grid(out, volume, self.name)

    def _merge_parts(self, array: np.ndarray, spacing: tuple[float, ...], progress: ProgressCallback,
                     split: TripleSplit | None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Each part's labels mapped to the output's, later parts winning where they predict a class
        (TotalSegmentator's merge); with ``split``, each part runs slab by slab (``nnunet_split``)."""
        dtype = np.uint8 if max(self.labels, default=0) < 256 else np.uint16
        combined: np.ndarray | None = None
        runs: list[dict[str, Any]] = []
        for i, (part, mapping) in enumerate(zip(self.parts, self.label_maps)):
            stage = (lambda s, d, t, i=i: progress(f"part {i + 1}/{len(self.parts)}: {s}", d, t)) \
                if len(self.parts) > 1 else progress

            def run(a: np.ndarray, part=part, mapping=mapping, stage=stage) -> np.ndarray:
                result = part.predict(a, spacing, self.settings, label_map=mapping,
                                      body_crop=self.body_crop, progress=stage)
                runs.append(result.info)
                return result.labels.astype(dtype, copy=False)

            mapped = run(array) if split is None else predict_in_slabs(run, array, split.margin)
            if combined is None:
                combined = mapped
            else:
                np.copyto(combined, mapped, where=mapped != 0)
        if combined is None:
            raise ModelError(f"model {self.name!r} has no part to run")
        return combined, runs

    def _check_modality(self, modality: str | None) -> None:
        """Refuse MR/PET input for models normalised as CT (they expect Hounsfield units)."""
        if modality and modality.upper() in ("MR", "PT", "PET") and \
                any(p.scheme == "CTNormalization" for p in self.parts):
            raise ModelError(f"model {self.name!r} expects CT in Hounsfield units; this image is {modality}")

    def provenance(self) -> ModelProvenance:
        runs = self._last.get("parts", [])
        weights = [{"file": f"{p.folder.path.name}/fold_{f.fold}/{f.path.name}", "sha256": f.sha256}
                   for p in self.parts for f in p.folder.folds]
        return ModelProvenance(
            name=self.name, version=self.version, backend="nnunet", device=describe_device(self.device),
            weights=tuple(weights), settings=self.settings.as_dict(),
            details={"reorient_to": self.reorient_to, "body_crop": self.body_crop is not None,
                     **({"pre_resample": {"spacing_mm": list(self.pre_resample.spacing_mm),
                                          "order": self.pre_resample.order}} if self.pre_resample else {}),
                     **({"triple_split": True} if self._last.get("split") else {}),
                     "mirror_axes": [list(p.folder.mirror_axes) for p in self.parts],
                     "runs": runs, "fallbacks": [f for r in runs for f in r.get("fallbacks", [])]})


def labels_from_dataset_json(folder: ModelFolder) -> LabelTable:
    """Output classes of a folder: dataset.json names (regions: in regions_class_order)."""
    spec = folder.labels()
    names = {str(k): v for k, v in spec.names.items() if k != "ignore"}
    if spec.regions:
        regions = [k for k, v in names.items() if _region_key(v) != (0,) and k != "background"]
        table = {value: _clean_name(name) for value, name in zip(spec.values, regions)}
    else:
        table = {int(v): _clean_name(k) for k, v in names.items()
                 if not isinstance(v, (list, tuple)) and int(v) != 0}
    return LabelTable.from_names(table)


def _region_key(value) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),)


def _clean_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(name)).strip("_.-")
    return cleaned or "label"


def _check_label_map(mapping: dict[int, int] | None, part: NnUNetPart, labels: LabelTable) -> dict[int, int] | None:
    """The part's {model label: output label} map, checked against the output classes."""
    produced = set(mapping.values()) if mapping is not None else set(part.decoder.values)
    unknown = sorted({int(v) for v in produced} - set(labels) - {0})
    if unknown and mapping is None:
        raise ModelError(f"{part.folder.path.name} predicts labels {unknown} that the model's classes lack",
                         hint="give the part a label_map")
    if mapping is None:
        return None
    if unknown:
        raise ModelError(f"label map of {part.folder.path.name} targets labels {unknown} that the model lacks")
    return {int(k): int(v) for k, v in mapping.items()}


def _folder_name(path: Path) -> str:
    """'Dataset901_Phantom/nnUNetTrainer__nnUNetPlans__3d_fullres' for nnU-Net's usual layout."""
    path = path.resolve()
    if "__" in path.name and path.parent.name.startswith("Dataset"):
        return f"{path.parent.name}/{path.name}"
    return path.name


def _folder_version(folder: ModelFolder) -> str:
    return f"{folder.configuration}, folds {','.join(f.fold for f in folder.folds)}"
