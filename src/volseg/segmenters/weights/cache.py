"""Where weights live: ``$VOLSEG_HOME`` (default: the platform's user data dir), one folder per
model name and version, each with a manifest written last (a folder without one is not installed).

Layout::

    $VOLSEG_HOME/
      volseg.lock.json                  sha256 of every file the publisher did not pin
      downloads/<name>/<version>/       verified downloads and resumable ``.part`` files
      models/<name>/<version>/          the installed files (archives kept, extracted beside them)
        volseg-model.json               manifest: sha256 of every original and extracted file
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from volseg.errors import ModelError

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry

MANIFEST_NAME = "volseg-model.json"
MANIFEST_SCHEMA_VERSION = "1.0.0"
_CHUNK = 1 << 20


def volseg_home() -> Path:
    """``$VOLSEG_HOME`` or the platform's user data directory for volseg."""
    env = os.environ.get("VOLSEG_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("volseg", appauthor=False))


def offline_mode() -> bool:
    """``VOLSEG_OFFLINE=1`` (or true/yes): never touch the network."""
    return os.environ.get("VOLSEG_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def models_root() -> Path:
    return volseg_home() / "models"


def model_dir(name: str, version: str) -> Path:
    return models_root() / name / version


def downloads_dir(name: str, version: str) -> Path:
    return volseg_home() / "downloads" / name / version


def sha256_file(path: str | Path) -> str:
    return file_digest(path, "sha256")


_SHA256_SEEN: dict[tuple[str, int, int, int, int], str] = {}


def cached_sha256(path: str | Path) -> str:
    """sha256 of ``path``, hashed once per process while its size, mtime, inode and device hold."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    digest = _SHA256_SEEN.get(key)
    if digest is None:
        digest = _SHA256_SEEN[key] = sha256_file(path)
    return digest


def weight_records(paths, *, relative_to: Path | None = None) -> list[dict[str, str]]:
    """``[{"file", "sha256"}]`` of a loaded model's weight files, for its provenance. Segmenters hash
    once when they load, not for every study they report."""
    return [{"file": str(Path(p).relative_to(relative_to)) if relative_to else Path(p).name,
             "sha256": cached_sha256(p)} for p in paths]


def file_digest(path: str | Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class InstalledFile:
    name: str
    sha256: str
    size_bytes: int
    pinned_by: str  # "catalogue" | "lock" | "recorded" (first install recorded it in the lock)


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    source: str  # "download" | "folder" | "file" | "bundle"
    files: tuple[InstalledFile, ...]
    extracted: dict[str, str]  # path relative to the model folder → sha256

    def to_json(self) -> str:
        return json.dumps({
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "name": self.name, "version": self.version, "source": self.source,
            "files": [f.__dict__ for f in self.files],
            "extracted": dict(sorted(self.extracted.items())),
        }, indent=2) + "\n"

    @classmethod
    def read(cls, folder: Path) -> "Manifest":
        path = folder / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(data["name"], data["version"], data["source"],
                       tuple(InstalledFile(**f) for f in data["files"]), dict(data["extracted"]))
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"unreadable model manifest ({exc})", path=path) from exc


def read_manifest(name: str, version: str) -> Manifest | None:
    folder = model_dir(name, version)
    try:
        return Manifest.read(folder)
    except FileNotFoundError:
        return None


def is_unpacked_install(entry: ModelEntry, manifest: Manifest) -> bool:
    """True when the model was installed from an unpacked folder (its archives are not kept)."""
    kept = {f.name for f in manifest.files}
    return any(w.archive is not None and w.name not in kept for w in entry.weights)
