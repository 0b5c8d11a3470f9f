"""Options of volseg's operations as frozen dataclasses. Defaults live here and nowhere else.

The CLI builds these from its flags (flags left unset keep these defaults) and the API takes them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from volseg.errors import UsageError
from volseg.segmenters.engine.settings import EngineOverrides

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class SegmentOptions:
    model: str | None = None  # None: the best installed model, else the built-in classic-ct
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    series: str | None = None  # DICOM SeriesInstanceUID or SeriesNumber when a folder holds several
    html: bool = True  # write report.html (pictures drawn with matplotlib)
    dicom: bool = False  # DICOM SEG + SR next to the NIfTI outputs (DICOM series inputs only)
    rtstruct: bool = False  # DICOM RT Structure Set next to the NIfTI outputs (DICOM series inputs only)
    anonymize: bool = False  # DICOM outputs as one de-identified set with mapped UIDs (default: source identity)
    keep_phi: bool = False  # deprecated (identifiers are copied by default): only records the input path
    trust_bundle: bool = False  # allow a custom MONAI bundle's config (it can run code) to be instantiated
    force: bool = False  # run the model even on an input it was not made for (modality, HU, body region)
    # sliding-window engine overrides (--step, --tta, --precision, --export, --members); unset ones keep the
    # model's catalogue/tested defaults
    engine: EngineOverrides = field(default_factory=EngineOverrides)
    # TotalSegmentator habits
    fast: bool = False  # run the model's catalogued fast variant (e.g. total -> total-fast)
    fastest: bool = False  # run the model's catalogued fastest variant (e.g. total_v3 -> total_v3-fastest)
    roi_subset: tuple[str, ...] | None = None  # only these classes are predicted, written and measured
    masks: bool = False  # also write segmentations/<class>.nii.gz, one 0/1 mask per class

    def __post_init__(self) -> None:
        if not _DEVICE_RE.match(self.device):
            raise UsageError(f"invalid device {self.device!r}", hint="use auto, cpu, cuda, cuda:N or mps")
        if not isinstance(self.engine, EngineOverrides):
            raise UsageError(f"engine must be an EngineOverrides, got {type(self.engine).__name__}",
                             hint="build it with volseg.options.engine_overrides(step=..., tta=...)")
        if self.anonymize and self.keep_phi:
            raise UsageError("--anonymize and --keep-phi contradict each other",
                             hint="--anonymize de-identifies the DICOM outputs; --keep-phi records the input path")
        if self.fast and self.fastest:
            raise UsageError("--fast and --fastest contradict each other", hint="give one of them")
        if self.roi_subset is not None:
            object.__setattr__(self, "roi_subset", parse_roi_subset(self.roi_subset))

    def engine_flags(self) -> dict[str, Any]:
        """The engine overrides that are set, by their CLI names (step, tta, precision, export)."""
        return engine_flags(self.engine)


@dataclass(frozen=True)
class MeasureOptions:
    connectivity: int = 26  # 6, 18 or 26: neighbourhood for counting components and lesion instances
    min_instance_volume_mm3: float = 0.0  # lesion/node components smaller than this are dropped

    def __post_init__(self) -> None:
        if self.connectivity not in (6, 18, 26):
            raise UsageError(f"connectivity must be 6, 18 or 26, got {self.connectivity}")
        if not self.min_instance_volume_mm3 >= 0:
            raise UsageError(f"minimum instance volume must be >= 0 mm³, got {self.min_instance_volume_mm3}")


def parse_roi_subset(names) -> tuple[str, ...]:
    """Class names from ``"a,b"`` or a sequence of names (each may hold commas), duplicates dropped."""
    parts = [names] if isinstance(names, str) else list(names)
    found: list[str] = []
    for part in parts:
        for name in str(part).split(","):
            if name.strip() and name.strip() not in found:
                found.append(name.strip())
    if not found:
        raise UsageError("--roi-subset names no class",
                         hint="give class names, e.g. --roi-subset liver,spleen")
    return tuple(found)


_FLAG_NAMES = {"mirror": "tta", "skip_air": "skip-air"}  # EngineOverrides field → CLI flag name (--tta); others are the same


def engine_overrides(*, step: float | None = None, tta: bool | None = None, precision: str | None = None,
                     export: str | None = None, members: int | None = None,
                     skip_air: bool | None = None) -> EngineOverrides:
    """User-facing engine flags as :class:`~volseg.segmenters.engine.settings.EngineOverrides`."""
    return EngineOverrides(step=step, mirror=tta, precision=precision, export=export, members=members,
                           skip_air=skip_air)


def engine_flags(overrides: EngineOverrides) -> dict[str, Any]:
    """The set overrides by CLI name (step, tta, precision, export, members), in that order (run keys, scripts)."""
    return {_FLAG_NAMES.get(f.name, f.name): getattr(overrides, f.name) for f in fields(overrides)
            if getattr(overrides, f.name) is not None}


def with_overrides(options, **given):
    """``options`` with the given fields replaced, ignoring None (flags the user did not set)."""
    names = {f.name for f in fields(options)}
    unknown = set(given) - names
    if unknown:
        raise UsageError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return replace(options, **{k: v for k, v in given.items() if v is not None})
