"""Synthetic weight files and catalogue entries for the weights-manager tests."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile


def payload(seed: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes (incompressible, so sizes are what they say)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def nnunet_zip() -> bytes:
    """A zip laid out like an nnU-Net trained-model folder (as TotalSegmentator ships them)."""
    buf = io.BytesIO()
    base = "Dataset999_Test/nnUNetTrainer__nnUNetPlans__3d_fullres"
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{base}/dataset.json", json.dumps({"labels": {"background": 0, "a": 1, "b": 2}}))
        zf.writestr(f"{base}/plans.json", json.dumps({"configurations": {}}))
        zf.writestr(f"{base}/fold_0/checkpoint_final.pth", payload(7, 20_000))
    return buf.getvalue()


TEST_ENTRY_FILES = {"weights_a.pt": payload(1, 30_000), "Dataset999_Test.zip": nnunet_zip()}


def make_entry(*, pin: bool, name: str = "testnet") -> dict:
    """A catalogue entry whose files the tests serve: one plain file, one nnU-Net zip."""
    members = ["Dataset999_Test/nnUNetTrainer__nnUNetPlans__3d_fullres/" + m
               for m in ("dataset.json", "plans.json", "fold_0/checkpoint_final.pth")]
    return {
        "name": name, "version": "1.0.0", "title": "test network", "task": "other", "modality": "CT",
        "region": "whole body", "classes": [{"index": 1, "name": "a"}, {"index": 2, "name": "b"}],
        "input": {"intensity": {"kind": "none"}}, "backend": "nnunet",
        "weights": [
            {"name": "weights_a.pt", "url": "https://example.invalid/weights_a.pt",
             "sha256": sha256(TEST_ENTRY_FILES["weights_a.pt"]) if pin else None,
             "size_bytes": len(TEST_ENTRY_FILES["weights_a.pt"])},
            {"name": "Dataset999_Test.zip", "url": "https://example.invalid/Dataset999_Test.zip",
             "sha256": sha256(TEST_ENTRY_FILES["Dataset999_Test.zip"]) if pin else None,
             "archive": "zip", "members": members},
        ],
        "licence": "test", "commercial_use": None, "citation": "none",
    }
