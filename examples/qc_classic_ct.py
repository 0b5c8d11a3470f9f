"""QC picture of the built-in ``classic-ct`` segmenter: axial, coronal and sagittal slices with overlays.

Usage::

    python examples/qc_classic_ct.py INPUT OUTPUT.png [--labels SEGMENTATION.nii.gz]

INPUT is anything ``volseg.io.read_image`` reads (NIfTI, NRRD/MHA, a DICOM folder). Without
``--labels`` the image is segmented with ``classic-ct`` first. The picture shows two rows of three
slices (axial, coronal, sagittal) in the patient's frame (radiological convention: the patient's
right on the left of axial and coronal views), through the lungs and the airways when present,
with one colour per class and each class's volume in the legend. Nothing identifying the patient
is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="CT image (NIfTI, NRRD, MHA or a DICOM folder)")
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument("--labels", type=Path, default=None, help="existing classic-ct label map")
    parser.add_argument("--title", default=None, help="title (default: the input's file name)")
    args = parser.parse_args(argv)

    from volseg.io import read_image
    from volseg.segmenters.registry import load_segmenter

    image = read_image(args.input).volume
    segmenter = load_segmenter("classic-ct", device="cpu")
    if args.labels is not None:
        labels = read_image(args.labels).volume
    else:
        labels = segmenter.predict(image)
    render_qc(image, labels, segmenter.labels, args.output,
              title=args.title or args.input.name)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


#: vivid colours for the QC picture (the catalogue's colours are for viewers with a dark theme)
QC_COLOURS = {
    "body": (0.95, 0.6, 0.4), "lung_left": (0.1, 0.8, 0.2), "lung_right": (0.1, 0.5, 1.0),
    "airways": (1.0, 0.1, 0.1), "bone": (0.9, 0.2, 0.9), "subcutaneous_fat": (1.0, 0.9, 0.0),
    "torso_fat": (1.0, 0.5, 0.0),
}


def render_qc(image, labels, table, out_png: Path, *, title: str = "") -> Path:
    """Write a 2×3 PNG of axial/coronal/sagittal slices of ``image`` with ``labels`` overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from volseg.io.atomic import atomic_path
    from volseg.volume import reorient

    ras = reorient(image, "RAS")
    lab = reorient(labels, "RAS").array
    names = table.names()
    colours = np.zeros((max(names) + 1, 4))
    for index, info in table.items():
        rgb = QC_COLOURS.get(info.name, tuple(c / 255.0 for c in info.color))
        colours[index] = (*rgb, 0.0 if info.name == "body" else 0.5)
    outline = "body" in names.values()  # the body as an outline, so the image stays readable

    rows = _pick_slices(lab, names)
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 5.2 * len(rows)), squeeze=False)
    for row, position in zip(axes, rows):
        for ax, (view, img, seg, aspect, at) in zip(row, _views(ras.array, lab, ras.spacing, position)):
            ax.imshow(img, cmap="gray", vmin=-1000, vmax=400, aspect=aspect, interpolation="nearest")
            ax.imshow(np.ma.masked_equal(seg, 0), cmap=ListedColormap(colours), vmin=0,
                      vmax=len(colours) - 1, aspect=aspect, interpolation="nearest")
            if outline:
                ax.contour(seg > 0, levels=[0.5], colors=[QC_COLOURS["body"]], linewidths=0.8)
            ax.set_title(f"{view} slice {at}", fontsize=10)
            ax.set_axis_off()
    voxel_ml = labels.voxel_volume_mm3 / 1000.0
    counts = np.bincount(labels.array.ravel().astype(np.int64), minlength=len(colours))
    handles = [Patch(color=colours[i][:3] if names[i] != "body" else QC_COLOURS["body"],
                     label=f"{names[i]}: {counts[i] * voxel_ml:.0f} mL") for i in sorted(names)]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=10)
    fig.suptitle(f"{title}  ({image.shape[0]}×{image.shape[1]}×{image.shape[2]}, "
                 f"{'×'.join(f'{s:.2f}' for s in image.spacing)} mm, {image.orientation}) "
                 "— viewer's left = patient's right", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return out_png


def _views(hu: np.ndarray, lab: np.ndarray, spacing, position):
    """(name, image, labels, pixel aspect, index) of the three planes through ``position`` (RAS
    arrays), oriented as radiologists read them: the patient's right on the viewer's left in axial
    and coronal views, anterior up (axial) or left (sagittal), superior up (coronal, sagittal)."""
    i, j, k = position
    sx, sy, sz = spacing
    axial = (hu[:, :, k].T[::-1, ::-1], lab[:, :, k].T[::-1, ::-1], sy / sx, k)
    coronal = (hu[:, j, :].T[::-1, ::-1], lab[:, j, :].T[::-1, ::-1], sz / sx, j)
    sagittal = (hu[i, :, :].T[::-1, ::-1], lab[i, :, :].T[::-1, ::-1], sz / sy, i)
    return [("axial", *axial), ("coronal", *coronal), ("sagittal", *sagittal)]


def _pick_slices(lab: np.ndarray, names: dict[int, str]) -> list[tuple[int, int, int]]:
    """Two (i, j, k) RAS slice positions: through the lungs' centre, then through the airways
    (or, without airways, through the body a quarter of the way up and further forward)."""
    index = {name: i for i, name in names.items()}
    body = lab > 0
    centre = _centroid(body) if body.any() else tuple(s // 2 for s in lab.shape)
    lungs = np.isin(lab, [index.get("lung_left", -1), index.get("lung_right", -1)])
    first = _centroid(lungs) if lungs.any() else centre
    airways = lab == index.get("airways", -1)
    if airways.any():
        ai, aj, ak = _centroid(airways)
        right = lab == index.get("lung_right", -1)
        second = (_centroid(right)[0] if right.any() else ai, aj, ak)
    else:
        zs = np.flatnonzero(body.any(axis=(0, 1)))
        k = int(zs[len(zs) // 4]) if zs.size else centre[2]
        ys = np.flatnonzero(body.any(axis=(0, 2)))
        j = int(ys[(2 * len(ys)) // 3]) if ys.size else centre[1]
        second = (centre[0] - lab.shape[0] // 6, j, k)
    return [tuple(int(np.clip(v, 0, n - 1)) for v, n in zip(r, lab.shape)) for r in (first, second)]


def _centroid(mask: np.ndarray) -> tuple[int, int, int]:
    return tuple(round(float(c.mean())) for c in np.nonzero(mask))  # type: ignore[return-value]


if __name__ == "__main__":
    sys.exit(main())
