"""Out of GPU memory: retry with a smaller window batch, then with the blended scores on the CPU.

Only ``torch.cuda.OutOfMemoryError`` is caught; every other error propagates unchanged. Each
fallback taken is returned as a sentence for the report's provenance.
"""
from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from volseg.errors import ModelError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    window_batch: int
    accumulator_device: torch.device


def next_attempt(attempt: Attempt, *, allow_cpu_accumulator: bool) -> tuple[Attempt, str] | None:
    """The cheaper attempt after an out-of-memory error and why, or None when nothing is left."""
    import torch

    if attempt.window_batch > 1:
        smaller = max(1, attempt.window_batch // 2)
        return (replace(attempt, window_batch=smaller),
                f"CUDA out of memory: window batch reduced from {attempt.window_batch} to {smaller}")
    if allow_cpu_accumulator and attempt.accumulator_device.type != "cpu":
        return (replace(attempt, accumulator_device=torch.device("cpu")),
                "CUDA out of memory: blended scores kept in CPU memory instead of on the GPU")
    return None


def with_oom_fallback(run: Callable[[Attempt], T], first: Attempt, *, compute_device: torch.device,
                      allow_cpu_accumulator: bool = True) -> tuple[T, list[str]]:
    """``run(attempt)`` until it fits in memory; returns its result and the fallbacks taken."""
    import torch

    fallbacks: list[str] = []
    attempt = first
    while True:
        failed = False
        try:
            return run(attempt), fallbacks
        except torch.cuda.OutOfMemoryError:
            failed = True  # leave the except block first, so the failed frames can be freed
        if failed:
            release_memory(compute_device)
            step = next_attempt(attempt, allow_cpu_accumulator=allow_cpu_accumulator)
            if step is None:
                raise ModelError("out of GPU memory even with one window at a time and scores on the CPU",
                                 hint="use --device cpu, or a GPU with more memory")
            attempt, reason = step
            log.warning("%s; retrying", reason)
            fallbacks.append(reason)


def release_memory(device: torch.device) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
