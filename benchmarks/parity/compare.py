"""Two label maps of the same input: agreement, grid, names, and whether every disagreement is a near-tie."""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: a voxel is a near-tie where a part's top-2 logits differ by less than this fraction of the top logit
#: (as TotalSegmentator's nnU-Net computes them: it accumulates windows in float16, 11-bit mantissa,
#: so gaps below ~0.5 % of the value are within its rounding; 1 % leaves room for several windows)
NEAR_TIE = 1e-2


def compare(peer_path: Path, ours_path: Path, margin_path: Path | None, peer_names: dict[int, str],
            our_names: dict[int, str], *, tol: float = NEAR_TIE) -> dict:
    import nibabel as nib

    peer, ours = nib.load(str(peer_path)), nib.load(str(ours_path))
    notes = []
    ours, layout = _same_layout(ours, peer)
    if layout:
        notes.append(layout)
    same_grid = peer.shape == ours.shape and np.allclose(peer.affine, ours.affine, atol=1e-4)
    if not same_grid:
        notes.append(f"grid: peer {peer.shape} vs volseg {ours.shape}, max affine diff "
                     f"{np.abs(peer.affine - ours.affine).max():.2e}")
    a = np.asarray(peer.dataobj).astype(np.int32)
    b = np.asarray(ours.dataobj).astype(np.int32)
    if a.shape != b.shape:
        return {"agreement_pct": None, "near_ties": None, "disagreements_all_near_ties": None,
                "same_grid": False, "same_labels": peer_names == our_names, "notes": notes}
    differ = a != b
    agreement = 100.0 * (1.0 - differ.mean())
    near = None
    all_near = None
    if margin_path is not None and Path(margin_path).exists():
        margin = np.load(margin_path)["margin"]
        if margin.shape == a.shape:
            ties = margin < tol
            near = int(ties.sum())
            all_near = bool(np.all(ties[differ]))
            if not all_near:
                notes.append(f"{int((differ & ~ties).sum())} disagreeing voxels are not near-ties "
                             f"(largest margin {float(margin[differ].max()):.3g})")
    same_labels = peer_names == our_names
    if not same_labels:
        diff = sorted(set(peer_names.items()) ^ set(our_names.items()))[:4]
        notes.append(f"label maps differ, e.g. {diff}")
    notes.append(f"{int(differ.sum())} of {a.size} voxels differ; {len(np.unique(a))} labels present")
    return {"agreement_pct": round(agreement, 4), "near_ties": near, "disagreements_all_near_ties": all_near,
            "same_grid": bool(same_grid), "same_labels": same_labels, "notes": notes}


def _same_layout(ours, peer):
    """``ours`` with its array axes flipped/permuted to ``peer``'s orientation: the same voxel centres
    stored in another axis order are the same grid (TotalSegmentator's DICOM conversion writes LAS,
    volseg's LPS); returns the image and a note ('' when nothing was done)."""
    import nibabel as nib
    from nibabel.orientations import aff2axcodes, io_orientation, ornt_transform

    if aff2axcodes(ours.affine) == aff2axcodes(peer.affine):
        return ours, ""
    moved = ours.as_reoriented(ornt_transform(io_orientation(ours.affine), io_orientation(peer.affine)))
    note = (f"same voxels in another axis order: peer {''.join(aff2axcodes(peer.affine))}, volseg "
            f"{''.join(aff2axcodes(ours.affine))} (compared after reordering volseg's axes)")
    return nib.Nifti1Image(np.asarray(moved.dataobj), moved.affine), note
