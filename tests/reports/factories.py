"""Studies with known answers for the report tests (synthetic, small, deterministic)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from volseg.io.nifti import write_nifti
from volseg.labels import LabelInfo, LabelTable
from volseg.phantom import make_phantom, phantom_grid
from volseg.volume import Volume

SMALL_SHAPE = (100, 80, 48)
SMALL_SPACING = (3.5, 3.5, 5.0)  # the phantom's field of view at a coarse, fast resolution


def small_phantom(seed: int = 0, scale: float = 1.0):
    """The CT phantom on a coarse grid; ``scale`` stretches the grid spacing (smaller anatomy in voxels)."""
    spacing = tuple(s * scale for s in SMALL_SPACING)
    return make_phantom(SMALL_SHAPE, spacing, seed=seed)


def phantom_study(out: Path, *, seed: int = 0, scale: float = 1.0, name: str = "phantom"):
    """api.measure on a small phantom's true label map with its CT: report.json, CSV, report.html."""
    from volseg import api

    phantom = small_phantom(seed, scale)
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    ct = write_nifti(phantom.image, inputs / f"{name}_ct.nii.gz")
    truth = write_nifti(phantom.truth, inputs / f"{name}_labels.nii.gz")
    labels = inputs / "labels.json"
    labels.write_text(phantom.labels.to_json())
    return api.measure(truth, out / name, image=ct, labels=labels)


# ---- a lesion with known long and short axes ---------------------------------------------------
LESION_CENTRE_RAS = (12.0, -8.0, 20.0)
LESION_LONG_MM, LESION_SHORT_MM = 30.0, 16.0
LESION_ANGLE_DEG = 30.0  # long axis direction in the axial plane, from +R towards +A
LESION_LABELS = LabelTable([LabelInfo(1, "liver", "Liver", (221, 130, 101)),
                            LabelInfo(2, "liver_tumor", "Liver tumour", (255, 0, 255))])


def lesion_study(orientation: str = "LPS", spacing=(0.8, 0.8, 2.5), shape=(160, 150, 24)):
    """(image, labels, instance) — an elliptical lesion inside an organ, with its analytic calipers.

    The grid is centred on the origin; the lesion centre lies on a voxel centre so that its long and
    short axes lie in one axial slice. ``instance`` follows the report contract's InstanceRow fields.
    """
    affine = phantom_grid(shape, spacing, orientation)
    vol0 = Volume(np.zeros(shape, np.int16), affine)
    centre_index = np.round(vol0.world_to_index(np.array(LESION_CENTRE_RAS)))
    centre = vol0.index_to_world(centre_index)
    idx = np.indices(shape).reshape(3, -1).T
    xyz = vol0.index_to_world(idx).reshape(*shape, 3) - centre
    t = math.radians(LESION_ANGLE_DEG)
    u, v = np.array([math.cos(t), math.sin(t), 0.0]), np.array([-math.sin(t), math.cos(t), 0.0])
    a, b, c = LESION_LONG_MM / 2, LESION_SHORT_MM / 2, 4.0
    lesion = (xyz @ u / a) ** 2 + (xyz @ v / b) ** 2 + (xyz[..., 2] / c) ** 2 <= 1.0
    organ = ((xyz[..., 0] / 50) ** 2 + (xyz[..., 1] / 45) ** 2 + (xyz[..., 2] / 40) ** 2) <= 1.0
    labels = np.zeros(shape, np.uint8)
    labels[organ] = 1
    labels[lesion] = 2
    hu = np.where(lesion, 30, np.where(organ, 60, -900)).astype(np.int16)
    ends_long = [(centre - a * u).tolist(), (centre + a * u).tolist()]
    ends_short = [(centre - b * v).tolist(), (centre + b * v).tolist()]
    instance = {
        "instance_id": "liver_tumor-1", "label": 2, "class_name": "liver_tumor", "kind": "lesion",
        "voxel_count": int(lesion.sum()), "volume_ml": float(lesion.sum() * vol0.voxel_volume_mm3 / 1000),
        "long_axis_mm": LESION_LONG_MM, "short_axis_mm": LESION_SHORT_MM,
        "long_axis_endpoints_ras_mm": ends_long, "short_axis_endpoints_ras_mm": ends_short,
        "centroid_ras_mm": centre.tolist(), "host_organ": "liver", "short_axis_class": ">=15 mm",
        "recist_target": True, "mean_hu": 30.0,
    }
    return vol0.with_array(hu), vol0.with_array(labels), instance


def airway_branches():
    """Centreline branches (AirwayMetrics.branches) of the phantom's trachea and main bronchi."""
    top, carina = [0.0, 20.0, 118.0], [0.0, 20.0, 75.0]
    return [
        {"branch_id": 0, "parent_id": None, "generation": 0, "length_mm": 43.0, "mean_diameter_mm": 18.0,
         "start_ras_mm": top, "end_ras_mm": carina},
        {"branch_id": 1, "parent_id": 0, "generation": 1, "length_mm": 55.0, "mean_diameter_mm": 11.0,
         "start_ras_mm": carina, "end_ras_mm": [-48.0, 8.0, 52.0]},
        {"branch_id": 2, "parent_id": 0, "generation": 1, "length_mm": 55.0, "mean_diameter_mm": 11.0,
         "start_ras_mm": carina, "end_ras_mm": [48.0, 8.0, 52.0]},
    ]




# ---- a small synthetic CT series on a Volume's grid -------------------------------------------------
FAKE_PATIENT_NAME = "TESTPATIENT^ZELDA"
FAKE_PATIENT_ID = "PID-0815-TEST"


def write_ct_series(volume: Volume, folder: Path, **extra) -> list[Path]:
    """One CT Image Storage file per k slice of an axial ``volume`` (int16 HU); returns them in k order.

    ``extra`` attributes are set on every slice (e.g. a scanner's quirks)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0]) @ volume.direction
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    files = []
    for k in range(volume.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = FAKE_PATIENT_NAME, FAKE_PATIENT_ID, "19010101", "O"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName = "20240102", "101010", "ACC123", ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 3, k + 1
        ds.ImageOrientationPatient = [float(v) for v in (*lps[:, 0], *lps[:, 1])]
        ras = volume.index_to_world(np.array([0.0, 0.0, float(k)]))
        ds.ImagePositionPatient = [float(-ras[0]), float(-ras[1]), float(ras[2])]
        ds.PixelSpacing = [float(volume.spacing[1]), float(volume.spacing[0])]  # row spacing, column spacing
        ds.SliceThickness = float(volume.spacing[2])
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        for keyword, value in extra.items():
            setattr(ds, keyword, value)
        ds.PixelData = np.ascontiguousarray(np.asarray(volume.array)[:, :, k].T.astype(np.int16)).tobytes()
        path = folder / f"slice{k:03d}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        files.append(path)
    return files
