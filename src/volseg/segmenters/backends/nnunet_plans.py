"""What an nnU-Net v2 ``plans.json`` and ``dataset.json`` say, read without importing nnunetv2.

nnunetv2's own ``PlansManager`` pulls in its image readers, skimage, pandas and blosc2 (over a second
of imports); inference needs only a few entries, read here with nnU-Net's semantics: configurations
may inherit from one another (``inherits_from``), the architecture entry names a
``dynamic_network_architectures`` class and its keyword arguments (some of them dotted names to
import), and ``dataset.json`` labels are integers or, for region-based models, lists of integers with
a ``regions_class_order``. Plans in the pre-2.3 format (no ``architecture`` entry) are converted by
nnunetv2 itself, imported only then.
"""
from __future__ import annotations

import copy
import pydoc
from dataclasses import dataclass
from typing import Any

from volseg.errors import DependencyError, ModelError


@dataclass(frozen=True)
class Configuration:
    name: str
    entries: dict[str, Any]  # the resolved configuration (inheritance applied)

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in self.entries["spacing"])

    @property
    def patch_size(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.entries["patch_size"])

    @property
    def normalization_schemes(self) -> list[str]:
        return list(self.entries["normalization_schemes"])

    @property
    def use_mask_for_norm(self) -> list[bool]:
        return [bool(u) for u in self.entries["use_mask_for_norm"]]

    @property
    def previous_stage(self) -> str | None:
        return self.entries.get("previous_stage")

    def architecture(self) -> dict[str, Any]:
        if "architecture" in self.entries:
            return self.entries["architecture"]
        try:  # pre-2.3 plans: let nnunetv2 translate them
            from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager
        except ImportError as exc:
            raise DependencyError("these plans use nnU-Net's old format; reading them needs nnunetv2",
                                  hint="pip install 'volseg[nnunet]'") from exc
        return ConfigurationManager(copy.deepcopy(self.entries)).configuration["architecture"]


#: entries inference reads from a resolved configuration (``architecture``: plans ≥ 2.3 only)
REQUIRED_ENTRIES = ("spacing", "patch_size", "normalization_schemes", "use_mask_for_norm")
#: intensity properties CTNormalization needs for each channel
CT_PROPERTIES = ("mean", "std", "percentile_00_5", "percentile_99_5")


def check_plans(plans: dict, configuration: str, path) -> None:
    """A ModelError naming ``path`` (plans.json) and the missing key, before anything else is built."""
    try:
        config = resolve_configuration(plans, configuration)
    except ModelError as exc:
        raise ModelError(exc.message, path=path, hint=exc.hint) from exc
    for key in REQUIRED_ENTRIES:
        if key not in config.entries:
            raise ModelError(f"plans.json lacks the key {key!r} in configuration {configuration!r}", path=path)
    props = plans.get("foreground_intensity_properties_per_channel") or {}
    for channel, scheme in enumerate(config.entries["normalization_schemes"]):
        if scheme != "CTNormalization":
            continue
        missing = [k for k in CT_PROPERTIES if k not in (props.get(str(channel)) or {})]
        if missing:
            raise ModelError(f"plans.json lacks the key {missing[0]!r} in "
                             f"foreground_intensity_properties_per_channel[{str(channel)!r}] "
                             "(CTNormalization needs it)", path=path)


def resolve_configuration(plans: dict, name: str) -> Configuration:
    """The configuration ``name`` with its ``inherits_from`` chain applied (child entries win)."""
    configurations = plans.get("configurations", {})
    chain: list[str] = []
    current: str | None = name
    while current is not None:
        if current in chain:
            raise ModelError(f"plans configurations inherit in a circle: {' → '.join(chain + [current])}")
        if current not in configurations:
            raise ModelError(f"configuration {current!r} is not in plans.json",
                             hint=f"plans define: {', '.join(configurations)}")
        chain.append(current)
        current = configurations[current].get("inherits_from")
    entries: dict[str, Any] = {}
    for link in reversed(chain):
        entries.update(copy.deepcopy(configurations[link]))
    return Configuration(name, entries)


@dataclass(frozen=True)
class LabelSpec:
    """Network outputs and the labels they decode to (nnU-Net's ``LabelManager`` semantics)."""

    names: dict[str, Any]  # dataset.json "labels": name → int, or list of ints for a region
    regions: bool
    heads: int  # network output channels
    values: tuple[int, ...]  # label value per channel (argmax) or per region, in decoding order
    ignore_label: int | None


def label_spec(dataset_json: dict) -> LabelSpec:
    names = dict(dataset_json.get("labels") or {})
    if not names:
        raise ModelError("dataset.json has no labels")
    ignore = names.get("ignore")
    regions = any(isinstance(v, (list, tuple)) and len(v) > 1 for v in names.values())
    if not regions:
        values = sorted({int(v[0]) if isinstance(v, (list, tuple)) else int(v)
                         for k, v in names.items() if k != "ignore"})
        if values != list(range(len(values))):
            raise ModelError(f"dataset.json labels must be 0…N-1 without gaps, got {values}")
        return LabelSpec(names, False, len(values), tuple(values), None if ignore is None else int(ignore))
    order = dataset_json.get("regions_class_order")
    foreground = [v for k, v in names.items() if k not in ("background", "ignore") and _not_background(v)]
    if order is None or len(order) != len(foreground):
        raise ModelError("region-based dataset.json needs a regions_class_order with one entry per region")
    return LabelSpec(names, True, len(foreground), tuple(int(o) for o in order),
                     None if ignore is None else int(ignore))


def _not_background(value) -> bool:
    items = value if isinstance(value, (list, tuple)) else [value]
    return not all(int(v) == 0 for v in items)


def build_network(architecture: dict[str, Any], input_channels: int, output_channels: int):
    """The network an architecture entry describes (``dynamic_network_architectures``), no deep supervision."""
    kwargs = dict(architecture["arch_kwargs"])
    for key in architecture.get("_kw_requires_import", ()):
        if kwargs.get(key) is not None:
            kwargs[key] = _locate(kwargs[key])
    network_class = _locate(architecture["network_class_name"])
    try:
        return network_class(input_channels=input_channels, num_classes=output_channels, deep_supervision=False,
                             **kwargs)
    except TypeError as exc:
        raise ModelError(f"cannot build {architecture['network_class_name']} from plans.json ({exc})") from exc


def _locate(dotted: str):
    found = pydoc.locate(dotted)
    if found is None:
        top = dotted.split(".")[0]
        if top == "dynamic_network_architectures":
            raise DependencyError(f"{dotted} is not available", hint="pip install 'volseg[nnunet]' "
                                  "(dynamic-network-architectures, a version that has this class)")
        raise ModelError(f"plans.json names {dotted!r}, which cannot be imported")
    return found
