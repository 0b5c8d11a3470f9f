"""The one way a backend gets its :class:`EngineSettings`: catalogue entry, then the user's overrides.

From the entry, in this order (later wins):

1. ``sliding_window``: ``overlap`` → ``step`` (1 − overlap), ``mirroring`` → ``mirror``, and
   ``batch_size`` → ``window_batch`` on CUDA only (the publisher's GPU batch; on the CPU one window
   per network call);
2. ``backend_options.engine`` (:class:`~volseg.segmenters.backend_options.CatalogueEngine`).

Only settings the backend ``supported`` are taken from the entry. The user's
:class:`~volseg.segmenters.engine.settings.EngineOverrides` come last; a backend that cannot honour
a set override refuses it (:func:`refuse_unsupported`: a UsageError naming the setting, its flag
and the model), whatever the backend: one rule instead of warnings that drop keys. An override
asking for the value the backend always uses (``--precision fp32`` for ONNX) is honoured.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from volseg.errors import UsageError
from volseg.segmenters.backend_options import WithEngine
from volseg.segmenters.engine.settings import EngineOverrides, EngineSettings

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry

T = TypeVar("T")

#: every window setting of EngineSettings: what a backend running volseg's sliding-window engine
#: honours. ``members`` is not one: only a backend running an ensemble adds it (:data:`ENSEMBLE`)
ALL_SETTINGS: frozenset[str] = frozenset(f.name for f in fields(EngineSettings)) - {"members"}
#: the setting of backends that run an ensemble and can run its first N members only
ENSEMBLE: frozenset[str] = frozenset({"members"})
#: backends that run the network their own way honour none of them
NO_SETTINGS: frozenset[str] = frozenset()
#: the CLI flag of each user override, for messages
FLAGS: dict[str, str] = {"step": "--step", "mirror": "--tta", "precision": "--precision", "export": "--export",
                       "members": "--members", "skip_air": "--skip-air"}


def engine_settings(entry: ModelEntry | None, overrides: EngineOverrides | None, *,
                    supported: frozenset[str] = ALL_SETTINGS, fixed: Mapping[str, Any] | None = None,
                    base: EngineSettings | None = None, device_type: str = "cpu",
                    model: str | None = None) -> EngineSettings:
    """``base`` (default: the engine's defaults) with ``entry``'s settings, then ``overrides``.

    ``entry`` None: a model given by path, whose own files gave ``base``. ``fixed``: values the
    backend always runs with (an override asking for exactly that value is honoured). ``model``
    names the model in a refusal (default: the entry's name).
    """
    name = model or (entry.name if entry is not None else "this model")
    refuse_unsupported(overrides, supported=supported, fixed=fixed, model=name)
    settings = base or EngineSettings()
    if entry is not None:
        fixed = {k: v for k, v in catalogue_changes(entry, device_type=device_type).items() if k in supported}
        settings = settings.with_options(**fixed)
    return settings.overridden_by(overrides)


def catalogue_changes(entry: ModelEntry, *, device_type: str = "cpu") -> dict[str, Any]:
    """The engine settings ``entry`` fixes (sliding_window, then backend_options.engine)."""
    changes: dict[str, Any] = {}
    window = entry.sliding_window
    if window is not None:
        if window.overlap is not None:
            changes["step"] = 1.0 - float(window.overlap)
        if window.mirroring is not None:
            changes["mirror"] = window.mirroring
        if window.batch_size is not None and device_type == "cuda":
            changes["window_batch"] = window.batch_size
    if isinstance(entry.backend_options, WithEngine):  # only backends running the engine have one
        changes.update(entry.backend_options.engine.changes())
    return changes


def refuse_unsupported(overrides: EngineOverrides | None, *, supported: frozenset[str], model: str,
                       fixed: Mapping[str, Any] | None = None) -> None:
    """UsageError for the first set override the model cannot honour: a setting it does not let
    the user choose, unless the override asks for the very value it always runs with."""
    if overrides is None:
        return
    fixed = fixed or {}
    for setting, value in overrides.changes().items():
        if setting not in supported and not (setting in fixed and fixed[setting] == value):
            flag = FLAGS.get(setting, setting)
            raise UsageError(f"model {model!r} cannot honour the engine setting {setting} ({flag})",
                             hint=f"leave out {flag} for this model")


def first_members(members: Sequence[T], count: int | None, *, model: str, kind: str = "ensemble members") -> list[T]:
    """The first ``count`` of a model's ensemble ``members`` (None: all); a UsageError naming how many
    the model has when ``count`` asks for more."""
    if count is None:
        return list(members)
    if not 1 <= int(count) <= len(members):
        raise UsageError(f"--members {count}: model {model!r} has {len(members)} {kind}",
                         hint=f"give --members 1 to {len(members)}")
    return list(members)[:int(count)]


def as_overrides(given: EngineOverrides | Mapping[str, Any] | None) -> EngineOverrides | None:
    """The public API's ``engine`` (overrides, or a mapping of their names) as :class:`EngineOverrides`."""
    if given is None or isinstance(given, EngineOverrides):
        return given
    known = {f.name for f in fields(EngineOverrides)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise UsageError(f"unknown engine override(s): {', '.join(unknown)}", hint=f"known: {', '.join(sorted(known))}")
    return EngineOverrides(**dict(given))
