"""The options of ``volseg compare`` (their one home, with their defaults)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from volseg.errors import UsageError

REGISTRATIONS = ("auto", "image", "label_map", "none")


@dataclass(frozen=True)
class CompareOptions:
    """How two (or more) studies are aligned and their lesions matched.

    ``interval_days``: days between consecutive time points (one per follow-up) when the studies do not
    record their dates; ``registration``: ``auto`` registers the images when both are known, else the label
    maps; ``image``/``label_map`` insist; ``none`` assumes the studies share one physical space.
    A registration is flagged poor when the organ centroids stay more than ``poor_residual_mm`` apart after
    alignment or the organs' mean Dice stays under ``poor_dice``.
    """

    match_tolerance_mm: float = 10.0
    min_match_dice: float = 0.05
    poor_residual_mm: float = 10.0
    poor_dice: float = 0.5
    registration: str = "auto"
    interval_days: tuple[float, ...] | None = None
    iterations: int = 100

    def __post_init__(self) -> None:
        if not (math.isfinite(self.match_tolerance_mm) and self.match_tolerance_mm > 0):
            raise UsageError(f"--match-tolerance-mm must be a positive number of mm, got {self.match_tolerance_mm}")
        if not 0.0 <= self.min_match_dice <= 1.0:
            raise UsageError(f"the minimum match Dice must lie in [0, 1], got {self.min_match_dice}")
        if not (math.isfinite(self.poor_residual_mm) and self.poor_residual_mm > 0):
            raise UsageError(f"the poor-registration residual must be positive, got {self.poor_residual_mm}")
        if not 0.0 <= self.poor_dice <= 1.0:
            raise UsageError(f"the poor-registration Dice must lie in [0, 1], got {self.poor_dice}")
        if self.registration not in REGISTRATIONS:
            raise UsageError(f"--registration {self.registration!r} is not one of {', '.join(REGISTRATIONS)}")
        if self.interval_days is not None and any(not (math.isfinite(d) and d > 0) for d in self.interval_days):
            raise UsageError(f"--interval-days must be positive numbers of days, got {self.interval_days}")
        if self.iterations < 1:
            raise UsageError(f"registration iterations must be at least 1, got {self.iterations}")
