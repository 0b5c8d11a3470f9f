"""Offline installation: from a folder of weight files, a single file, or a volseg bundle.

A *bundle* is a zip written by ``export_bundle`` on a connected machine: the original weight files
of one or more installed models under ``models/<name>/<version>/`` plus ``volseg-bundle.json``
(their sha256). Installing one checks every file against the catalogue (or lock) exactly like a
download. A plain folder is matched to catalogue entries by file name and hash: without
``model=...`` only entries whose hashes are pinned (catalogue or lock) are matched automatically.
"""
from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from volseg.errors import InputError, ModelError
from volseg.segmenters.catalogue import ModelEntry, get_entry, load_catalogue
from volseg.segmenters.weights.archive import safe_extract
from volseg.segmenters.weights.cache import is_unpacked_install, model_dir, read_manifest, volseg_home
from volseg.segmenters.weights.install import HashPolicy, InstallResult, commit, require_installed
from volseg.segmenters.weights.publishers import publisher
from volseg.segmenters.weights.unpacked import (
    UnpackedPlan,
    commit_unpacked,
    plan_unpacked,
)

BUNDLE_MANIFEST = "volseg-bundle.json"
BUNDLE_SCHEMA_VERSION = "1.0.0"


def install_from_source(source: str | Path, *, model: str | None = None, require_lock: bool = False,
                        lock_path: str | Path | None = None) -> list[InstallResult]:
    """Install weights offline from a bundle zip, a folder or one file. Never touches the network."""
    source = Path(source)
    if not source.exists():
        raise InputError("no such file or folder", path=source)
    policy = HashPolicy(require_lock=require_lock, lock_path=lock_path)
    if source.is_file() and _is_bundle_zip(source):
        return _install_bundle_zip(source, model=model, policy=policy)
    if source.is_dir() and (source / BUNDLE_MANIFEST).is_file():
        return _install_bundle_dir(source, model=model, policy=policy, origin="bundle")
    files = _scan(source)
    entries = [get_entry(model)] if model else [e for e in load_catalogue().values() if e.needs_weights]
    complete = [e for e in entries if all(w.name in files for w in e.weights)]
    unpacked = _unpacked_plans(source, [e for e in entries if e not in complete], explicit=bool(model))
    if model and not complete and not unpacked:
        missing = [w.name for w in entries[0].weights if w.name not in files]
        layout = plan_unpacked(entries[0], source, explicit=True) if source.is_dir() else None
        alt = f" (nor, unpacked, {', '.join(layout.missing[:3])})" if layout and layout.missing else ""
        raise ModelError(f"{source.name} lacks {len(missing)} file(s) of {model}: {', '.join(missing[:4])}"
                         + alt, path=source)
    if not model:
        complete = [e for e in complete if _pinned(e, policy)]
    if not complete and not unpacked:
        raise ModelError("no catalogued model is complete in this folder", path=source,
                         hint=_closest_hint(files, entries, policy))
    origin = "file" if source.is_file() else "folder"
    results = [commit_unpacked(p, policy=policy, origin=f"{publisher(p.entry)} folder {source.name}")
               for p in unpacked]
    for entry in complete:
        picked = {w.name: _one(files, w.name, source) for w in entry.weights}
        results.append(commit(entry, picked, policy=policy, origin=f"{origin} {source.name}"))
    return results


def _unpacked_plans(source: Path, entries: list[ModelEntry], *, explicit: bool) -> list[UnpackedPlan]:
    """Entries whose archives ``source`` holds unpacked, as their publisher's program lays them out."""
    if not source.is_dir():
        return []
    plans = [plan_unpacked(e, source, explicit=explicit) for e in entries]
    return [p for p in plans if p.complete]


