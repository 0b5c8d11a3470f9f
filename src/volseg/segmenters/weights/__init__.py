"""The weights manager: a verified, offline-capable cache of pretrained model files.

Backends locate weights with :func:`require_installed` (a ModelError naming the install command
when they are missing) and load checkpoints with ``torch.load(..., weights_only=True)``.
"""
from volseg.segmenters.weights.archive import ArchiveLimits, safe_extract
from volseg.segmenters.weights.bundle import export_bundle, install_from_source
from volseg.segmenters.weights.cache import (
    Manifest,
    model_dir,
    offline_mode,
    read_manifest,
    sha256_file,
    volseg_home,
    weight_records,
)
from volseg.segmenters.weights.download import DownloadResult, fetch
from volseg.segmenters.weights.install import (
    InstallResult,
    download_model,
    install_hint,
    installed_path,
    require_installed,
)
from volseg.segmenters.weights.lock import LockFile, read_lock, write_lock
from volseg.segmenters.weights.verify import FileCheck, VerifyReport, installed_models, verify

__all__ = [
    "ArchiveLimits", "DownloadResult", "FileCheck", "InstallResult", "LockFile", "Manifest", "VerifyReport",
    "download_model", "export_bundle", "fetch", "install_from_source", "install_hint", "installed_models",
    "installed_path", "model_dir", "offline_mode", "read_lock", "read_manifest", "require_installed",
    "safe_extract", "sha256_file", "verify", "volseg_home", "weight_records", "write_lock",
]
