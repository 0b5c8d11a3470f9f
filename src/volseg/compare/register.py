"""Alignment of two time points in physical space, without assuming the same grid.

Rigid (Euler3D) then affine registration with SimpleITK, of the two images when both are known (Mattes
mutual information), else of the two label maps (mean squares). It starts from the least-squares rigid
fit of the centroids of the organs present at both times (else the image centres). The result is the
4×4 matrix mapping a baseline point (RAS mm) to the follow-up point, with its quality: the organs'
centroid residual and mean Dice after alignment. The stage that agrees best with the organs is kept
(an optimiser that wanders never makes the match worse than its start), and a poor result is flagged
with a warning, never used silently.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from volseg.compare.geometry import FLIP, apply, as_tuple, resample_labels, rigid_fit, rotation_deg
from volseg.compare.inputs import Timepoint
from volseg.compare.options import CompareOptions
from volseg.compare.results import Registration
from volseg.volume import Volume

log = logging.getLogger(__name__)
SHRINK = (4, 2, 1)  # multi-resolution levels
MAX_SAMPLES = 50_000  # metric samples per level
REGISTRATION_SPACING_MM = 2.0  # the finest level's spacing (finer images are resampled)


@dataclass(frozen=True)
class Candidate:
    name: str
    matrix: np.ndarray
    metric: float | None = None


@dataclass(frozen=True)
class Quality:
    residual_mm: float | None
    mean_dice: float | None


def organ_centroids(point: Timepoint, lesion_classes: Sequence[str]) -> dict[str, np.ndarray]:
    """Centroid (RAS mm) of every non-empty organ (not a lesion class) of the time point's report."""
    skip = set(lesion_classes)
    return {row.name: np.asarray(row.centroid_ras_mm) for row in point.report.structures
            if not row.empty and row.centroid_ras_mm is not None and row.name not in skip}


def register(before: Timepoint, after: Timepoint, *, options: CompareOptions,
             lesion_classes: Sequence[str] = ()) -> Registration:
    """The registration ``before`` → ``after`` (time points in order) and its quality."""
    a, b = organ_centroids(before, lesion_classes), organ_centroids(after, lesion_classes)
    shared = sorted(set(a) & set(b))
    on = _registered_on(before, after, options)
    if shared:
        start, init = rigid_fit(np.array([a[n] for n in shared]), np.array([b[n] for n in shared])), "organ_centroids"
    else:
        start, init = _centre_shift(before.labels, after.labels), "image_centres"
    if on == "none":
        start, init = np.eye(4), "identity"
    candidates = [Candidate("initial", start)]
    if on != "none":
        candidates += _optimise(before, after, start, on=on, iterations=options.iterations)
    organs = _organ_pairs(before, after, shared)
    scored = [(c, _quality(c.matrix, before, after, a, b, shared, organs)) for c in candidates]
    best, quality = _choose(scored)
    log.info("registration T%d→T%d: kept the %s stage (organ centroid residual %s mm, mean organ Dice %s)",
             before.ref.timepoint, after.ref.timepoint, best.name, _fmt(quality.residual_mm, 2),
             _fmt(quality.mean_dice, 3))
    warning = _warning(quality, shared, options)
    return Registration(
        from_timepoint=before.ref.timepoint, to_timepoint=after.ref.timepoint, matrix_ras_mm=as_tuple(best.matrix),
        method=_method(on, best.name), registered_on=on, initialisation=init, n_centroid_pairs=len(shared),
        metric_name=None if best.metric is None else ("Mattes mutual information" if on == "image" else "mean squares"),
        metric_value=best.metric, rotation_deg=rotation_deg(best.matrix),
        translation_mm=tuple(float(v) for v in best.matrix[:3, 3]),
        mean_organ_dice=quality.mean_dice, centroid_residual_mm=quality.residual_mm,
        quality="poor" if warning else "good", warning=warning,
    )


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _registered_on(before: Timepoint, after: Timepoint, options: CompareOptions) -> str:
    from volseg.errors import UsageError

    both = before.image is not None and after.image is not None
    if options.registration == "image" and not both:
        missing = before if before.image is None else after
        raise UsageError("--registration image needs both images; none is known for this study",
                         path=missing.ref.output_dir or missing.ref.label_map_path,
                         hint="give the images with --image, or use --registration label_map")
    if options.registration == "auto":
        return "image" if both else "label_map"
    return options.registration


def _centre_shift(before: Volume, after: Volume) -> np.ndarray:
    centre = [apply(v.affine, (np.asarray(v.shape) - 1) / 2.0) for v in (before, after)]
    matrix = np.eye(4)
    matrix[:3, 3] = centre[1] - centre[0]
    return matrix


