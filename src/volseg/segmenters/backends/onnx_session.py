"""An onnxruntime session on the chosen device: shared by the ONNX and Raidionics backends."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from volseg.errors import DependencyError, ModelError


def make_session(path: Path, device) -> tuple[Any, list[str]]:
    """An onnxruntime session on CUDA (when asked for and available) or the CPU."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError as exc:
        raise DependencyError("ONNX models need the Python package 'onnxruntime'",
                              hint="pip install 'volseg[onnx]'") from exc
    available = ort.get_available_providers()
    providers: list[str | tuple[str, dict[str, Any]]] = ["CPUExecutionProvider"]
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ModelError("device is CUDA but onnxruntime has no CUDA provider here",
                             hint="pip install onnxruntime-gpu, or use --device cpu")
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    options = ort.SessionOptions()
    import torch

    options.intra_op_num_threads = max(1, torch.get_num_threads())
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for broken files
        raise ModelError(f"onnxruntime cannot load the model: {str(exc).splitlines()[0][:200]}", path=path) from exc
    return session, [p if isinstance(p, str) else p[0] for p in providers]
