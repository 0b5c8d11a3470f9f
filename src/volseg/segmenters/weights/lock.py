"""The lock file: the sha256 of every weight file whose publisher gives no hash.

The first download (or offline install) of such a file records its sha256 here; every later
install must match it. ``volseg models lock -o FILE`` exports the hashes of everything installed,
and ``--require-lock`` makes an install refuse any file whose name and sha256 are not in the lock.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from volseg.errors import ModelError

LOCK_NAME = "volseg.lock.json"
LOCK_SCHEMA_VERSION = "1.0.0"


@dataclass
class LockFile:
    """``models[name] = {"version": ..., "files": {file: {"sha256", "size_bytes", "url"}}}``."""

    models: dict[str, dict] = field(default_factory=dict)

    def sha256(self, name: str, version: str, file_name: str) -> str | None:
        model = self.models.get(name)
        if not model or model.get("version") != version:
            return None
        record = model.get("files", {}).get(file_name)
        return record.get("sha256") if record else None

    def record(self, name: str, version: str, file_name: str, *, sha256: str, size_bytes: int,
               url: str | None) -> None:
        model = self.models.setdefault(name, {"version": version, "files": {}})
        if model.get("version") != version:  # a new version replaces the old pins
            model.clear()
            model.update({"version": version, "files": {}})
        known = model["files"].get(file_name)
        if known and known["sha256"] != sha256:
            raise ModelError(f"lock already pins {name} {version} {file_name} to sha256 {known['sha256']}, "
                             f"not {sha256}")
        model["files"][file_name] = {"sha256": sha256, "size_bytes": size_bytes, "url": url}

    def to_json(self) -> str:
        models = {k: self.models[k] for k in sorted(self.models)}
        return json.dumps({"schema_version": LOCK_SCHEMA_VERSION, "models": models}, indent=2) + "\n"


def default_lock_path() -> Path:
    from volseg.segmenters.weights.cache import volseg_home

    return volseg_home() / LOCK_NAME


def read_lock(path: str | Path | None = None) -> LockFile:
    """The lock at ``path`` (default: ``$VOLSEG_HOME/volseg.lock.json``); empty when absent."""
    path = Path(path) if path else default_lock_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return LockFile()
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable lock file ({exc})", path=path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ModelError("not a volseg lock file (no 'models' object)", path=path)
    for name, model in data["models"].items():
        if not isinstance(model, dict) or "version" not in model or not isinstance(model.get("files"), dict):
            raise ModelError(f"lock entry {name!r} needs 'version' and 'files'", path=path)
    return LockFile(data["models"])


def write_lock(lock: LockFile, path: str | Path | None = None) -> Path:
    from volseg.io.atomic import write_text

    path = Path(path) if path else default_lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, lock.to_json())


def build_lock() -> LockFile:
    """A lock pinning every file of every installed model (plus the recorded pins of others)."""
    from volseg.segmenters.catalogue import load_catalogue
    from volseg.segmenters.weights.cache import is_unpacked_install, model_dir, read_manifest

    lock = read_lock()
    for entry in load_catalogue().values():
        manifest = read_manifest(entry.name, entry.version) if entry.needs_weights else None
        if manifest is None:
            continue
        for f in manifest.files:
            lock.record(entry.name, entry.version, f.name, sha256=f.sha256, size_bytes=f.size_bytes,
                        url=entry.weight(f.name).url)
        if is_unpacked_install(entry, manifest):  # no archive to pin: pin what was unpacked
            folder = model_dir(entry.name, entry.version)
            for rel, sha in sorted(manifest.extracted.items()):
                lock.record(entry.name, entry.version, rel, sha256=sha,
                            size_bytes=(folder / rel).stat().st_size, url=None)
    return lock
