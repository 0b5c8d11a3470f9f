"""Label tables: index → name, display name, colour (and codes), read and written as ``labels.json``.

``read_labels`` accepts volseg's own ``labels.json`` and the plain ``{"1": "spleen", ...}`` object
TotalSegmentator and nnU-Net users already have (nnU-Net's ``dataset.json`` ``labels`` block, which
maps name → index, is accepted too), a 3D Slicer colour table (``.ctbl``: ``index name R G B A``)
and an ITK-SNAP label description file (``IDX R G B A VIS MSH "LABEL"``), the two files volseg
writes beside every label map.
"""
from __future__ import annotations

import colorsys
import json
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

from volseg.errors import InputError

LABELS_SCHEMA_VERSION = "1.0.0"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class LabelInfo:
    index: int
    name: str
    display_name: str
    color: tuple[int, int, int]
    snomed_category: str | None = None  # "SCT:123037004" style code, when known
    snomed_type: str | None = None

    def __post_init__(self) -> None:
        if self.index < 1:
            raise ValueError(f"label index must be ≥ 1 (0 is background), got {self.index}")
        if not _NAME_RE.match(self.name):
            raise ValueError(f"label name {self.name!r} must be letters, digits, '_', '.', '-'")
        if len(self.color) != 3 or not all(0 <= c <= 255 for c in self.color):
            raise ValueError(f"colour of {self.name!r} must be three 0-255 values, got {self.color}")


class LabelTable(Mapping[int, LabelInfo]):
    """An immutable, validated mapping index → :class:`LabelInfo` (background 0 excluded)."""

    def __init__(self, labels: Iterable[LabelInfo]):
        items = sorted(labels, key=lambda lab: lab.index)
        seen: set[str] = set()
        for lab in items:
            if lab.name in seen:
                raise ValueError(f"label name {lab.name!r} is used twice")
            seen.add(lab.name)
        indices = [lab.index for lab in items]
        if len(set(indices)) != len(indices):
            raise ValueError("label indices must be unique")
        self._by_index = {lab.index: lab for lab in items}

    @classmethod
    def from_names(cls, names: Mapping[int, str]) -> "LabelTable":
        return cls(
            LabelInfo(int(i), str(n), display_name(str(n)), default_color(int(i)))
            for i, n in names.items()
            if int(i) != 0
        )

    def __getitem__(self, index: int) -> LabelInfo:
        return self._by_index[index]

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_index)

    def __len__(self) -> int:
        return len(self._by_index)

    def names(self) -> dict[int, str]:
        return {i: lab.name for i, lab in self._by_index.items()}

    def index_of(self, name: str) -> int:
        for i, lab in self._by_index.items():
            if lab.name == name:
                return i
        raise KeyError(name)

    def to_json(self) -> str:
        payload = {
            "schema_version": LABELS_SCHEMA_VERSION,
            "labels": [
                {**asdict(lab), "color": list(lab.color)} for lab in self._by_index.values()
            ],
        }
        return json.dumps(payload, indent=2) + "\n"

    def __repr__(self) -> str:
        return f"LabelTable({len(self)} labels)"


def display_name(name: str) -> str:
    """'kidney_left' → 'Kidney left'."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def default_color(index: int) -> tuple[int, int, int]:
    """A distinct, deterministic colour per index (golden-ratio hue walk, saturated, mid-bright)."""
    hue = (index * 0.618033988749895) % 1.0
    sat = 0.65 + 0.3 * ((index * 7) % 3) / 2
    val = 0.95 - 0.25 * ((index * 5) % 2)
    r, g, b = colorsys.hsv_to_rgb(hue, min(sat, 1.0), val)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def read_labels(path: str | Path) -> LabelTable:
    """Read a label table from volseg's labels.json, a plain index → name JSON object, a Slicer
    ``.ctbl`` colour table or an ITK-SNAP label description file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("no such labels file", path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"labels file cannot be read ({exc})", path=path) from exc
    if not text.lstrip().startswith(("{", "[")):
        try:
            return parse_colour_table(text)
        except ValueError as exc:
            raise InputError(f"invalid labels file: {exc}", path=path,
                             hint="volseg reads labels.json, {index: name} JSON, Slicer .ctbl and "
                                  "ITK-SNAP label descriptions") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not a JSON labels file ({exc})", path=path) from exc
    try:
        return parse_labels(payload)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"invalid labels file: {exc}", path=path) from exc


def parse_labels(payload: object) -> LabelTable:
    if isinstance(payload, dict) and isinstance(payload.get("labels"), list):
        return LabelTable(
            LabelInfo(
                index=int(item["index"]),
                name=str(item["name"]),
                display_name=str(item.get("display_name") or display_name(item["name"])),
                # any length here: LabelInfo checks that a colour is three 0-255 values
                color=cast("tuple[int, int, int]",
                           tuple(int(c) for c in item.get("color") or default_color(int(item["index"])))),
                snomed_category=item.get("snomed_category"),
                snomed_type=item.get("snomed_type"),
            )
            for item in payload["labels"]
        )
    if isinstance(payload, dict) and isinstance(payload.get("labels"), dict):  # nnU-Net dataset.json
        return LabelTable.from_names({int(v): k for k, v in payload["labels"].items()})
    if isinstance(payload, dict) and payload and all(_is_int(k) for k in payload):
        return LabelTable.from_names({int(k): str(v) for k, v in payload.items()})
    raise ValueError("expected volseg labels.json, an {index: name} object or a dataset.json")


def _is_int(text: object) -> bool:
    try:
        int(str(text))
    except ValueError:
        return False
    return True


# ---- colour tables of viewers: 3D Slicer (index name R G B A, 0-255) and ITK-SNAP label descriptions
# (IDX R G B A VIS MSH "LABEL", A in 0-1), the formats volseg.reports.colour_tables writes; index 0
# (background, ITK-SNAP's "Clear Label") is skipped; ITK-SNAP's free-text labels are kept as the
# display name and made a label name (lower case, runs of other characters -> "_").
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
    r, g, b = (int(v) for v in rgba[:3])
    return LabelInfo(int(index), name, display_name(name), (r, g, b))


def _itksnap_row(line: str) -> LabelInfo | None:
    parts = shlex.split(line)
    if len(parts) != 8:
        raise ValueError(f"not 'IDX R G B A VIS MSH \"LABEL\"': {line[:60]!r}")
    index = int(parts[0])
    if index == 0:
        return None
    text = " ".join(parts[7].split())
    name = _NOT_NAME.sub("_", text.lower()).strip("_.-") or f"label_{index}"
    r, g, b = (int(float(v)) for v in parts[1:4])
    return LabelInfo(index, name, text or name, (r, g, b))

