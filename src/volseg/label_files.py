"""Label names from the colour tables viewers use: a 3D Slicer colour table (``index name R G B A``,
0–255) or an ITK-SNAP label description file (``IDX R G B A VIS MSH "LABEL"``, A in 0–1).

These are the formats :mod:`volseg.reports.colour_tables` writes; index 0 (background, ITK-SNAP's
"Clear Label") is skipped. ITK-SNAP labels are free text: the text is kept as the display name and
made a label name (lower case, runs of other characters → ``_``).
"""
from __future__ import annotations

import re
import shlex

from volseg.labels import LabelInfo, LabelTable, display_name

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


def parse_colour_table(text: str) -> LabelTable:
    """A Slicer ``.ctbl`` or an ITK-SNAP label file (told apart by the quoted label), else ValueError."""
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise ValueError("no label lines (expected 'index name R G B A' or 'IDX R G B A VIS MSH \"LABEL\"')")
    items = [_itksnap_row(r) if '"' in r else _slicer_row(r) for r in rows]
    return LabelTable(item for item in items if item is not None)


def _slicer_row(line: str) -> LabelInfo | None:
    parts = line.split()
    if len(parts) != 6:
        raise ValueError(f"not 'index name R G B A': {line[:60]!r}")
    index, name, *rgba = parts
    if int(index) == 0:
        return None
    color = tuple(int(v) for v in rgba[:3])
    return LabelInfo(int(index), name, display_name(name), color)  # type: ignore[arg-type]


def _itksnap_row(line: str) -> LabelInfo | None:
    parts = shlex.split(line)
    if len(parts) != 8:
        raise ValueError(f"not 'IDX R G B A VIS MSH \"LABEL\"': {line[:60]!r}")
    index = int(parts[0])
    if index == 0:
        return None
    text = " ".join(parts[7].split())
    name = _NOT_NAME.sub("_", text.lower()).strip("_.-") or f"label_{index}"
    color = tuple(int(float(v)) for v in parts[1:4])
    return LabelInfo(index, name, text or name, color)  # type: ignore[arg-type]