def _is_bundle_zip(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return BUNDLE_MANIFEST in zf.namelist()


def _scan(source: Path) -> dict[str, list[Path]]:
    if source.is_file():
        return {source.name: [source]}
    found: dict[str, list[Path]] = {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        hidden = any(p.startswith(".") for p in rel.parts)
        if path.is_file() and not hidden and not path.name.endswith(".part"):
            found.setdefault(path.name, []).append(path)
    return found


def _one(files: dict[str, list[Path]], name: str, source: Path) -> Path:
    paths = files[name]
    if len(paths) > 1:
        raise ModelError(f"{name} appears {len(paths)} times in this folder; keep one", path=source)
    return paths[0]


def _pinned(entry: ModelEntry, policy: HashPolicy) -> bool:
    return all(policy.expected(entry, w)[0] for w in entry.weights)


def _closest_hint(files: dict[str, list[Path]], entries: list[ModelEntry], policy: HashPolicy) -> str:
    scored = sorted(((sum(w.name in files for w in e.weights), e) for e in entries), key=lambda t: -t[0])
    if not scored or scored[0][0] == 0:
        return "the file names match no catalogued weights; see `volseg models show NAME`"
    best = scored[0][1]
    missing = [w.name for w in best.weights if w.name not in files]
    if missing:
        return f"closest: {best.name}, missing {', '.join(missing[:4])}"
    return (f"{best.name}'s files are there but the catalogue pins no hash for them: "
            f"install them explicitly with --model {best.name}")


# ---- bundles -----------------------------------------------------------------------------------
def _install_bundle_zip(path: Path, *, model: str | None, policy: HashPolicy) -> list[InstallResult]:
    volseg_home().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=volseg_home()) as tmp:
        root = Path(tmp) / "bundle"
        safe_extract(path, root)
        return _install_bundle_dir(root, model=model, policy=policy, origin=f"bundle {path.name}")


def _install_bundle_dir(root: Path, *, model: str | None, policy: HashPolicy,
                        origin: str) -> list[InstallResult]:
    manifest = _read_bundle_manifest(root)
    wanted = [m for m in manifest["models"] if model is None or m["name"] == model]
    if not wanted:
        raise ModelError(f"the bundle holds no model {model!r}", path=root)
    results = []
    for item in wanted:
        entry = get_entry(item["name"])
        if item["version"] != entry.version:
            raise ModelError(f"the bundle holds {entry.name} {item['version']}, "
                             f"the catalogue wants {entry.version}")
        listed = {f["name"]: f for f in item["files"]}
        sources = {}
        for wf in entry.weights:
            if wf.name not in listed:
                raise ModelError(f"the bundle lacks {wf.name} of {entry.name}")
            path = root / "models" / entry.name / entry.version / wf.name
            if not path.is_file():
                raise ModelError(f"the bundle lists but does not hold {wf.name} of {entry.name}")
            sources[wf.name] = path
        result = commit(entry, sources, policy=policy, origin=origin)
        for f in result.files:  # the bundle's own record must agree with what arrived
            if listed[f.name]["sha256"] != f.sha256:
                raise ModelError(f"bundle manifest says {f.name} has sha256 {listed[f.name]['sha256']}, "
                                 f"the file has {f.sha256}")
        results.append(result)
    return results


def _read_bundle_manifest(root: Path) -> dict:
    path = root / BUNDLE_MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        for m in data["models"]:
            if not (isinstance(m["name"], str) and isinstance(m["version"], str)):
                raise TypeError("model name and version must be strings")
            if not all(isinstance(f["name"], str) and isinstance(f["sha256"], str) for f in m["files"]):
                raise TypeError("file name and sha256 must be strings")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"not a volseg bundle manifest ({exc})", path=path) from exc
    return data


def export_bundle(names: list[str], out_zip: str | Path) -> Path:
    """Write the original weight files of installed models into one zip for an offline machine."""
    from volseg import __version__
    from volseg.io.atomic import atomic_path
    from volseg.segmenters.weights.verify import verify

    if not names:
        raise ModelError("name at least one model to export")
    models = []
    for name in dict.fromkeys(names):
        entry = get_entry(name)
        require_installed(entry.name, check_hashes=False)  # verify re-hashes and says what differs
        installed = read_manifest(entry.name, entry.version)
        if installed is not None and is_unpacked_install(entry, installed):
            raise ModelError(f"{entry.name} was installed from an unpacked folder, without the "
                             "publisher's archives a bundle carries; not exported",
                             hint=f"copy that folder instead and run `volseg models install FOLDER "
                                  f"-m {entry.name}` on the other machine")
        report = verify(entry.name, extracted=False)
        if not report.ok:
            raise ModelError(f"{entry.name} fails verification ({report.problems[0]}); not exported",
                             hint=f"reinstall it with `volseg models download {entry.name} --force`")
        models.append((entry, report))
    out_zip = Path(out_zip)
    manifest = {"schema_version": BUNDLE_SCHEMA_VERSION, "created_by": f"volseg {__version__}", "models": [
        {"name": e.name, "version": e.version,
         "files": [{"name": c.name, "sha256": c.actual,
                    "size_bytes": (model_dir(e.name, e.version) / c.name).stat().st_size} for c in r.checks]}
        for e, r in models]}
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr(BUNDLE_MANIFEST, json.dumps(manifest, indent=2) + "\n")
            for entry, _ in models:
                folder = model_dir(entry.name, entry.version)
                for wf in entry.weights:
                    zf.write(folder / wf.name, f"models/{entry.name}/{entry.version}/{wf.name}")
    return out_zip

