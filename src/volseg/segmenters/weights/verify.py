"""Re-hash what is installed: every original weight file and every file extracted from archives."""
from __future__ import annotations

from dataclasses import dataclass

from volseg.errors import ModelError
from volseg.segmenters.catalogue import get_entry, load_catalogue
from volseg.segmenters.weights.cache import model_dir, read_manifest, sha256_file
from volseg.segmenters.weights.install import HashPolicy, install_hint


@dataclass(frozen=True)
class FileCheck:
    name: str  # path relative to the model folder
    expected: str | None
    actual: str | None  # None: the file is missing

    @property
    def ok(self) -> bool:
        return self.actual is not None and self.actual == self.expected


@dataclass(frozen=True)
class VerifyReport:
    name: str
    version: str
    checks: tuple[FileCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[str]:
        out = []
        for c in self.checks:
            if c.actual is None:
                out.append(f"{c.name}: missing")
            elif not c.ok:
                out.append(f"{c.name}: expected sha256 {c.expected}, got {c.actual}")
        return out


def verify(name: str, *, extracted: bool = True) -> VerifyReport:
    """Re-hash an installed model against the catalogue/lock and its install manifest."""
    entry = get_entry(name)
    manifest = read_manifest(entry.name, entry.version)
    if manifest is None:
        raise ModelError(f"model {name!r} ({entry.version}) is not installed", hint=install_hint(name))
    folder = model_dir(entry.name, entry.version)
    recorded = {f.name: f.sha256 for f in manifest.files}
    policy = HashPolicy()
    checks = []
    for wf in entry.weights:
        if wf.archive is not None and wf.name not in recorded and manifest.extracted:
            continue  # installed from an unpacked folder: its members are checked below
        expected = policy.expected(entry, wf)[0] or recorded.get(wf.name)
        path = folder / wf.name
        checks.append(FileCheck(wf.name, expected, sha256_file(path) if path.is_file() else None))
    if extracted:
        for rel, sha in sorted(manifest.extracted.items()):
            path = folder / rel
            checks.append(FileCheck(rel, sha, sha256_file(path) if path.is_file() else None))
    return VerifyReport(entry.name, entry.version, tuple(checks))


def installed_models() -> list[str]:
    """Names of catalogued models whose current version is installed."""
    return [e.name for e in load_catalogue().values()
            if e.needs_weights and read_manifest(e.name, e.version) is not None]
