"""A synthetic chest/abdomen CT phantom with known structures, defined in patient millimetres.

The phantom is analytic (ellipses, ellipsoids, tubes in RAS mm) and rasterised at voxel centres on
any grid, so the same anatomy can be drawn at any spacing and orientation. ``make_phantom`` returns
the CT (HU) and the true label map on the same grid; the true volumes are exact voxel counts times
the voxel volume. It is what ``volseg demo`` segments, and the known answer of many tests.

Classes follow the built-in ``classic-ct`` model: body (remaining body tissue), lung_left,
lung_right, airways, bone, subcutaneous_fat, torso_fat. The table under the patient is never body.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from volseg.labels import LabelTable
from volseg.volume import Volume

PHANTOM_CLASSES = {
    1: "body", 2: "lung_left", 3: "lung_right", 4: "airways", 5: "bone",
    6: "subcutaneous_fat", 7: "torso_fat",
}
_LPS_AXES = {"L": (0, 1.0), "R": (0, -1.0), "P": (1, 1.0), "A": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


@dataclass(frozen=True)
class Phantom:
    image: Volume  # HU, int16
    truth: Volume  # labels, uint8, classes PHANTOM_CLASSES
    labels: LabelTable

    def true_volumes_ml(self) -> dict[str, float]:
        counts = np.bincount(self.truth.array.ravel(), minlength=len(PHANTOM_CLASSES) + 1)
        ml = self.truth.voxel_volume_mm3 / 1000.0
        return {name: float(counts[i]) * ml for i, name in PHANTOM_CLASSES.items()}


def phantom_grid(shape=(200, 160, 96), spacing=(1.75, 1.75, 2.5), orientation: str = "LPS",
                 rotation_deg: float = 0.0) -> np.ndarray:
    """RAS affine of a grid centred on the phantom, axes along ``orientation`` (e.g. 'LPS').

    ``rotation_deg`` turns the grid about the superior axis (an oblique acquisition).
    """
    ras_axes = np.zeros((3, 3))
    for col, letter in enumerate(orientation.upper()):
        lps_axis, sign = _LPS_AXES[letter]
        direction_lps = np.zeros(3)
        direction_lps[lps_axis] = sign
        ras_axes[:, col] = direction_lps * np.array([-1.0, -1.0, 1.0])
    t = np.radians(rotation_deg)
    rot = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ ras_axes @ np.diag(spacing)
    centre_index = (np.asarray(shape) - 1) / 2.0
    affine[:3, 3] = -affine[:3, :3] @ centre_index
    return affine


def make_phantom(shape=(200, 160, 96), spacing=(1.75, 1.75, 2.5), *, orientation: str = "LPS",
                 rotation_deg: float = 0.0, noise_hu: float = 12.0, blur_mm: float = 1.0,
                 seed: int = 0) -> Phantom:
    """Rasterise the phantom on a grid of ``shape`` and ``spacing`` (mm) along ``orientation``."""
    affine = phantom_grid(shape, spacing, orientation, rotation_deg)
    idx = np.indices(shape, dtype=np.float32).reshape(3, -1)
    xyz = (affine[:3, :3].astype(np.float32) @ idx) + affine[:3, 3:4].astype(np.float32)
    x, y, z = (c.reshape(shape) for c in xyz)
    hu = np.full(shape, -1000.0, dtype=np.float32)
    truth = np.zeros(shape, dtype=np.uint8)

    def paint(mask: np.ndarray, value: float, label: int) -> None:
        hu[mask] = value
        truth[mask] = label

    _paint_outside(paint, x, y, z)
    _paint_trunk(paint, x, y, z)
    _paint_lungs(paint, x, y, z)
    _paint_airways(paint, x, y, z)
    _paint_bones(paint, x, y, z)

    # partial-volume blur (the scanner's point-spread, ~1 mm), then quantum noise
    hu = ndimage.gaussian_filter(hu, sigma=[blur_mm / s for s in spacing])
    rng = np.random.default_rng(seed)
    hu += rng.normal(0.0, noise_hu, size=shape).astype(np.float32)
    image = Volume(np.clip(np.round(hu), -1024, 3071).astype(np.int16), affine, {"modality": "CT"})
    return Phantom(image=image, truth=image.with_array(truth), labels=LabelTable.from_names(PHANTOM_CLASSES))


def _paint_outside(paint, x, y, z) -> None:
    """The table, the foam mattress on it and a blanket on the chest: never body."""
    paint((np.abs(x) < 190) & (y > -134) & (y < -124), 300.0, 0)           # table top
    paint((np.abs(x) < 170) & (y >= -124) & (y < -100), -850.0, 0)         # foam mattress
    paint(_ellipse(x, y, 154, 114) & (y > 30), -450.0, 0)                  # folded blanket


def _paint_trunk(paint, x, y, z) -> None:
    paint(_ellipse(x, y, 150, 110), 20.0, 1)            # skin (2 mm)
    paint(_ellipse(x, y, 148, 108), -100.0, 6)          # subcutaneous fat
    paint(_ellipse(x, y, 136, 96), 50.0, 1)             # muscle wall
    paint(_ellipse(x, y, 126, 86), 40.0, 1)             # viscera, mediastinum
    paint(_ellipsoid(x, y, z, (60, 10, -65), (70, 50, 45)), 60.0, 1)    # liver
    paint(_ellipsoid(x, y, z, (-45, 35, -75), (40, 25, 30)), -100.0, 7)  # visceral fat


def _paint_lungs(paint, x, y, z) -> None:
    """Two lungs whose thin anterior edges touch at the midline (the anterior junction line)."""
    for side, label in ((-1.0, 2), (1.0, 3)):  # RAS: x < 0 is the patient's left
        half = side * x >= 0
        lung = _ellipsoid(x, y, z, (side * 68, 0, 45), (48, 62, 62))
        lung |= _ellipsoid(x, y, z, (side * 30, 35, 45), (32, 12, 35)) & half
        paint(lung, -850.0, label)
        for end in ((90, 20, 70), (85, -30, 20), (75, 30, 15), (95, -10, 60)):  # vessels, still lung
            vessel = _tube(x, y, z, np.array([side * 45, 2.0, 45.0]), np.array([side * end[0], end[1], end[2]]), 2.5)
            paint(vessel & lung, 40.0, label)


def _paint_airways(paint, x, y, z) -> None:
    """Trachea, main bronchi and upper/lower lobar bronchi: lumen (airways) inside a wall (body)."""
    carina = np.array([0.0, 20.0, 75.0])
    branches = []
    for side in (-1.0, 1.0):
        main_end = np.array([side * 48.0, 8.0, 52.0])
        branches.append((carina, main_end, 5.5, 2.0))
        branches.append((main_end, np.array([side * 62.0, 12.0, 85.0]), 3.5, 1.5))   # upper lobe
        branches.append((main_end, np.array([side * 66.0, -5.0, 15.0]), 3.5, 1.5))   # lower lobe
    for start, end, lumen, wall in branches:
        paint(_tube(x, y, z, start, end, lumen + wall), 40.0, 1)
    for start, end, lumen, wall in branches:
        paint(_tube(x, y, z, start, end, lumen), -1000.0, 4)
    paint((_ellipse(x - 0.0, y - 20.0, 11.0, 11.0)) & (z >= 75.0), 40.0, 1)  # tracheal wall
    paint((_ellipse(x - 0.0, y - 20.0, 9.0, 9.0)) & (z >= 75.0), -1000.0, 4)  # trachea


def _paint_bones(paint, x, y, z) -> None:
    paint(_ellipse(x, y + 70.0, 18.0, 16.0), 700.0, 5)   # vertebral column, cortical shell
    paint(_ellipse(x, y + 70.0, 12.0, 10.0), 300.0, 5)   # cancellous bone (still above bone HU)
    for z0 in (-20.0, 10.0, 40.0, 70.0):                  # ribs in the wall, back and sides
        rib = _rib(x, y, z, z0, radius=4.5)
        paint(rib, 800.0, 5)
        paint(_rib(x, y, z, z0, radius=2.5), 250.0, 5)


def _rib(x, y, z, z0, *, radius):
    """Voxels within ``radius`` mm of an elliptical arc in the muscle wall at height ``z0``."""
    a, b = 131.0, 91.0
    band = (np.abs(z - z0) <= radius) & (y < 40.0)
    rho = np.sqrt((x / a) ** 2 + (y / b) ** 2)
    r_local = np.hypot(x, y) / np.maximum(rho, 1e-6)
    return band & (np.hypot((rho - 1.0) * r_local * 0.9, z - z0) <= radius)


def _ellipse(x, y, a, b):
    return (x / a) ** 2 + (y / b) ** 2 <= 1.0


def _ellipsoid(x, y, z, centre, semi):
    return (((x - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2
            + ((z - centre[2]) / semi[2]) ** 2) <= 1.0


def _tube(x, y, z, start, end, radius):
    """Voxels within ``radius`` mm of the segment start→end."""
    axis = end - start
    length2 = float(axis @ axis)
    t = ((x - start[0]) * axis[0] + (y - start[1]) * axis[1] + (z - start[2]) * axis[2]) / length2
    t = np.clip(t, 0.0, 1.0)
    dx, dy, dz = x - (start[0] + t * axis[0]), y - (start[1] + t * axis[1]), z - (start[2] + t * axis[2])
    return dx * dx + dy * dy + dz * dz <= radius * radius
