"""Reduced precision for the network only: which autocast dtype to use on which device.

Blending, normalisation, resampling and the final head always run in float32. ``auto`` means fp16
autocast on CUDA (what nnU-Net does there), bf16 on a CPU with native bf16 instructions
(AVX512-BF16 / AMX: about 3× faster than fp32 for a 3-D U-Net, with label agreement measured in
``tests/backends``) and fp32 elsewhere (emulated bf16 is slower than fp32).
"""
from __future__ import annotations

import contextlib
from functools import lru_cache
from typing import TYPE_CHECKING

from volseg.errors import UsageError

if TYPE_CHECKING:
    import torch


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32."""
    import torch

    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return None
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if device.type == "cpu" and dtype == torch.float16:
        raise UsageError("fp16 is not supported on the CPU", hint="use bf16 or fp32 on the CPU")
    if device.type == "mps" and dtype == torch.bfloat16:
        raise UsageError("bf16 is not supported on MPS", hint="use fp16 or fp32 on MPS")
    return dtype


def precision_name(dtype: torch.dtype | None) -> str:
    import torch

    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A context manager running the network under autocast(dtype), or a no-op for fp32."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bf16 natively here (AVX512-BF16 or AMX), so bf16 pays off."""
    import torch

    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        if check is None or not bool(check()):
            return False
    except RuntimeError:
        return False
    return _cpu_flags_have(("avx512_bf16", "amx_bf16"))


def _cpu_flags_have(flags: tuple[str, ...]) -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return any(flag in present for flag in flags)
    except OSError:
        pass
    return False
