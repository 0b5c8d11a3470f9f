"""BLAST-CT v1: traumatic-brain-injury lesions on head CT, an ensemble of 12 DeepMedic networks.

The pipeline follows the publisher's code (biomedia-mira/blast-ct: ``nifti/rescale.py``,
``nifti/datasets.py``, ``nifti/patch_samplers.py``, ``nifti/savers.py``, ``trainer/inference.py``):

1. reorient to the ITK "standard" direction (identity in LPS; volseg code ``LPS``) — axes permuted
   and flipped only, no interpolation — on the publisher's grid: its ``reorient_image`` places the
   origin of a flipped axis ``n·spacing`` (not ``(n − 1)·spacing``) away, so along each flipped axis
   its reoriented image starts one voxel beyond the input's last voxel (a slab of the image minimum
   there) and stops one voxel short of its first (:func:`publisher_grid`); the labels come back to the
   input by position, and the input voxel beyond the model grid's end gets 0 (measured against
   ``blast-ct`` 2.1.0 on a LAS head CT: `benchmarks/parity/blast.py`);
2. resample to 1 mm with SimpleITK's linear interpolator on a grid sharing the first voxel centre
   (``round((n − 1)·spacing + 1)`` voxels per axis; points outside take the image minimum);
3. the network sees SimpleITK's array order (z, y, x), windowed [−15, 100] HU → [−1, 1];
4. 110³ input windows predict 30³ output tiles laid edge to edge from the first voxel, the volume
   padded with its edge values (:mod:`volseg.segmenters.engine.valid_windows`);
5. the softmax of every ensemble member is summed, argmax gives the class; ``--members N`` runs the
   first N members only (the engine override ``members``), one member over every window at a time
   (progress per member; windows ``window_batch`` at a time);
6. labels return to the input grid by nearest neighbour (SimpleITK ``Resample`` of the label map:
   input voxels beyond the model grid's end take 0).

Windows that see nothing but air (−1 after windowing) are predicted once and reused (exact).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from volseg.errors import ModelError
from volseg.segmenters.backend_options import BlastCTOptions
from volseg.segmenters.base import ProgressCallback, check_on_grid, no_progress
from volseg.segmenters.engine_settings import (
    ALL_SETTINGS,
    ENSEMBLE,
    engine_settings,
    first_members,
    refuse_unsupported,
)
from volseg.segmenters.provenance import ModelProvenance
from volseg.volume import Volume, orientation_transform, reorient, undo_reorient

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry
    from volseg.segmenters.engine.settings import EngineOverrides

__all__ = ["BlastCTOptions", "BlastCTSegmenter", "load"]

log = logging.getLogger(__name__)

ORIENTATION = "LPS"  # SimpleITK identity direction: i → left, j → posterior, k → superior


#: valid windows are laid edge to edge, never mirrored, and labels return by nearest neighbour (as
#: the publisher's code does): --step, --tta and --export are refused, not ignored; --members is honoured
SUPPORTED = (ALL_SETTINGS - {"step", "mirror", "export", "blend", "skip_air"}) | ENSEMBLE


def load(entry: ModelEntry, *, device: str = "auto", models: Sequence[str] | None = None,
         settings=None, engine: EngineOverrides | None = None) -> BlastCTSegmenter:
    """Factory for the catalogue entry; ``models`` picks ensemble members (default: all of them), of
    which ``engine.members`` keeps the first N."""
    from volseg.segmenters.weights import require_installed

    refuse_unsupported(engine, supported=SUPPORTED, model=entry.name)  # before any weights load
    options = entry.backend_options
    if not isinstance(options, BlastCTOptions):
        raise ModelError(f"model {entry.name!r} is not a BLAST-CT model (backend {entry.backend!r})")
    if options.architecture != "DeepMedic":
        raise ModelError(f"BLAST-CT backend builds DeepMedic, not {options.architecture!r}")
    names = tuple(models) if models else options.ensemble
    unknown = sorted(set(names) - set(options.ensemble))
    if unknown:
        raise ModelError(f"{entry.name}: unknown ensemble member(s) {unknown}",
                         hint=f"members: {', '.join(options.ensemble)}")
    first_members(names, engine.members if engine else None, model=entry.name, kind="ensemble networks")
    folder = require_installed(entry.name)
    return BlastCTSegmenter([folder / n for n in names], entry=entry, options=options, device=device,
                            settings=settings, engine=engine)


class MemberPredictor:
    """Windows → one member's softmax (B, K, *tile)."""

    def __init__(self, net):
        self.net = net

    def __call__(self, x):
        import torch

        return torch.softmax(self.net(x).float(), dim=1)


class EnsemblePredictor:
    """Windows → the sum of every member's softmax (B, K, *tile), member after member per window."""

    def __init__(self, nets: list):
        self.nets = nets

    def __call__(self, x):
        import torch

        total = None
        for net in self.nets:
            probs = torch.softmax(net(x).float(), dim=1)
            total = probs if total is None else total.add_(probs)
        return total


