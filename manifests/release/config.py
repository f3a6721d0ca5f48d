"""The release config: which clips go into which subset, how splits are drawn, how big shards get.

A release is a pure function of the manifests and this config, so every setting that changes
what a release holds lives here (and is written into its ``release.json``). A TOML file gives
it as a ``[release]`` table; an unknown key is an error, because a misspelt setting that is
silently ignored makes a release that is not the one its maintainer asked for.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

TIERS = ("clean", "other")
FAMILIES = ("public-domain", "by", "by-sa")
MAX_SHARD_BYTES = 1_900_000_000
NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a directory name and an HF config/split name


@dataclass(frozen=True)
class SubsetSpec:
    """One release config (an HF "config"): the clips of these tiers under these license
    families. Any of ``max_clips``, ``max_hours`` and ``fraction`` (of the config's hours)
    makes it a sample: whole items in a salted hash order of their keys, as many as fit every
    cap (see ``plan.sample``), so an item keeps its place in the sample from one release to
    the next unless items ranked before it grow or arrive."""

    tiers: tuple[str, ...]
    families: tuple[str, ...]
    max_clips: int | None = None
    max_hours: float | None = None
    fraction: float | None = None

    @property
    def sample(self) -> bool:
        return any(x is not None for x in (self.max_clips, self.max_hours, self.fraction))


DEFAULT_SUBSETS = {
    "clean": SubsetSpec(("clean",), ("public-domain", "by")),
    "other": SubsetSpec(("other",), ("public-domain", "by")),
    "clean_sa": SubsetSpec(("clean",), ("by-sa",)),
    "other_sa": SubsetSpec(("other",), ("by-sa",)),
    # A small fixed sample for quick experiments: 10 % of the clean hours, at most 10 hours,
    # so it stays a sample (not all of ``clean``) however small the corpus.
    "microset": SubsetSpec(("clean",), ("public-domain", "by"), max_hours=10.0, fraction=0.1),
}
DEFAULT_SPLITS = {"train": 0.90, "validation": 0.05, "test": 0.05}
# Creators that name nobody in particular: grouping by them would not keep a speaker together,
# it would only tie unrelated items to one split.
ANONYMOUS_CREATORS = ("", "unknown", "anonymous", "various", "various artists", "n/a", "none")


@dataclass(frozen=True)
class ReleaseConfig:
    name: str = "speechcrawl corpus"  # what the data card calls the corpus
    salt: str = "speechcrawl-splits-1"
    splits: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SPLITS))
    subsets: dict[str, SubsetSpec] = field(default_factory=lambda: dict(DEFAULT_SUBSETS))
    include_asr_captions: bool = False
    include_gone_items: bool = False  # items no longer at the source: license not re-checked
    group_by_creator: bool = True  # one creator's items share a split (a speaker proxy)
    anonymous_creators: tuple[str, ...] = ANONYMOUS_CREATORS
    dedup_audio: bool = True
    dedup_text: bool = True
    # Short texts ("thank you", "yes") recur across items without being duplicates.
    dedup_text_min_chars: int = 20
    max_shard_bytes: int = 500_000_000

    def __post_init__(self) -> None:
        if not self.splits:
            raise ValueError("release config: at least one split is needed")
        for name, share in self.splits.items():
            if not NAME.match(name):
                raise ValueError(f"release config: split name {name!r} must match {NAME.pattern}")
            if not isinstance(share, int | float) or share <= 0:
                raise ValueError(f"release config: split {name!r} needs a positive share")
        if not self.subsets:
            raise ValueError("release config: at least one subset is needed")
        for name, spec in self.subsets.items():
            _check_subset(name, spec)
        if not 0 < self.max_shard_bytes <= MAX_SHARD_BYTES:
            raise ValueError(f"release config: max_shard_bytes must be in 1..{MAX_SHARD_BYTES} "
                             "(an Arrow binary column holds under 2 GiB)")
        if self.dedup_text_min_chars < 0:
            raise ValueError("release config: dedup_text_min_chars must not be negative")

    @classmethod
    def from_toml(cls, path: Path) -> ReleaseConfig:
        data = tomllib.loads(Path(path).read_text())
        unknown = set(data) - {"release"}
        if unknown:
            raise ValueError(f"{path}: unknown tables or keys {sorted(unknown)} (expected "
                             "a [release] table)")
        release = data.get("release", {})
        if not isinstance(release, dict):
            raise ValueError(f"{path}: release must be a [release] table, not {_kind(release)}")
        return cls.from_dict(release)

    @classmethod
    def from_dict(cls, data: dict) -> ReleaseConfig:
        """A config from a ``[release]`` table; ``subsets`` given there replace the defaults
        entirely (so a maintainer can drop one), ``splits`` likewise."""
        if not isinstance(data, dict):
            raise ValueError(f"release config: must be a table, not {_kind(data)}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown release settings: {sorted(unknown)}")
        problems = [p for key, value in data.items() if (p := _type_problem(key, value))]
        if problems:
            raise ValueError("release config: " + "; ".join(problems))
        data = dict(data)
        if "subsets" in data:
            data["subsets"] = {name: _subset_from_dict(name, spec)
                               for name, spec in data["subsets"].items()}
        if "splits" in data:
            data["splits"] = dict(data["splits"])
        if "anonymous_creators" in data:
            data["anonymous_creators"] = tuple(data["anonymous_creators"])
        return cls(**data)

    def as_dict(self) -> dict:
        """JSON-ready, in a stable order (it goes into release.json byte for byte)."""
        d = asdict(self)
        d["subsets"] = {name: {"tiers": list(s.tiers), "families": list(s.families),
                               "max_clips": s.max_clips, "max_hours": s.max_hours,
                               "fraction": s.fraction} for name, s in self.subsets.items()}
        d["anonymous_creators"] = list(self.anonymous_creators)
        return d

    def shares(self) -> list[tuple[str, float]]:
        """Split names with their shares, normalised to sum to 1, in config order."""
        total = float(sum(self.splits.values()))
        return [(name, share / total) for name, share in self.splits.items()]


BOOLEANS = ("include_asr_captions", "include_gone_items", "group_by_creator", "dedup_audio",
            "dedup_text")
INTEGERS = ("dedup_text_min_chars", "max_shard_bytes")


def _kind(value) -> str:
    """A TOML value's type, as a job file's author knows it."""
    for cls, name in ((bool, "a boolean"), (int, "an integer"), (float, "a float"),
                      (str, "a string"), (list, "a list"), (dict, "a table")):
        if isinstance(value, cls):
            return name
    return f"a {type(value).__name__}"


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _type_problem(key: str, value) -> str | None:
    """Why a ``[release]`` setting's value has the wrong type (named with its key), or None:
    a TOML file is typed, so ``dedup_audio = "no"`` is a mistake to point out, not a true
    value (a non-empty string) to act on."""
    def wrong(want: str) -> str:
        return f"{key}: {json.dumps(value, default=str)[:60]} is {_kind(value)}, not {want}"

    if key in BOOLEANS and not isinstance(value, bool):
        return wrong("true or false")
    if key in INTEGERS and (isinstance(value, bool) or not isinstance(value, int)):
        return wrong("an integer")
    if key in ("name", "salt") and (not isinstance(value, str) or not value.strip()):
        return wrong("a non-empty string")
    if key == "anonymous_creators" and (not isinstance(value, list)
                                        or not all(isinstance(v, str) for v in value)):
        return wrong("a list of strings")
    if key == "splits":
        if not isinstance(value, dict) or not value:
            return wrong('a table of split names and shares, e.g. { train = 0.9, test = 0.1 }')
        if bad := [n for n, share in value.items() if not _number(share) or share <= 0]:
            return f"splits.{bad[0]}: {json.dumps(value[bad[0]], default=str)} is " \
                   f"{_kind(value[bad[0]])}, not a positive number"
        if not math.isclose(sum(value.values()), 1.0, abs_tol=1e-6):
            return f"splits: the shares sum to {sum(value.values()):g}, not 1"
    if key == "subsets":
        if not isinstance(value, dict) or not value:
            return wrong("a table of subset tables, e.g. { clean = { tiers = [\"clean\"], "
                         'families = ["by"] } }')
        for name, spec in value.items():
            if not isinstance(spec, dict):
                return f"subsets.{name}: {json.dumps(spec, default=str)[:60]} is " \
                       f"{_kind(spec)}, not a table (tiers, families, max_clips, ...)"
            for part in ("tiers", "families"):
                if part in spec and (not isinstance(spec[part], list)
                                     or not all(isinstance(v, str) for v in spec[part])):
                    return f"subsets.{name}.{part}: {json.dumps(spec[part], default=str)[:60]}" \
                           f" is {_kind(spec[part])}, not a list of strings"
    return None


def _subset_from_dict(name: str, spec: dict) -> SubsetSpec:
    known = {f.name for f in fields(SubsetSpec)}
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"release config: subset {name!r} has unknown keys {sorted(unknown)}")
    if "tiers" not in spec or "families" not in spec:
        raise ValueError(f"release config: subset {name!r} needs tiers and families")
    return SubsetSpec(tuple(spec["tiers"]), tuple(spec["families"]), spec.get("max_clips"),
                      spec.get("max_hours"), spec.get("fraction"))


def _check_subset(name: str, spec: SubsetSpec) -> None:
    if not NAME.match(name):
        raise ValueError(f"release config: subset name {name!r} must match {NAME.pattern}")
    if "rejected" in spec.tiers:
        raise ValueError(f"release config: subset {name!r} asks for rejected clips, which have "
                         "no audio (the align stage writes none)")
    bad = set(spec.tiers) - set(TIERS)
    if bad or not spec.tiers:
        raise ValueError(f"release config: subset {name!r}: tiers must be among {TIERS}")
    bad = set(spec.families) - set(FAMILIES)
    if bad or not spec.families:
        raise ValueError(f"release config: subset {name!r}: families must be among {FAMILIES}"
                         + (f", not {sorted(bad)}" if bad else ""))
    if "by-sa" in spec.families and not name.endswith("_sa"):
        raise ValueError(f"release config: subset {name!r} holds share-alike material, so its "
                         "name must end in _sa (docs/ARCHITECTURE.md: share-alike only in "
                         "subsets labelled so)")
    for key, kind, top in (("max_clips", int, None), ("max_hours", float, None),
                           ("fraction", float, 1.0)):
        value = getattr(spec, key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or (kind is int and not isinstance(value, int)):
            raise ValueError(f"release config: subset {name!r}: {key} must be a "
                             f"{'whole number' if kind is int else 'number'}, not {value!r}")
        if not value > 0 or (top is not None and value > top):
            raise ValueError(f"release config: subset {name!r}: {key} must be positive"
                             + (f" and at most {top:g}" if top is not None else "")
                             + f", not {value!r}")
