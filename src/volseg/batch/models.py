"""What ``--model`` names in a batch: catalogue names and the paths of users' own models.

``volseg batch`` and ``volseg slurm-script`` accept what ``volseg segment`` accepts: a catalogue name,
an nnU-Net v2 trained-model folder, an ``.onnx`` file with its sidecar, or a MONAI bundle folder
(``--trust-bundle``). :func:`resolve_model` checks the name or path without loading anything heavy
and gives the key a completion record stores: a catalogue model is (name, catalogue version); a
path is (its file name, ``files-<hash>``), the hash taken over the listing of its files (relative
name and size, plus the content of small files and the modification time of large ones), so that a
retrained or edited model redoes the studies while a rerun of the same model skips them.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from volseg.errors import ModelError, UsageError

_HASH_CONTENT_BELOW = 64 * 1024 * 1024  # files up to this size are hashed by content


@dataclass(frozen=True)
class ModelSpec:
    source: str  # what the workers load: the catalogue name or the model's absolute path
    name: str  # the name in records, events and (several models) output sub-folders
    version: str  # catalogue version, or "files-<16 hex>" for a path

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.version


def model_source(model: str) -> str:
    """What to load for ``model``: an existing path made absolute, else the name itself."""
    from volseg.segmenters.registry import is_model_path

    return str(Path(model).expanduser().resolve()) if is_model_path(model) else model


def resolve_model(model: str, *, trust_bundle: bool | None = None) -> ModelSpec:
    """Check ``model`` as ``volseg segment --model`` would take it, without loading it.

    Raises :class:`ModelError` for an unknown name ("did you mean"), a missing path or a path that
    is no model volseg can run; with ``trust_bundle=False`` also for a MONAI bundle folder (its
    config can run code). ``trust_bundle=None`` leaves that check to the loader.
    """
    from volseg.segmenters.catalogue import get_entry
    from volseg.segmenters.registry import is_model_path

    if is_model_path(model):
        path = Path(model).expanduser().resolve()
        files = _model_files(path, trust_bundle=trust_bundle)
        return ModelSpec(str(path), path.name, "files-" + listing_hash(files, root=path.parent))
    if "/" in model or os.sep in model or model.lower().endswith(".onnx"):
        raise ModelError("no such model file or folder", path=model)
    entry = get_entry(model)
    return ModelSpec(entry.name, entry.name, entry.version)


def resolve_models(models: Sequence[str], *, trust_bundle: bool | None = None) -> tuple[ModelSpec, ...]:
    specs = tuple(resolve_model(m, trust_bundle=trust_bundle) for m in models)
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"two models would both be called {twice[0]!r} (output sub-folders are named after "
                         "the model)", hint="rename one model's file or folder")
    return specs


def _model_files(path: Path, *, trust_bundle: bool | None) -> list[Path]:
    """The files that make up the model at ``path``; ModelError when it is not a model."""
    from volseg.segmenters.backends.nnunet_folder import is_model_folder

    if is_model_folder(path):
        return _walk(path)
    if path.suffix.lower() == ".onnx" and path.is_file():
        from volseg.segmenters.backends.onnx import find_sidecar, read_sidecar

        sidecar = find_sidecar(path)
        read_sidecar(sidecar)  # a broken sidecar fails now, not on every worker
        extra = [p for p in path.parent.glob(path.name + ".data") if p.is_file()]  # external weights
        return [path, sidecar, *extra]
    if path.is_dir():
        from volseg.segmenters.backends.monai_bundle import TRUST_HINT, is_bundle

        if is_bundle(path):
            if trust_bundle is False:
                raise ModelError("refusing to run an untrusted MONAI bundle config", path=path, hint=TRUST_HINT)
            return _walk(path)
    raise ModelError("not a model volseg can run", path=path,
                     hint="expected an nnU-Net trained-model folder (plans.json, dataset.json, fold_*), "
                          "a MONAI bundle (configs/inference.json) or an .onnx file with its sidecar")


def _walk(folder: Path) -> list[Path]:
    found = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(parent) / n for n in sorted(names) if not n.startswith(".")]
    return found


def listing_hash(files: Iterable[Path], *, root: Path) -> str:
    """16 hex digits over (relative name, size, content or mtime) of every file."""
    from volseg.segmenters.weights.cache import sha256_file

    digest = hashlib.sha256()
    for path in sorted(files):
        st = path.stat()
        if st.st_size <= _HASH_CONTENT_BELOW:
            content = sha256_file(path)
        else:
            content = f"mtime:{st.st_mtime_ns}"
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0{st.st_size}\0{content}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]