class BlastCTSegmenter:
    """The loaded ensemble (weights on the device once), predicting many head CTs."""

    def __init__(self, weights: list[Path], *, entry: ModelEntry, options: BlastCTOptions, device: str = "auto",
                 settings=None, engine: EngineOverrides | None = None):
        from volseg.segmenters.device import resolve_device
        from volseg.segmenters.weights import weight_records

        self.name, self.version, self.labels = entry.name, entry.version, entry.label_table()
        self.entry, self.options = entry, options
        self.device = resolve_device(device)
        # given ``settings`` replace the catalogue's (tests); on CUDA the publisher's GPU batch
        self.settings = engine_settings(None if settings is not None else entry, engine, supported=SUPPORTED,
                                        base=settings, device_type=self.device.type, model=entry.name)
        sw = entry.sliding_window
        self.window = tuple(sw.patch_size) if sw is not None and sw.patch_size else (110, 110, 110)
        self.weights = first_members(list(weights), self.settings.members, model=entry.name,
                                     kind="ensemble networks")
        self.weight_records = weight_records(self.weights)
        self.nets = [self._load_net(path) for path in self.weights]
        self.tile = tuple(self.nets[0].output_size(w) for w in self.window)
        self.margin = tuple(self.nets[0].margin(t) for t in self.tile)
        self._last: dict[str, Any] = {}

    def _load_net(self, path: Path):
        import torch

        from volseg.segmenters.nets.deepmedic import DeepMedic

        o = self.options
        net = DeepMedic(o.input_channels, o.num_classes, scale_factors=o.scale_factors,
                        feature_maps=o.feature_maps, fully_connected=o.fully_connected)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except (RuntimeError, OSError, ValueError) as exc:
            raise ModelError(f"cannot load BLAST-CT weights: {str(exc).splitlines()[0]}", path=path) from exc
        net.eval().to(self.device)
        if self.settings.channels_last:
            net = net.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]  # Module.to takes it; torch's overloads omit it
        return net

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback = no_progress) -> Volume:
        t0 = time.perf_counter()
        work, x, spacing = self.model_input(volume, progress=progress)
        t1 = time.perf_counter()
        blend, keep, info = self.run_members(x, progress=progress)
        del x
        t2 = time.perf_counter()
        progress("export", 0, 1)
        model_labels, out = self.labels_on_input(blend, keep, work, volume, spacing)
        progress("export", 1, 1)
        self._last = {**info, "model_grid_shape": list(model_labels.shape),
                      "timings_s": {"preprocess": t1 - t0, "sliding_window": t2 - t1,
                                    "network_forward": blend.forward_s,
                                    "export": time.perf_counter() - t2}}
        return check_on_grid(out, volume, self.name)

    def model_input(self, volume: Volume, *, progress: ProgressCallback = no_progress):
        """(reoriented volume, windowed model-grid tensor (1, k, j, i), model spacing)."""
        import torch

        from volseg.segmenters.engine.preprocess import window_normalize

        progress("preprocessing", 0, 1)
        work = publisher_grid(volume)
        spacing = tuple(float(s) for s in (self.entry.input.spacing_mm or (1.0, 1.0, 1.0)))
        zyx = resample_linear_itk(work.array, work.spacing, spacing)  # (k, j, i) on the model grid
        x = torch.from_numpy(zyx).to(self.device)[None]
        lower, upper = self.entry.input.intensity.window or (-15.0, 100.0)
        window_normalize(x, lower=lower, upper=upper, out_lower=self._air, out_upper=self._top)
        progress("preprocessing", 1, 1)
        return work, x, spacing

    @property
    def _air(self) -> float:
        return float((self.entry.input.intensity.output_range or (-1.0, 1.0))[0])

    @property
    def _top(self) -> float:
        return float((self.entry.input.intensity.output_range or (-1.0, 1.0))[1])

    def run_members(self, x, *, progress: ProgressCallback = no_progress):
        """Every member over every window, one member at a time; their softmaxes summed in member
        order (the same sums as member after member per window). Returns (blend, keep, details)."""
        from dataclasses import replace

        from volseg.segmenters.engine.valid_windows import run_valid_windows

        total, forward, skipped, fallbacks, member_s = None, 0.0, 0, [], []
        for k, net in enumerate(self.nets):
            stage = progress if len(self.nets) == 1 else \
                (lambda s, d, t, k=k: progress(f"member {k + 1}/{len(self.nets)}: {s}", d, t))
            run = run_valid_windows(x, MemberPredictor(net), channels=self.options.num_classes, tile=self.tile,
                                    margin=self.margin, settings=self.settings, constant=self._air,
                                    progress=stage)
            total = run.blend if total is None else replace(total, sums=total.sums.add_(run.blend.sums))
            forward += run.blend.forward_s
            member_s.append(round(run.blend.forward_s, 3))
            skipped += run.skipped
            fallbacks += [f for f in run.fallbacks if f not in fallbacks]
        if total is None:
            raise ModelError("BLAST-CT has no ensemble member to run")
        blend = replace(total, forward_s=forward)
        info = {"windows": blend.windows, "windows_reused": skipped, "precision": run.precision,
                "window_batch": run.window_batch, "fallbacks": fallbacks,
                "members": [p.name for p in self.weights], "member_forward_s": member_s}
        return blend, run.keep, info

    def labels_on_input(self, blend, keep, work: Volume, volume: Volume, spacing) -> tuple[np.ndarray, Volume]:
        """(labels on the model grid (i, j, k), labels on ``volume``'s grid) from the summed softmax."""
        import torch

        from volseg.segmenters.engine.export import LabelDecoder, model_grid_codes

        codes = model_grid_codes(blend, keep, LabelDecoder(tuple(range(self.options.num_classes))))
        model_labels = codes.to(torch.uint8).cpu().numpy().transpose(2, 1, 0)  # back to (i, j, k)
        _, flips = orientation_transform(volume, ORIENTATION)
        on_input = nearest_labels(model_labels, work.shape, work.spacing, spacing, offset=flips)
        return model_labels, undo_reorient(on_input, volume, ORIENTATION)

    def provenance(self) -> ModelProvenance:
        from volseg.segmenters.device import describe_device
        return ModelProvenance(name=self.name, version=self.version, backend="blast_ct",
                               device=describe_device(self.device), weights=tuple(self.weight_records),
                               settings=self.settings.as_dict(),
                               details={"ensemble_size": len(self.weights), "window": list(self.window),
                                        "tile": list(self.tile), "orientation": ORIENTATION, **self._last},
                               layout=("model", "version", "backend", "weights", "ensemble_size", "device",
                                       "settings"))


