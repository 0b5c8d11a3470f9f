"""Installing weights that a publisher's own program already downloaded and unpacked.

A TotalSegmentator home (``~/.totalsegmentator``) or results folder (``…/nnunet/results``) holds
``DatasetNNN_<name>/<trainer>__<plans>__<config>/fold_0/checkpoint_final.pth``; a Raidionics models
folder holds ``CT_Airways/``, ``MRI_Brain/`` …; a MONAI bundle folder holds ``configs/`` and
``models/model.pt``. Each is what one of the catalogue's archives unpacks to, so such a folder is
installed as if the archive had been extracted: every file is hashed while it is copied into a
staging folder, checked against the catalogue (plain files it pins) and the lock (members an
earlier install recorded), then the staging folder is swapped into place. The sha256 of every
member is recorded in the lock file, as downloads record unpinned archives.
"""
from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from volseg.errors import ModelError
from volseg.segmenters.catalogue import ModelEntry, WeightFile
from volseg.segmenters.weights.cache import MANIFEST_NAME, InstalledFile, Manifest, model_dir
from volseg.segmenters.weights.install import HashPolicy, InstallResult, _copy_hashed, _swap
from volseg.segmenters.weights.lock import read_lock, write_lock
from volseg.segmenters.weights.publishers import archive_top, publisher

log = logging.getLogger(__name__)
_BUNDLE_CONFIGS = ("configs/inference.json", "configs/inference.yaml")


@dataclass(frozen=True)
class Tree:
    """The unpacked form of one catalogue archive in the user's folder."""

    weight: str  # the archive's catalogue file name
    source: Path  # the folder that archive unpacks to, in the user's layout
    target: str  # its files' folder relative to the installed model folder ("" for the root)


@dataclass(frozen=True)
class UnpackedPlan:
    entry: ModelEntry
    plain: dict[str, Path]  # plain (non-archive) weight file name → path
    trees: tuple[Tree, ...]
    missing: tuple[str, ...]  # what the folder lacks, as archive-relative paths

    @property
    def complete(self) -> bool:
        return not self.missing and bool(self.trees)


def plan_unpacked(entry: ModelEntry, root: Path, *, explicit: bool) -> UnpackedPlan:
    """Where ``root`` holds each weight file of ``entry`` unpacked, and what it lacks.

    Archives whose members lie at the archive's root (no folder of their own) are only looked for
    when the model is named (``explicit``): their layout is too generic to recognise a model by.
    """
    plain: dict[str, Path] = {}
    trees: list[Tree] = []
    missing: list[str] = []
    if not any(wf.archive is not None for wf in entry.weights):
        return UnpackedPlan(entry, plain, (), ())  # plain files only: matched by name and hash elsewhere
    for wf in entry.weights:
        if wf.archive is None:
            continue
        top = archive_top(wf)
        source, lacking = _find_tree(entry, wf, root, top, explicit=explicit)
        if source is None:
            missing.extend(lacking)
            continue
        target = PurePosixPath(wf.extract_to or "") / (top or "")
        trees.append(Tree(wf.name, source, str(target) if str(target) != "." else ""))
    for wf in entry.weights:
        if wf.archive is None and trees:  # a bundle's models/model.pt first, then anywhere below root
            found = next((f for f in (_find_file(t.source, wf.name, explicit=explicit) for t in trees) if f),
                         None) or _find_file(root, wf.name, explicit=explicit)
            if found is None:
                missing.append(wf.name)
            else:
                plain[wf.name] = found
    return UnpackedPlan(entry, plain, tuple(trees), tuple(missing))


def _required(entry: ModelEntry, wf: WeightFile, top: str | None) -> list[str]:
    """Files the unpacked archive must hold, relative to its own folder."""
    cut = 1 if top else 0
    needed = ["/".join(PurePosixPath(m).parts[cut:]) for m in wf.members]
    if entry.backend == "monai_bundle" and not needed:
        needed = [_BUNDLE_CONFIGS[0]]
    return needed


def _find_tree(entry: ModelEntry, wf: WeightFile, root: Path, top: str | None, *,
               explicit: bool) -> tuple[Path | None, list[str]]:
    needed = _required(entry, wf, top)
    if top:
        candidates = [root] if root.name == top else []
        candidates += [p for pattern in (top, f"*/{top}", f"*/*/{top}") for p in sorted(root.glob(pattern))]
    else:
        candidates = []
    if explicit and (top is None or entry.backend == "monai_bundle"):
        candidates.append(root)  # a bundle or a root-level nnU-Net folder given with -m
    for folder in candidates:
        if folder.is_dir() and _holds(folder, needed) and any(_files(folder)):
            return folder, []
    return None, [f"{top}/{n}" if top else n for n in needed] or [f"{top or wf.name}/"]


