"""Synthetic follow-up pairs with known answers: analytic organs and spherical lesions in RAS mm,
rendered on a grid at each time point, the follow-up moved by a known rigid transform.

A :class:`Scene` lists ellipsoids (label, centre, semi-axes, intensity) in baseline space; the
follow-up scene is rendered through ``moved`` (baseline RAS point -> follow-up RAS point), so the true
registration is known. Lesions are drawn after organs (carved out of them).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from volseg.io.nifti import write_nifti
from volseg.labels import LabelTable
from volseg.volume import Volume

NAMES = {1: "liver", 2: "spleen", 3: "kidney_left", 4: "kidney_right", 5: "body", 6: "liver_tumor",
         7: "lymph_node"}
HU = {0: -1000.0, 1: 60.0, 2: 45.0, 3: 150.0, 4: 150.0, 5: -20.0, 6: 110.0, 7: 30.0}


@dataclass(frozen=True)
class Blob:
    label: int
    centre_mm: tuple[float, float, float]
    axes_mm: tuple[float, float, float]


ORGANS = (
    Blob(5, (0.0, 0.0, 0.0), (58.0, 45.0, 60.0)),
    Blob(1, (-22.0, 5.0, 12.0), (24.0, 20.0, 20.0)),
    Blob(2, (28.0, 12.0, 14.0), (11.0, 13.0, 16.0)),
    Blob(3, (26.0, -18.0, -22.0), (9.0, 9.0, 15.0)),
    Blob(4, (-26.0, -18.0, -24.0), (9.0, 9.0, 15.0)),
)


def sphere(label: int, centre, radius: float) -> Blob:
    return Blob(label, tuple(float(c) for c in centre), (radius, radius, radius))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Scene:
    lesions: tuple[Blob, ...] = ()
    organs: tuple[Blob, ...] = ORGANS
    extra: dict = field(default_factory=dict)


def rigid(rotation_deg: float = 0.0, shift_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Baseline -> follow-up: rotate by ``rotation_deg`` about the S axis through the origin, then shift."""
    a = math.radians(rotation_deg)
    m = np.eye(4)
    m[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    m[:3, 3] = shift_mm
    return m


def grid(shape=(80, 80, 80), spacing=2.0, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A RAS affine whose grid is centred on ``centre``."""
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = np.asarray(centre) - spacing * (np.asarray(shape) - 1) / 2.0
    return affine


def render(scene: Scene, *, moved: np.ndarray | None = None, shape=(80, 80, 80), affine=None):
    """(label Volume, CT Volume) of ``scene`` seen through ``moved`` (identity: the baseline)."""
    affine = grid(shape) if affine is None else affine
    back = np.linalg.inv(np.eye(4) if moved is None else moved)
    ijk = np.indices(shape).reshape(3, -1).T.astype(np.float64)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    base = world @ back[:3, :3].T + back[:3, 3]  # each voxel's point in baseline space
    labels = np.zeros(len(base), dtype=np.uint8)
    for blob in (*scene.organs, *scene.lesions):
        inside = (((base - blob.centre_mm) / blob.axes_mm) ** 2).sum(axis=1) <= 1.0
        labels[inside] = blob.label
    labels = labels.reshape(shape)
    ct = np.vectorize(HU.get)(labels).astype(np.float32)
    return Volume(labels, affine), Volume(ct, affine)


def write_study(folder: Path, scene: Scene, *, moved=None, shape=(80, 80, 80), affine=None,
                names=None) -> tuple[Path, Path]:
    """A study output folder (segmentation.nii.gz, labels.json, report.json ...) made by volseg measure;
    returns (folder, image path). The image is written beside the folder, not recorded in the report."""
    from volseg import api

    labels, ct = render(scene, moved=moved, shape=shape, affine=affine)
    folder.mkdir(parents=True, exist_ok=True)
    seg = write_nifti(labels, folder / "segmentation.nii.gz")
    table = LabelTable.from_names(names or NAMES)
    (folder / "labels.json").write_text(table.to_json())
    image = write_nifti(ct, folder.parent / f"{folder.name}_ct.nii.gz")
    api.measure(seg, folder, image=image, labels=folder / "labels.json")
    return folder, image


def must_show_scenes() -> tuple[Scene, Scene]:
    """Baseline: lesions A (grows +30 % in diameter) and B (disappears); follow-up: A' and a new C."""
    a = sphere(6, (-24.0, 8.0, 14.0), 12.0)
    b = sphere(6, (-20.0, -12.0, -4.0), 7.0)
    c = sphere(6, (30.0, 12.0, 12.0), 6.0)
    return Scene(lesions=(a, b)), Scene(lesions=(replace(a, axes_mm=(15.6, 15.6, 15.6)), c))


def report_json(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())
