"""Turn a device option (``auto | cpu | cuda | cuda:N | mps``) into a ``torch.device``, or say why not.

``auto`` picks the first CUDA device, else Apple's MPS, else the CPU. Asking for a device this
machine does not have is a :class:`~volseg.errors.UsageError` naming what is there, never a silent
fall back to the CPU: a user who asked for the GPU wants to know it is not used.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from volseg.errors import UsageError

if TYPE_CHECKING:
    import torch

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda)(:(\d+))?$")


def resolve_device(name: str | None = "auto") -> torch.device:
    """The ``torch.device`` for ``name``; raises UsageError when it is malformed or absent here."""
    import torch

    text = (name or "auto").strip().lower()
    match = _DEVICE_RE.match(text)
    if not match or (match.group(2) and match.group(1) != "cuda"):
        raise UsageError(f"invalid device {name!r}", hint="use auto, cpu, cuda, cuda:N or mps")
    kind, index = match.group(1), match.group(3)
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not _mps_available():
            raise UsageError("device 'mps' requested but Apple MPS is not available on this machine",
                             hint=f"available: {', '.join(available_devices())}")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise UsageError(f"device {name!r} requested but no CUDA device is available",
                         hint=f"available: {', '.join(available_devices())}; "
                              "is a CUDA build of torch installed?")
    n = torch.cuda.device_count()
    i = int(index) if index is not None else 0
    if i >= n:
        raise UsageError(f"device {name!r} requested but this machine has {n} CUDA device(s)",
                         hint=f"use cuda:0 … cuda:{n - 1}")
    return torch.device("cuda", i)


def available_devices() -> list[str]:
    """Device names usable here, e.g. ['cpu', 'cuda:0']."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def describe_device(device: torch.device) -> str:
    """'cpu (2 threads)', 'cuda:0 (NVIDIA H100)' — for provenance and logs."""
    import torch

    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
