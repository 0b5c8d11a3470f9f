"""The engine's settings: one frozen dataclass whose defaults are the tested, fast ones.

Every backend passes an :class:`EngineSettings`; catalogue entries may override fields through their
backend options. The defaults are the settings whose fidelity ``tests/backends`` establishes against
nnU-Net's own predictor.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from volseg.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: ``skip_air``: a window is air when every input voxel it covers is below this (Hounsfield units)
AIR_HU = -900.0
#: ``skip_air``: the constant intensity of the air window whose network answer stands in for skipped ones
AIR_WINDOW_HU = -1000.0
EXPORTS = ("exact", "nearest")
BLENDS = ("auto", "features", "logits")
ACCUMULATORS = ("auto", "device", "cpu")


@dataclass(frozen=True)
class EngineSettings:
    #: window step as a fraction of the patch (nnU-Net's ``tile_step_size``): 0.5 = 50 % overlap
    step: float = 0.5
    #: windows per network call; halved automatically after a CUDA out-of-memory error
    window_batch: int = 1
    #: mirroring test-time augmentation over the axes the checkpoint allows (8× the work in 3-D)
    mirror: bool = False
    #: network precision: auto = fp16 autocast on CUDA, bf16 on CPUs with native bf16, else fp32
    precision: str = "auto"
    #: channels_last_3d memory format for network and windows (measured slower on CPU; off)
    channels_last: bool = False
    #: how labels return to the input grid: "exact" = nnU-Net's score resampling, computed only
    #: where neighbouring model voxels disagree; "nearest" = label map by nearest neighbour only
    export: str = "exact"
    #: what the windows blend: the network's last features (then the 1×1×1 head once per voxel,
    #: which is exactly the same blend since the head is affine), its logits, or auto (cheaper one)
    blend: str = "auto"
    #: where the blended sums live: on the compute device, on the CPU, or auto (device, CPU on OOM)
    accumulator: str = "auto"
    #: ensemble members to run: the first N (nnU-Net folds, BLAST-CT networks); None = all of them.
    #: Not a window setting: only backends that run an ensemble honour it
    members: int | None = None
    #: CT only: windows whose input lies wholly below :data:`AIR_HU` (after the model's own crop) are
    #: not run; they contribute the network's answer for a window of pure air, computed once. Off by
    #: default (the publishers do not skip windows); see benchmarks/bench_scale_results.md
    skip_air: bool = False

    def __post_init__(self) -> None:
        if self.members is not None and (isinstance(self.members, bool) or int(self.members) < 1):
            raise UsageError(f"--members must be at least 1, got {self.members}",
                             hint="give how many ensemble members to run, e.g. --members 2")
        if not 0.0 < float(self.step) <= 1.0:
            raise UsageError(f"window step must be in (0, 1], got {self.step}")
        if int(self.window_batch) < 1:
            raise UsageError(f"window batch must be at least 1, got {self.window_batch}")
        for name, allowed in (("precision", PRECISIONS), ("export", EXPORTS), ("blend", BLENDS),
                              ("accumulator", ACCUMULATORS)):
            value = getattr(self, name)
            if value not in allowed:
                raise UsageError(f"invalid {name} {value!r}", hint=f"choose one of: {', '.join(allowed)}")

    def with_options(self, **given: Any) -> EngineSettings:
        """These settings with the given fields replaced (None values ignored)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(given) - names)
        if unknown:
            raise UsageError(f"unknown engine setting(s): {', '.join(unknown)}",
                             hint=f"known: {', '.join(sorted(names))}")
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """Every setting by name; ``members`` only when set (all members: nothing to record)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not (f.name == "members" and self.members is None) and not (f.name == "skip_air" and
                                                                               not self.skip_air)}

    def overridden_by(self, overrides: EngineOverrides | None) -> EngineSettings:
        """These settings with the user's overrides applied (unset overrides keep these values)."""
        return self if overrides is None else self.with_options(**overrides.changes())


@dataclass(frozen=True)
class EngineOverrides:
    """The engine settings a user chose (CLI flags ``--step``, ``--tta``, ``--precision``, ``--export``,
    ``--members``, ``--skip-air``);
    None keeps the model's catalogued, tested value. Names are :class:`EngineSettings` field names."""

    step: float | None = None  # window step as a fraction of the patch (0.5 = 50 % overlap)
    mirror: bool | None = None  # mirroring test-time augmentation, ``--tta`` (8× the work in 3-D)
    precision: str | None = None  # auto | fp32 | bf16 | fp16
    export: str | None = None  # exact | nearest: how labels return to the input grid
    members: int | None = None  # run the first N ensemble members (nnU-Net folds, BLAST-CT networks)
    skip_air: bool | None = None  # ``--skip-air``: CT windows wholly below AIR_HU are not run

    def __post_init__(self) -> None:
        EngineSettings().overridden_by(self)  # invalid values fail now, not when a model loads

    def changes(self) -> dict[str, Any]:
        """The overrides that are set, by :class:`EngineSettings` field name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def __bool__(self) -> bool:
        return bool(self.changes())
