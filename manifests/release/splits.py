"""Train/validation/test assignment: by a salted hash of the speaker proxy, frozen across versions.

Splits are drawn per *item*, never per clip (clips of one recording in two splits would leak), and
per creator where the creator names someone (one speaker's items stay together). A hash, not a
random draw, so the same inputs give the same splits anywhere; a salt, so a corpus can choose
its own draw. Once an item has been in a split it stays there: a later release reads the earlier
one's assignment and keeps it, and a new item by a creator seen before joins that creator's split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from manifests.release.config import ReleaseConfig


@dataclass(frozen=True)
class Assignment:
    split: str
    group: str  # what the hash was drawn on: "creator:<name>" or "item:<source>/<item_id>"


def group_of(item_key: str, creator: str | None, config: ReleaseConfig,
             anonymous: frozenset[str] | None = None) -> str:
    """The unit that must not straddle splits: the creator where it names someone."""
    if config.group_by_creator and creator:
        name = " ".join(creator.split()).casefold()
        if anonymous is None:
            anonymous = frozenset(a.casefold() for a in config.anonymous_creators)
        if name not in anonymous:
            return f"creator:{name}"
    return f"item:{item_key}"


def _unit(salt: str, purpose: str, key: str) -> int:
    digest = hashlib.sha256(f"{salt}\0{purpose}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def draw(group: str, config: ReleaseConfig) -> str:
    """The split a group falls in: its hash as a point in [0, 1) against cumulative shares."""
    x = _unit(config.salt, "split", group) / 2.0**64
    edge = 0.0
    shares = config.shares()
    for name, share in shares:
        edge += share
        if x < edge:
            return name
    return shares[-1][0]  # x within rounding of 1


def assign(items: list[tuple[str, str | None]], config: ReleaseConfig,
           previous: dict[str, Assignment] | None = None) -> dict[str, Assignment]:
    """Every item's split: its previous one if it had one, else its group's previous one, else
    a fresh draw. Returns the current items *and* every previous assignment, so an item that
    leaves and comes back later still gets its old split."""
    previous = previous or {}
    unknown = {a.split for a in previous.values()} - set(config.splits)
    if unknown:
        raise ValueError(f"the previous release has splits {sorted(unknown)} that the release "
                         f"config does not define ({sorted(config.splits)}): frozen splits "
                         "cannot be renamed")
    by_group: dict[str, str] = {}
    for key in sorted(previous):  # the lowest item key speaks for its group
        by_group.setdefault(previous[key].group, previous[key].split)
    anonymous = frozenset(a.casefold() for a in config.anonymous_creators)
    out = dict(previous)
    for key, creator in items:
        if key in previous:
            continue
        group = group_of(key, creator, config, anonymous)
        split = by_group.get(group)
        if split is None:
            split = by_group[group] = draw(group, config)
        out[key] = Assignment(split, group)
    return out


def item_order(keys: list[str], salt: str) -> np.ndarray:
    """A salted pseudo-random rank per item (uint64): how samples such as the microset pick
    whole items without favouring any name."""
    return np.fromiter((_unit(salt, "sample", k) for k in keys), dtype=np.uint64,
                       count=len(keys))
