"""RECIST calipers on the real LiTS crop: on one connected piece, edge-cut lesions flagged."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from volseg import api
from volseg.postprocess.chords import is_inside

FOUR = ndimage.generate_binary_structure(2, 1)


@pytest.fixture(scope="module")
def lits(shared_data, tmp_path_factory):
    import cc3d
    import nibabel as nib

    folder = shared_data / "lits117-crop"
    out = tmp_path_factory.mktemp("lits-recist")
    names = out / "labels.json"
    names.write_text(json.dumps({"1": "liver", "2": "liver_tumor"}))
    result = api.measure(folder / "lits117_128cube_label.nii.gz", out / "study",
                         image=folder / "lits117_128cube_ct.nii.gz", labels=names)
    tumour = np.asarray(nib.load(str(folder / "lits117_128cube_label.nii.gz")).dataobj) == 2
    comps = cc3d.connected_components(tumour.astype(np.uint8), connectivity=26)
    return result, comps


def _component(comps, row):
    """The 3-D component of an instance: the one holding its centroid's voxel count (1 mm grid)."""
    ids, counts = np.unique(comps[comps > 0], return_counts=True)
    for c in ids[counts == row.voxel_count]:
        if np.allclose(np.argwhere(comps == c).mean(axis=0), row.centroid_ras_mm, atol=1e-6):
            return comps == c
    raise AssertionError(row.instance_id)


def _piece_extents_mm(slice2d):
    """Each 4-connected piece's largest pixel-corner distance (an upper bound of its diameter)."""
    pieces, n = ndimage.label(slice2d, structure=FOUR)
    out = []
    for k in range(1, n + 1):
        px = np.argwhere(pieces == k).astype(float)
        corners = np.concatenate([px + d for d in ([-.5, -.5], [-.5, .5], [.5, -.5], [.5, .5])])
        d = np.sqrt(((corners[:, None] - corners[None]) ** 2).sum(-1)).max()
        out.append(d)
    return pieces, out


def test_no_long_axis_spans_separate_pieces(lits):
    result, comps = lits
    rows = result.report.instances
    assert len(rows) == 70
    fragmented = 0
    for row in rows:
        mask = _component(comps, row)[:, :, row.long_axis_slice]  # identity affine: axial = axis 2
        pieces, extents = _piece_extents_mm(mask)
        assert row.long_axis_mm <= max(extents) + 1e-6, row.instance_id
        assert row.fragments_on_slice == len(extents)
        fragmented += len(extents) > 1
        # both caliper ends lie on one piece's outline: within half a pixel of that piece
        ends = [np.asarray(p)[:2] for p in row.long_axis_endpoints_ras_mm]
        owners = set()
        for end in ends:
            near = pieces[max(int(np.floor(end[0])), 0):int(np.ceil(end[0])) + 1,
                          max(int(np.floor(end[1])), 0):int(np.ceil(end[1])) + 1]
            owners |= {int(v) for v in np.unique(near) if v}
        assert len(owners) == 1, row.instance_id
        piece = pieces == owners.pop()
        assert is_inside(piece, ends[0], ends[1])[0], row.instance_id  # the caliper lies inside the piece
        assert row.fragments_sum_mm == pytest.approx(sum(c.length_mm for c in row.fragment_calipers))
        assert len(row.fragment_calipers) == row.fragments_on_slice
    assert fragmented >= 1
    first = next(r for r in rows if r.instance_id == "liver_tumor-1")
    assert first.long_axis_mm < 105.9  # the whole-cross-section chord reported before


def test_edge_cut_lesions_are_flagged_and_never_targets(lits, shared_data):
    import nibabel as nib

    result, comps = lits
    report = result.report
    ct = np.asarray(nib.load(str(shared_data / "lits117-crop" / "lits117_128cube_ct.nii.gz")).dataobj)
    padding = ct <= -1500
    for r in report.instances:  # independent rule: a voxel on the array's faces, or next to the padding
        mask = _component(comps, r)
        on_face = any(np.take(mask, i, axis=a).any() for a in range(3) for i in (0, -1))
        near_padding = bool((ndimage.binary_dilation(mask) & padding).any())
        assert r.touches_fov == (on_face or near_padding), r.instance_id
    cut = [r for r in report.instances if r.touches_fov]
    assert len(cut) == 9
    assert not any(r.recist_target for r in cut)
    eligible = sorted((r.long_axis_mm for r in report.instances if r.long_axis_mm >= 10.0 and not r.touches_fov),
                      reverse=True)
    total = next(b for b in report.burden if b.class_name == "all")
    assert total.n_recist_targets == 2
    assert total.recist_target_sum_mm == pytest.approx(sum(eligible[:2]))
    lines = result.outputs["lesions"].read_text().splitlines()
    header = lines[0].split(",")
    flags = [line.split(",")[header.index("touches_fov")] for line in lines[1:]]
    assert flags.count("1") == 9
