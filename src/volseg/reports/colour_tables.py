"""Colour tables so that 3D Slicer and ITK-SNAP show ``segmentation.nii.gz`` with names and colours.

* ``segmentation.ctbl``: 3D Slicer colour table (``index name R G B A`` per line, 0–255). Load it
  with the label map (Add Data → choose the colour table for the volume).
* ``segmentation.itksnap.txt``: ITK-SNAP label description file (Segmentation → Import Label
  Descriptions). Columns ``IDX R G B A VIS MSH "LABEL"`` with A the opacity in 0–1.

Names are the label names of :class:`~volseg.labels.LabelTable` (letters, digits, ``_.-``: no spaces,
as the Slicer format needs); ITK-SNAP gets the human display name.
"""
from __future__ import annotations

from pathlib import Path

from volseg.io.atomic import write_text
from volseg.labels import LabelTable

SLICER_CTBL = "segmentation.ctbl"
ITKSNAP_LABELS = "segmentation.itksnap.txt"


def slicer_ctbl(labels: LabelTable) -> str:
    lines = ["# 3D Slicer colour table written by volseg for segmentation.nii.gz",
             f"# {len(labels) + 1} values", "0 background 0 0 0 0"]
    lines += [f"{i} {lab.name} {lab.color[0]} {lab.color[1]} {lab.color[2]} 255" for i, lab in labels.items()]
    return "\n".join(lines) + "\n"


def itksnap_labels(labels: LabelTable) -> str:
    lines = [
        "################################################",
        "# ITK-SnAP Label Description File (written by volseg for segmentation.nii.gz)",
        "# File format:",
        "# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL",
        "# Fields:",
        "#    IDX:   Zero-based index",
        "#    -R-:   Red color component (0..255)",
        "#    -G-:   Green color component (0..255)",
        "#    -B-:   Blue color component (0..255)",
        "#    -A-:   Label transparency (0.00 .. 1.00)",
        "#    VIS:   Label visibility (0 or 1)",
        "#    MSH:   Label mesh visibility (0 or 1)",
        "#  LABEL:   Label description",
        "################################################",
        f'{0:5d} {0:5d} {0:4d} {0:4d} {0:8.2f} {0:2d} {0:2d}    "Clear Label"',
    ]
    for i, lab in labels.items():
        r, g, b = lab.color
        text = lab.display_name.replace('"', "'")
        lines.append(f'{i:5d} {r:5d} {g:4d} {b:4d} {1:8.2f} {1:2d} {1:2d}    "{text}"')
    return "\n".join(lines) + "\n"


def write_colour_tables(out_dir: str | Path, labels: LabelTable) -> dict[str, Path]:
    out = Path(out_dir)
    return {
        "slicer_colours": write_text(out / SLICER_CTBL, slicer_ctbl(labels)),
        "itksnap_labels": write_text(out / ITKSNAP_LABELS, itksnap_labels(labels)),
    }


def read_slicer_ctbl(text: str) -> dict[int, tuple[str, tuple[int, int, int, int]]]:
    """index → (name, RGBA) of a Slicer colour table (used to check files we write and others')."""
    table: dict[int, tuple[str, tuple[int, int, int, int]]] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 6:
            raise ValueError(f"not 'index name R G B A': {line!r}")
        r, g, b, a = (int(v) for v in parts[2:])
        table[int(parts[0])] = (parts[1], (r, g, b, a))
    return table
