"""Options of volseg's operations as frozen dataclasses. Defaults live here and nowhere else.

The CLI builds these from its flags (flags left unset keep these defaults) and the API takes them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from volseg.errors import UsageError

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class SegmentOptions:
    model: str | None = None  # None: the best installed model, else the built-in classic-ct
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    series: str | None = None  # DICOM SeriesInstanceUID or SeriesNumber when a folder holds several
    html: bool = True  # write report.html (pictures drawn with matplotlib)
    dicom: bool = False  # DICOM SEG + SR next to the NIfTI outputs (DICOM series inputs only)
    keep_phi: bool = False  # copy patient/study identifiers into the DICOM outputs (default: placeholders)
    trust_bundle: bool = False  # allow a custom MONAI bundle's config (it can run code) to be instantiated

    def __post_init__(self) -> None:
        if not _DEVICE_RE.match(self.device):
            raise UsageError(f"invalid device {self.device!r}", hint="use auto, cpu, cuda, cuda:N or mps")


@dataclass(frozen=True)
class MeasureOptions:
    connectivity: int = 26  # 6, 18 or 26: neighbourhood for counting components and lesion instances
    min_instance_volume_mm3: float = 0.0  # lesion/node components smaller than this are dropped

    def __post_init__(self) -> None:
        if self.connectivity not in (6, 18, 26):
            raise UsageError(f"connectivity must be 6, 18 or 26, got {self.connectivity}")
        if not self.min_instance_volume_mm3 >= 0:
            raise UsageError(f"minimum instance volume must be >= 0 mm³, got {self.min_instance_volume_mm3}")


def with_overrides(options, **given):
    """``options`` with the given fields replaced, ignoring None (flags the user did not set)."""
    names = {f.name for f in fields(options)}
    unknown = set(given) - names
    if unknown:
        raise UsageError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return replace(options, **{k: v for k, v in given.items() if v is not None})
