"""Clinical measurements on the shared real data (LiTS crop, TotalSegmentator examples)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from volseg import api


@pytest.fixture(scope="module")
def lits(shared_data, tmp_path_factory):
    folder = shared_data / "lits117-crop"
    out = tmp_path_factory.mktemp("lits")
    names = out / "labels.json"
    names.write_text(json.dumps({"1": "liver", "2": "liver_tumor"}))  # the manual labels of the crop
    result = api.measure(folder / "lits117_128cube_label.nii.gz", out / "study",
                         image=folder / "lits117_128cube_ct.nii.gz", labels=names)
    return folder, result


def test_lits_tumour_instances_are_the_connected_components(lits):
    import cc3d
    import nibabel as nib

    folder, result = lits
    img = nib.load(str(folder / "lits117_128cube_label.nii.gz"))
    assert np.allclose(img.affine, np.eye(4))  # no real spacing stored: 1 mm voxels
    tumour = np.asarray(img.dataobj) == 2
    comps = cc3d.connected_components(tumour.astype(np.uint8), connectivity=26)
    sizes = np.bincount(comps.ravel())[1:]
    report = result.report
    rows = report.instances
    assert report.lesion_classes == ["liver_tumor"]
    assert len(rows) == len(sizes) > 1
    assert sorted(r.voxel_count for r in rows) == sorted(int(s) for s in sizes)
    for r in rows:  # each instance is one component: same voxel count at its centroid's component
        assert r.volume_ml == pytest.approx(r.voxel_count / 1000.0)
        assert r.kind == "lesion" and r.host_organ == "liver"
    centroids = {tuple(np.round(np.argwhere(comps == c).mean(axis=0), 6)): int(sizes[c - 1])
                 for c in range(1, len(sizes) + 1)}
    for r in rows:
        assert centroids[tuple(np.round(r.centroid_ras_mm, 6))] == r.voxel_count
    total = next(b for b in report.burden if b.class_name == "all")
    assert total.lesion_count == len(sizes)
    assert total.total_volume_ml == pytest.approx(tumour.sum() / 1000.0)


def test_lits_recist_target_sum(lits):
    _, result = lits
    report = result.report
    measurable = sorted((r.long_axis_mm for r in report.instances if r.long_axis_mm >= 10.0 and not r.touches_fov),
                        reverse=True)
    total = next(b for b in report.burden if b.class_name == "all")
    # all tumours lie in one organ (the liver): two targets, the two longest measurable diameters of
    # the lesions not cut by the crop's edge (liver_tumor-1..3 are)
    assert total.n_recist_targets == 2
    assert total.recist_target_sum_mm == pytest.approx(sum(measurable[:2]))
    assert [r.instance_id for r in report.instances if r.recist_target] == ["liver_tumor-4", "liver_tumor-5"]
    print(f"\nLiTS-117 crop: {total.lesion_count} tumours, {total.total_volume_ml:.3f} mL, "
          f"RECIST target sum {total.recist_target_sum_mm:.2f} mm")
    lines = (result.outputs["lesions"]).read_text().splitlines()
    assert len(lines) == 1 + len(report.instances)


def _totalseg(shared_data, tmp_path, seg, ct):
    folder = shared_data / "totalseg-example"
    return api.measure(folder / seg, tmp_path, image=folder / ct,
                       labels=folder / "label_map_total_v2.json").report


def test_kidneys_cut_by_the_30_slice_volume_are_truncated(shared_data, tmp_path):
    small = _totalseg(shared_data, tmp_path / "sm", "example_seg.nii.gz", "example_ct_sm.nii.gz")
    full = _totalseg(shared_data, tmp_path / "full", "example_seg_fast_force_split.nii.gz", "example_ct.nii.gz")
    for kidney in ("kidney_left", "kidney_right"):
        assert "truncated" in small.structure(kidney).qc_flags
        assert "truncated" not in full.structure(kidney).qc_flags
        # the cut kidney is smaller than the whole one
        assert small.structure(kidney).volume_ml < full.structure(kidney).volume_ml


def test_qc_flags_of_every_structure_in_the_full_example(shared_data, tmp_path):
    report = _totalseg(shared_data, tmp_path, "example_seg_fast_force_split.nii.gz", "example_ct.nii.gz")
    present = [s for s in report.structures if not s.empty]
    assert len(present) == 61
    print("\nQC flags, example_seg_fast_force_split.nii.gz on example_ct.nii.gz:")
    for s in present:
        print(f"  {s.name:30s} {s.volume_ml:8.1f} mL  {', '.join(s.qc_flags) or '-'}")
    flags = {s.name: set(s.qc_flags) for s in present}
    assert not any("laterality_mismatch" in f for f in flags.values())  # a correctly labelled map
    assert flags["pancreas"] >= {"fragmented", "volume_out_of_range"}  # 18.8 mL in 4 pieces
    assert "volume_out_of_range" not in flags["liver"] | flags["spleen"]  # 1125.7 and 261.0 mL
    assert "truncated" in flags["liver"]  # the liver dome lies above the scanned range
    assert all(f <= {"truncated", "fragmented", "laterality_mismatch", "volume_out_of_range"}
               for f in flags.values())
    empty = [s for s in report.structures if s.empty]
    assert all(s.qc_flags == ["empty"] for s in empty)