def _organ_pairs(before: Timepoint, after: Timepoint, shared: Sequence[str]) -> list[tuple[int, int]]:
    ia, ib = ({n: i for i, n in p.table.names().items()} for p in (before, after))
    return [(ia[n], ib[n]) for n in shared if n in ia and n in ib]


def _quality(matrix, before, after, a, b, shared, organs) -> Quality:
    residual = None
    if shared:
        moved = apply(matrix, np.array([a[n] for n in shared]))
        residual = float(np.mean(np.linalg.norm(moved - np.array([b[n] for n in shared]), axis=1)))
    mean_dice = None
    if organs:
        lattice = quality_lattice(before.labels)
        mapped = resample_labels(after.labels, lattice, matrix)
        mean_dice = float(np.mean(organ_dice(lattice.array, mapped, organs)))
    return Quality(residual, mean_dice)


def quality_lattice(labels: Volume) -> Volume:
    """Every k-th voxel of ``labels`` along each axis, so that the lattice is about REGISTRATION_SPACING_MM
    apart: organ Dice estimated on it costs a fraction of the full grid's and differs little."""
    steps = [max(1, int(REGISTRATION_SPACING_MM // s)) for s in labels.spacing]
    if steps == [1, 1, 1]:
        return labels
    affine = labels.affine @ np.diag([*steps, 1.0])
    return Volume(np.ascontiguousarray(labels.array[::steps[0], ::steps[1], ::steps[2]]), affine)


def organ_dice(a: np.ndarray, b: np.ndarray, pairs: Sequence[tuple[int, int]]) -> list[float]:
    """Dice of label ``i`` of ``a`` with label ``j`` of ``b`` (same grid) for each pair, in one pass."""
    nb = int(np.max(b, initial=0)) + 1
    na = int(np.max(a, initial=0)) + 1
    joint = np.asarray(a, dtype=np.int32 if na * nb < 2**31 else np.int64) * nb + b
    table = np.bincount(joint.ravel(), minlength=na * nb).reshape(na, nb)
    size_a, size_b = table.sum(axis=1), table.sum(axis=0)
    out = []
    for i, j in pairs:
        both = table[i, j] if i < na and j < nb else 0
        total = (size_a[i] if i < na else 0) + (size_b[j] if j < nb else 0)
        out.append(1.0 if total == 0 else 2.0 * float(both) / float(total))
    return out


def _choose(scored: list[tuple[Candidate, Quality]]) -> tuple[Candidate, Quality]:
    """The last stage unless an earlier one agrees clearly better with the organs (Dice, else residual)."""
    best = scored[-1]
    for cand in scored[:-1]:
        q, qb = cand[1], best[1]
        if q.mean_dice is not None and qb.mean_dice is not None:
            if q.mean_dice > qb.mean_dice + 0.01:
                best = cand
        elif q.residual_mm is not None and qb.residual_mm is not None and q.residual_mm + 1.0 < qb.residual_mm:
            best = cand
    return best


def _warning(quality: Quality, shared: Sequence[str], options: CompareOptions) -> str | None:
    if not shared:
        return "registration unverified: no organ is segmented at both times, so its quality cannot be checked"
    problems = []
    if quality.residual_mm is not None and quality.residual_mm > options.poor_residual_mm:
        problems.append(f"organ centroids {quality.residual_mm:.1f} mm apart after alignment "
                        f"(limit {options.poor_residual_mm:g} mm)")
    if quality.mean_dice is not None and quality.mean_dice < options.poor_dice:
        problems.append(f"mean organ Dice {quality.mean_dice:.2f} after alignment (limit {options.poor_dice:g})")
    if not problems:
        return None
    return "poor registration: " + "; ".join(problems) + ": lesion matches across this interval may be wrong"


def _method(on: str, stage: str) -> str:
    if on == "none":
        return "none (same physical space assumed)"
    kept = {"initial": "organ-centroid rigid fit only (the optimised stages agreed less with the organs)",
            "rigid": "rigid (Euler3D)", "affine": "rigid (Euler3D) + affine"}[stage]
    return f"{kept}, on the {'images' if on == 'image' else 'label maps'}"


def _optimise(before: Timepoint, after: Timepoint, start: np.ndarray, *, on: str,
              iterations: int) -> list[Candidate]:
    """The rigid, then affine stage; a stage that fails is logged and left out."""
    import SimpleITK as sitk

    fixed, moving = _sitk_pair(before, after, on)
    found: list[Candidate] = []
    try:
        rigid = sitk.Euler3DTransform()
        rigid.SetCenter(tuple(float(v) for v in apply(FLIP, _centre(before.labels))))
        _set_linear(rigid, FLIP @ start @ FLIP)
        out, metric = _run(sitk, fixed, moving, rigid, on=on, iterations=iterations)
        found.append(Candidate("rigid", FLIP @ _to_matrix(out) @ FLIP, metric))
        affine = sitk.AffineTransform(3)
        affine.SetCenter(rigid.GetCenter())
        _set_linear(affine, _to_matrix(out))
        out, metric = _run(sitk, fixed, moving, affine, on=on, iterations=iterations)
        found.append(Candidate("affine", FLIP @ _to_matrix(out) @ FLIP, metric))
    except RuntimeError as exc:  # an ITK failure: keep what converged
        log.warning("registration stage failed: %s", " ".join(str(exc).split())[:200])
    return found


def _centre(volume: Volume) -> np.ndarray:
    return apply(volume.affine, (np.asarray(volume.shape) - 1) / 2.0)


def _set_linear(transform, matrix_lps: np.ndarray) -> None:
    """Set ``transform`` (with its centre already set) to the 4×4 LPS ``matrix_lps``."""
    linear, offset = matrix_lps[:3, :3], matrix_lps[:3, 3]
    centre = np.asarray(transform.GetCenter())
    transform.SetMatrix(tuple(float(v) for v in linear.ravel()))
    transform.SetTranslation(tuple(float(v) for v in offset - centre + linear @ centre))


def _to_matrix(transform) -> np.ndarray:
    """4×4 LPS matrix of an Euler3D/affine transform: x → A (x - c) + c + t."""
    linear = np.asarray(transform.GetMatrix(), dtype=np.float64).reshape(3, 3)
    centre = np.asarray(transform.GetCenter())
    matrix = np.eye(4)
    matrix[:3, :3] = linear
    matrix[:3, 3] = np.asarray(transform.GetTranslation()) + centre - linear @ centre
    return matrix


def _sitk_pair(before: Timepoint, after: Timepoint, on: str):
    if on == "image" and before.image is not None and after.image is not None:
        return _to_sitk(before.image.volume), _to_sitk(after.image.volume)
    return _to_sitk(before.labels), _to_sitk(after.labels)


def _to_sitk(volume: Volume):
    """The volume as a float SimpleITK image, resampled to REGISTRATION_SPACING_MM along the axes where it
    is finer (Gaussian-smoothed first): the registration's finest level. Label maps are treated the same
    (label values as intensities, compared by mean squares)."""
    import SimpleITK as sitk

    from volseg.io.itk import itk_geometry

    array = np.nan_to_num(np.asarray(volume.array, dtype=np.float32))
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    direction, spacing, origin = itk_geometry(volume.affine)
    image.SetDirection(direction)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    coarse = [max(s, REGISTRATION_SPACING_MM) for s in spacing]
    if np.allclose(coarse, spacing):
        return image
    size = [max(1, int(round(n * s / c))) for n, s, c in zip(image.GetSize(), spacing, coarse)]
    # the new grid covers the same extent: its first voxel centre moves by half the size change
    shift = [(c - s) / 2.0 for s, c in zip(spacing, coarse)]
    start = image.TransformContinuousIndexToPhysicalPoint([v / s for v, s in zip(shift, spacing)])
    variances = [max(0.0, c * c - s * s) / 4.0 for s, c in zip(spacing, coarse)]  # sigma: half the gap, mm
    image = sitk.DiscreteGaussian(image, variances, 32, 0.01, True)
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, start, coarse, direction, 0.0,
                         sitk.sitkFloat32)


def _run(sitk, fixed, moving, transform, *, on: str, iterations: int):
    """One multi-resolution stage; returns the optimised transform (in place) and the final metric."""
    reg = sitk.ImageRegistrationMethod()
    if on == "image":
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    else:
        reg.SetMetricAsMeanSquares()
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    n = float(np.prod(fixed.GetSize()))
    # about MAX_SAMPLES points per level (10 % at most): full-size CTs cost what small ones do
    reg.SetMetricSamplingPercentagePerLevel([min(0.1, MAX_SAMPLES * f ** 3 / n) for f in SHRINK], 20261207)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-3, numberOfIterations=iterations,
                                                 relaxationFactor=0.5, gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(SHRINK))
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(transform, inPlace=True)
    reg.Execute(fixed, moving)
    return transform, float(reg.GetMetricValue())
