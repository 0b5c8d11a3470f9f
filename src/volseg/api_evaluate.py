"""``api.evaluate``: score label maps against reference label maps (files, or folders of studies).

Folders are matched study by study: a reference ``REL/segmentation.nii.gz`` (a volseg output
folder) or ``REL.<ext>`` (a plain label map) pairs with the prediction's ``REL/segmentation.nii.gz``
or ``REL.<ext>``, whichever exists. When the reference folder holds any ``segmentation.nii.gz``,
only those are references; otherwise every label-map file (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd).
Names come from ``labels`` when given, else from a labels file beside each map
(``labels.json`` in its folder, or ``<name>.json``).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from volseg.errors import GeometryError, InputError, UsageError

log = logging.getLogger(__name__)
STUDY_FILE = "segmentation.nii.gz"
_MAP_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass(frozen=True)
class StudyScores:
    study_id: str
    scores: list = field(default_factory=list)  # StructureScore, one per structure


@dataclass(frozen=True)
class EvaluationResult:
    studies: list[StudyScores]
    outputs: dict[str, Path]
    notes: list[str] = field(default_factory=list)


def evaluate(pred: str | Path, ref: str | Path, out_dir: str | Path, *, labels: str | Path | None = None,
             instances: Sequence[str] | None = None, min_overlap: float = 0.1) -> EvaluationResult:
    """Write evaluation.csv and evaluation.html comparing ``pred`` with ``ref`` (files or folders)."""
    from volseg.io.atomic import ensure_writable_dir
    from volseg.reports.evaluation import evaluation_rows, write_evaluation_csv, write_evaluation_html

    if not 0.0 < min_overlap <= 1.0:
        raise UsageError(f"--min-overlap must be in (0, 1], got {min_overlap}")
    pairs, notes = pair_studies(Path(pred), Path(ref))
    if not pairs:
        raise InputError("no study of the reference has a matching prediction", path=pred)
    ensure_writable_dir(out_dir)
    studies, rows = [], []
    for study_id, p, r in pairs:
        scores = score_study(p, r, labels=labels, instances=instances, min_overlap=min_overlap)
        studies.append(StudyScores(study_id, scores))
        rows.extend(evaluation_rows(study_id, scores))
        log.info("evaluated %s: %d structures", study_id, len(scores))
    out = Path(out_dir)
    outputs = {"csv": write_evaluation_csv(rows, out / "evaluation.csv"),
               "html": write_evaluation_html(rows, out / "evaluation.html", notes=notes)}
    return EvaluationResult(studies, outputs, notes)


def score_study(pred: Path, ref: Path, *, labels=None, instances=None, min_overlap: float = 0.1) -> list:
    """Scores of one predicted label map against its reference (same physical grid required)."""
    import numpy as np

    from volseg.postprocess.evaluate_maps import pair_structures, score_maps

    p_vol, r_vol = _label_volume(pred), _label_volume(ref)
    if p_vol.shape != r_vol.shape or not np.allclose(p_vol.affine, r_vol.affine, rtol=0.0, atol=1e-2):
        raise GeometryError(
            f"not the same physical grid as the reference {ref.name}: shape {p_vol.shape} vs {r_vol.shape}, "
            f"spacing {_fmt(p_vol.spacing)} vs {_fmt(r_vol.spacing)} mm, origin {_fmt(p_vol.origin)} vs "
            f"{_fmt(r_vol.origin)} mm", path=pred)
    p_names, r_names = (_names(labels, path) for path in (pred, ref))
    present = [[int(v) for v in np.unique(v.array) if v != 0] for v in (p_vol, r_vol)]
    structures = pair_structures(p_names, r_names, *present)
    if instances is not None:
        known = {s.name for s in structures}
        for name in instances:
            if name not in known:
                from volseg.errors import unknown_choice_hint

                raise UsageError(f"no class {name!r} in the labels of {ref.name}",
                                 hint=unknown_choice_hint(name, known))
    return score_maps(np.asarray(p_vol.array), np.asarray(r_vol.array), r_vol.affine, structures,
                      lesion_classes=instances, min_overlap=min_overlap)


def pair_studies(pred: Path, ref: Path) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """(study id, prediction, reference) triples, and notes on references left without a prediction."""
    from volseg.io import study_name

    for path in (pred, ref):
        if not path.exists():
            raise InputError("no such file or folder", path=path)
    if pred.is_file() and ref.is_file():
        return [(study_name(ref), pred, ref)], []
    if pred.is_file() != ref.is_file():
        raise UsageError("give two label-map files or two folders of studies",
                         hint=f"{pred.name} is a {'file' if pred.is_file() else 'folder'}, "
                              f"{ref.name} a {'file' if ref.is_file() else 'folder'}")
    pairs, notes = [], []
    for reference in _reference_maps(ref):
        rel = reference.parent.relative_to(ref) if reference.name == STUDY_FILE else reference.relative_to(ref)
        stem = rel if reference.name == STUDY_FILE else rel.parent / _stem(rel.name)
        study_id = stem.as_posix() if stem.as_posix() != "." else study_name(ref)
        candidates = [pred / stem / STUDY_FILE] + [pred / stem.parent / (stem.name + s) for s in _MAP_SUFFIXES]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            notes.append(f"{study_id}: no prediction found")
            continue
        pairs.append((study_id, found, reference))
    return pairs, notes


def _reference_maps(folder: Path) -> list[Path]:
    studies = sorted(folder.rglob(STUDY_FILE))
    if studies:
        return studies
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(_MAP_SUFFIXES))


def _stem(name: str) -> str:
    for suffix in _MAP_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _names(labels, path: Path) -> dict[int, str] | None:
    from volseg.labels import read_labels

    if labels is not None:
        return read_labels(labels).names()
    beside = path.parent / "labels.json" if path.name == STUDY_FILE else path.parent / (_stem(path.name) + ".json")
    for candidate in (beside, path.parent / "labels.json"):
        if candidate.is_file():
            return read_labels(candidate).names()
    return None


def _label_volume(path: Path):
    from volseg.io import read_image
    from volseg.io.masks import as_label_volume

    return as_label_volume(read_image(path).volume, path)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"