def resample_linear_itk(array: np.ndarray, spacing: Sequence[float], target: Sequence[float]) -> np.ndarray:
    """``array`` (i, j, k) resampled to ``target`` spacing as BLAST-CT does; returns (k, j, i) float32.

    SimpleITK linear interpolation on a grid with the same first voxel centre and
    ``round((n − 1)·spacing / target + 1)`` voxels; outside points take the image minimum.
    """
    import SimpleITK as sitk

    data = np.ascontiguousarray(np.asarray(array, dtype=np.float32).transpose(2, 1, 0))
    if all(abs(s - t) < 1e-6 for s, t in zip(spacing, target)):
        return data
    image = sitk.GetImageFromArray(data)
    image.SetSpacing([float(s) for s in spacing])
    size = [round((n - 1) * s / t + 1) for n, s, t in zip(array.shape, spacing, target)]
    reference = sitk.Image(size, image.GetPixelID())
    reference.SetSpacing([float(t) for t in target])
    out = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, float(data.min()))
    return sitk.GetArrayFromImage(out)


def publisher_grid(volume: Volume) -> Volume:
    """``reorient(volume, "LPS")`` on BLAST-CT's grid: along each flipped axis, one voxel further.

    ``rescale.create_reference_reoriented_image`` puts the origin of a flipped axis at
    ``origin + direction·(n·spacing)``, one voxel beyond the input's last voxel centre, and
    ``reorient_image`` resamples the input there (linear, points outside taking the image minimum):
    voxel ``i`` of its result holds flipped voxel ``i − 1``, voxel 0 the minimum. The voxels keep their
    positions (the affine moves by one voxel too); only the grid that the 1 mm resampling starts from
    differs from a plain flip."""
    _, flips = orientation_transform(volume, ORIENTATION)
    work = reorient(volume, ORIENTATION)
    if not any(flips):
        return work
    array = np.asarray(work.array)
    shifted = np.full_like(array, array.min())
    shifted[tuple(slice(1, None) if f else slice(None) for f in flips)] = \
        array[tuple(slice(0, -1) if f else slice(None) for f in flips)]
    affine = work.affine.copy()
    for axis, flip in enumerate(flips):
        if flip:
            affine[:3, 3] -= affine[:3, axis]
    return Volume(shifted, affine, work.meta)


def nearest_labels(labels: np.ndarray, shape: Sequence[int], spacing: Sequence[float],
                   model_spacing: Sequence[float], *, offset: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """Labels (i, j, k) on the model grid sampled at the input voxels, as SimpleITK's nearest-neighbour
    ``Resample`` samples them: input voxel ``v`` lies at ``(v + offset)·spacing`` from the model grid's
    first voxel centre; one beyond the model grid (more than half a model voxel past its ends) takes 0."""
    index = []
    for n, s, t, m, o in zip(shape, spacing, model_spacing, labels.shape, offset):
        position = (np.arange(n) + int(o)) * (float(s) / float(t))
        index.append(np.floor(position + 0.5).astype(np.int64))
    inside = [(i >= 0) & (i < m) for i, m in zip(index, labels.shape)]
    out = labels[np.ix_(*[np.clip(i, 0, m - 1) for i, m in zip(index, labels.shape)])]
    if not all(v.all() for v in inside):
        a, b, c = inside
        out = np.where(a[:, None, None] & b[None, :, None] & c[None, None, :], out, 0).astype(labels.dtype)
    return out
