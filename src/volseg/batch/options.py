"""Options of ``volseg batch`` as one frozen dataclass; defaults live here and nowhere else."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from volseg.errors import UsageError
from volseg.options import SegmentOptions

EXECUTORS = ("local", "ray")
_DEFAULT_OPTIONS = SegmentOptions()
#: SegmentOptions fields recorded in the run key only when not at their default (added after the first key)
_KEYED_IF_SET = ("rtstruct", "anonymize", "masks")
#: SegmentOptions fields a batch chooses otherwise (--model, discovery) or cannot honour yet
_NOT_FOR_BATCH = {"model": "--model", "series": "--series", "fast": "--fast", "fastest": "--fastest",
                  "roi_subset": "--roi-subset"}
_DEFAULT = {name: getattr(_DEFAULT_OPTIONS, name) for name in _KEYED_IF_SET}
_GPUS_RE = re.compile(r"^(all|none|cpu|\d+(,\d+)*)$")


@dataclass(frozen=True)
class BatchOptions:
    models: tuple[str, ...] = ()  # run in this order on every study; empty: the default model
    shard: str | None = None  # "i/n" (0-based); None: from SLURM array variables, else every study
    retry_failed: bool = False  # run only the studies a previous run recorded as failed
    gpus: str = "all"  # all (every visible CUDA device, else one CPU worker) | none | "0,2"
    executor: str = "local"  # local | ray
    address: str | None = None  # Ray cluster address (executor ray); None: a running/local cluster
    reader: str | None = None  # "module:function" reading one study; None: volseg.io:read_image
    prefetch: int = 2  # studies read ahead of each worker
    collect: bool | None = None  # cohort tables at the end; None: yes unless this is one shard of many
    # each study's outputs, engine overrides, --trust-bundle and --force: as `volseg segment` takes them
    # (not its model, series, fast or roi_subset; its device is each worker's, from --gpus)
    segment: SegmentOptions = field(default_factory=SegmentOptions)
    log_file: bool = True  # OUT/logs/batch-<time>.log
    wait: bool = False  # another run holds the output folder (this shard): wait for it instead of failing
    anonymize_ids: bool = False  # study ids study-0001… instead of names from the input paths
    id_map: str | None = None  # CSV path,study_id giving the study ids (implies anonymized ids)

    @property
    def renames_ids(self) -> bool:
        return self.anonymize_ids or self.id_map is not None

    def output_options(self) -> dict[str, Any]:
        """What the studies' outputs depend on besides the models (recorded in completion records):
        html, dicom, keep_phi; the other output options and the engine overrides only when set, so
        default runs keep their key."""
        seg = self.segment
        extra = {name: getattr(seg, name) for name in _KEYED_IF_SET if getattr(seg, name) != _DEFAULT[name]}
        return {"html": seg.html, "dicom": seg.dicom, "keep_phi": seg.keep_phi, **extra, **seg.engine_flags()}

    def __post_init__(self) -> None:
        models = tuple(self.models)
        if len(set(models)) != len(models):
            raise UsageError(f"a model is named twice in {', '.join(models)}")
        object.__setattr__(self, "models", models)
        if self.executor not in EXECUTORS:
            raise UsageError(f"unknown executor {self.executor!r}", hint="use local or ray")
        if not _GPUS_RE.match(self.gpus.replace(" ", "")):
            raise UsageError(f"invalid --gpus {self.gpus!r}", hint="use all, none, or CUDA indices like 0,1")
        if self.id_map is not None:
            object.__setattr__(self, "id_map", str(self.id_map))
        if self.prefetch < 1:
            raise UsageError(f"prefetch must be at least 1, got {self.prefetch}")
        if not isinstance(self.segment, SegmentOptions):
            raise UsageError(f"segment must be a SegmentOptions, got {type(self.segment).__name__}")
        for name, flag in _NOT_FOR_BATCH.items():
            if getattr(self.segment, name) != getattr(_DEFAULT_OPTIONS, name):
                raise UsageError(f"{flag} of `volseg segment` does not apply to `volseg batch`",
                                 hint="name the models in BatchOptions.models; batch reads every series")


def parse_models(text: str | None) -> tuple[str, ...]:
    """``"a,b"`` → ``("a", "b")``; None or empty → () (the default model)."""
    if not text:
        return ()
    return tuple(name.strip() for name in text.split(",") if name.strip())


def worker_devices(gpus: str) -> list[str]:
    """One device per worker: every chosen CUDA device, else one CPU ('auto') worker."""
    gpus = gpus.replace(" ", "")
    if gpus in ("none", "cpu"):
        return ["cpu"]
    count = _cuda_count()
    if gpus == "all":
        return [f"cuda:{i}" for i in range(count)] or ["auto"]
    wanted = [int(i) for i in gpus.split(",")]
    missing = [i for i in wanted if i >= count]
    if missing:
        raise UsageError(f"GPU {missing[0]} requested but {count} CUDA device(s) visible",
                         hint="check CUDA_VISIBLE_DEVICES, or use --gpus all / none")
    return [f"cuda:{i}" for i in dict.fromkeys(wanted)]


def _cuda_count() -> int:
    import os

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0
    if os.name == "posix" and not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd",
                                                                   "/proc/driver/nvidia")):
        return 0  # no NVIDIA or ROCm driver: no need to import torch to find out
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
