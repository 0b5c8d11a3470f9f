"""The model-management half of volseg's Python API (re-exported by :mod:`volseg.api`).

>>> from volseg import api
>>> [s.entry.name for s in api.model_statuses() if s.installed]
>>> api.download_models(["total"])                      # verified, resumable, recorded in the lock
>>> api.install_models("bundle.zip")                    # offline: a bundle, a folder or one file
>>> api.verify_models()                                 # re-hash everything installed
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from volseg.segmenters.base import ProgressCallback, no_progress

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry
    from volseg.segmenters.weights import InstallResult, LockFile, VerifyReport


@dataclass(frozen=True)
class ModelStatus:
    entry: "ModelEntry"
    installed: bool  # True for built-in models, which need no weights
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def reference(self) -> str:
        """What ``-m NAME`` reproduces, e.g. "TotalSegmentator pipeline: RAS reorientation, …"."""
        from volseg.segmenters.weights.publishers import model_reference

        return model_reference(self.entry)

    @property
    def path_reference(self) -> str | None:
        """What ``--model PATH`` on this model's nnU-Net folder follows instead (None: not an nnU-Net model)."""
        from volseg.segmenters.weights.publishers import PATH_REFERENCE

        return PATH_REFERENCE if self.entry.backend == "nnunet" else None


def _status(entry: "ModelEntry") -> ModelStatus:
    from volseg.segmenters.weights import installed_path

    if not entry.needs_weights:
        return ModelStatus(entry, True, None)
    path = installed_path(entry.name)
    return ModelStatus(entry, path is not None, path)


def model_statuses() -> list[ModelStatus]:
    """Every catalogued model with its installed state (catalogue order: by name)."""
    from volseg.segmenters.catalogue import load_catalogue

    return [_status(e) for e in load_catalogue().values()]


def show_model(name: str) -> ModelStatus:
    """One catalogue entry (classes, input expectations, citation) and whether it is installed."""
    from volseg.segmenters.catalogue import get_entry

    return _status(get_entry(name))


def download_models(names: Iterable[str], *, require_lock: bool = False, lock_path: str | Path | None = None,
                    force: bool = False, progress: ProgressCallback = no_progress) -> list["InstallResult"]:
    """Download, verify (sha256 before install) and install each model; resumes partial files."""
    from volseg.segmenters.catalogue import get_entry
    from volseg.segmenters.weights import download_model

    names = list(dict.fromkeys(names))
    for name in names:  # unknown names fail before anything is fetched
        get_entry(name)
    return [download_model(n, require_lock=require_lock, lock_path=lock_path, force=force, progress=progress)
            for n in names]


def install_models(source: str | Path, *, model: str | None = None, require_lock: bool = False,
                   lock_path: str | Path | None = None) -> list["InstallResult"]:
    """Install offline from a bundle zip, a folder of weight files or a single file."""
    from volseg.segmenters.weights import install_from_source

    return install_from_source(source, model=model, require_lock=require_lock, lock_path=lock_path)


def export_models(names: Iterable[str], out: str | Path) -> Path:
    """Write installed models into one bundle zip for an air-gapped machine."""
    from volseg.segmenters.weights import export_bundle

    return export_bundle(list(names), out)


def verify_models(names: Iterable[str] | None = None) -> list["VerifyReport"]:
    """Re-hash installed models (default: every installed model)."""
    from volseg.segmenters.weights import installed_models, verify

    return [verify(n) for n in (list(names) if names else installed_models())]


def export_lock(out: str | Path | None = None) -> "LockFile":
    """The lock pinning every installed file; written to ``out`` when given."""
    from volseg.segmenters.weights.lock import build_lock, write_lock

    lock = build_lock()
    if out is not None:
        write_lock(lock, out)
    return lock
