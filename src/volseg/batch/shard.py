"""Splitting a cohort between jobs: ``--shard i/n``, by default from a SLURM job array.

Studies are sorted by id and shard ``i`` of ``n`` takes every ``n``-th one starting at ``i``
(round robin on the sorted list), so the shards are balanced to within one study and every study
belongs to exactly one shard. All shards must see the same folder (the same set of studies).

In a SLURM job array (``sbatch --array=0-3``) the shard comes from ``SLURM_ARRAY_TASK_ID``,
``SLURM_ARRAY_TASK_MIN``, ``SLURM_ARRAY_TASK_COUNT`` (and ``SLURM_ARRAY_TASK_STEP``,
``SLURM_ARRAY_TASK_MAX`` when present), so the same command line serves every array task.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from volseg.errors import UsageError

T = TypeVar("T")
_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(f"invalid shard {self.index}/{self.count}",
                             hint="use --shard i/n with 0 <= i < n, e.g. --shard 0/4")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's items of an already sorted sequence."""
        return list(items[self.index::self.count])


ALL = Shard(0, 1)


def parse_shard(text: str) -> Shard:
    """``"2/8"`` → ``Shard(2, 8)``."""
    match = _SHARD_RE.match(text or "")
    if not match:
        raise UsageError(f"invalid shard {text!r}", hint="use --shard i/n, e.g. --shard 0/4 (0-based)")
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_from_env(env: Mapping[str, str] | None = None) -> Shard | None:
    """The shard of this SLURM array task, or None outside a job array."""
    env = os.environ if env is None else env
    task = _int(env, "SLURM_ARRAY_TASK_ID")
    if task is None:
        return None
    low = _int(env, "SLURM_ARRAY_TASK_MIN") or 0
    step = _int(env, "SLURM_ARRAY_TASK_STEP") or 1
    count = _int(env, "SLURM_ARRAY_TASK_COUNT")
    high = _int(env, "SLURM_ARRAY_TASK_MAX")
    if count is None and high is not None:
        count = (high - low) // step + 1
    if count is None:
        raise UsageError("SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT or _MAX",
                         hint="pass --shard i/n explicitly")
    if (task - low) % step:
        raise UsageError(f"SLURM array task {task} is not on the array's grid {low}:{step}",
                         hint="pass --shard i/n explicitly")
    index = (task - low) // step
    if not 0 <= index < count:
        raise UsageError(f"SLURM array task {task} gives shard {index}/{count}, outside the array",
                         hint="use a contiguous array such as --array=0-7, or pass --shard i/n")
    return Shard(index, count)


def resolve_shard(given: str | Shard | None, env: Mapping[str, str] | None = None) -> Shard:
    """An explicit ``--shard`` wins; else the SLURM array task; else the whole cohort."""
    if isinstance(given, Shard):
        return given
    if given:
        return parse_shard(given)
    return shard_from_env(env) or ALL


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name}={value!r} is not an integer") from None