def _holds(folder: Path, needed: list[str]) -> bool:
    for rel in needed:
        if rel in _BUNDLE_CONFIGS:
            if not any((folder / c).is_file() for c in _BUNDLE_CONFIGS):
                return False
        elif not (folder / rel).is_file():
            return False
    return True


def _find_file(root: Path, name: str, *, explicit: bool) -> Path | None:
    """The one file called ``name`` below ``root``; several are an error for a named model, else no match."""
    found = [p for p in _files(root) if p.name == name]
    if len(found) > 1 and explicit:
        shown = ", ".join(str(p.relative_to(root)) for p in found[:3])
        raise ModelError(f"{name} appears {len(found)} times in this folder ({shown}); keep one", path=root)
    return found[0] if len(found) == 1 else None


def _files(folder: Path) -> list[Path]:
    """Regular files below ``folder``, without hidden ones and partial downloads, sorted."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(p.startswith(".") for p in rel.parts) or path.name.endswith(".part"):
            continue
        if path.is_file():
            out.append(path)
    return out


# ---- the transaction ---------------------------------------------------------------------------
def commit_unpacked(plan: UnpackedPlan, *, policy: HashPolicy, origin: str) -> InstallResult:
    """Copy an unpacked layout into the model folder: hash, check, manifest, swap, record in the lock."""
    entry = plan.entry
    if not plan.complete:
        raise ModelError(f"{entry.name}: the folder lacks {', '.join(plan.missing[:3])}")
    dest = model_dir(entry.name, entry.version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".staging-{entry.version}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        files = []
        for wf in entry.weights:
            if wf.archive is None:
                out = staging / wf.name
                actual = _copy_hashed(plan.plain[wf.name], out)
                pinned_by = policy.check(entry, wf, out, actual, origin)
                files.append(InstalledFile(wf.name, actual, out.stat().st_size, pinned_by))
        members = [_copy_member(entry, tree, src, staging, policy, origin)
                   for tree in plan.trees for src in _files(tree.source)]
        extracted = {m.name: m.sha256 for m in members}
        from volseg.io.atomic import write_text

        write_text(staging / MANIFEST_NAME,
                   Manifest(entry.name, entry.version, origin, tuple(files), extracted).to_json())
        _swap(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _record(entry, [*files, *members])
    log.debug("installed %s %s from an unpacked %s layout (%d files)", entry.name, entry.version,
              publisher(entry), len(files) + len(members))
    return InstallResult(entry.name, entry.version, dest, (*files, *members), origin)


def _copy_member(entry: ModelEntry, tree: Tree, src: Path, staging: Path, policy: HashPolicy,
                 origin: str) -> InstalledFile:
    rel = src.relative_to(tree.source).as_posix()
    name = f"{tree.target}/{rel}" if tree.target else rel
    out = staging / name
    if out.exists():
        raise ModelError(f"{origin}: {name} of {entry.name} comes from two folders")
    out.parent.mkdir(parents=True, exist_ok=True)
    actual = _copy_hashed(src, out)
    pinned = policy.home_lock.sha256(entry.name, entry.version, name)
    if pinned and pinned != actual:
        raise ModelError(f"{origin}: {name} of {entry.name} {entry.version} does not match the lock: "
                         f"expected sha256 {pinned}, got {actual}",
                         hint="nothing was installed; the file is corrupt, tampered with or of another version")
    if policy.required is not None:
        required = policy.required.sha256(entry.name, entry.version, name)
        if required != actual:
            raise ModelError(f"--require-lock: {entry.name} {entry.version} {name} (sha256 {actual}) "
                             "is not in the lock file", path=policy.lock_path,
                             hint="export a lock on a trusted machine with `volseg models lock -o FILE`")
    return InstalledFile(name, actual, out.stat().st_size, "lock" if pinned else "recorded")


def _record(entry: ModelEntry, files: list[InstalledFile]) -> None:
    lock = read_lock()
    changed = False
    for f in files:
        if f.pinned_by == "catalogue" or lock.sha256(entry.name, entry.version, f.name) == f.sha256:
            continue
        url = next((w.url for w in entry.weights if w.name == f.name), None)
        lock.record(entry.name, entry.version, f.name, sha256=f.sha256, size_bytes=f.size_bytes, url=url)
        changed = True
    if changed:
        write_lock(lock)


