"""Corpus releases: subsets, frozen splits, dedup, shards, data card, diffs, checksums.

``build_release`` is what the CLI, the job runner and the demo call; ``plan_release`` is the
pure planning step underneath it (and what ``scripts/bench_release.py`` times).
"""

from manifests.release.build import build_release
from manifests.release.config import ReleaseConfig, SubsetSpec
from manifests.release.plan import Plan, Previous, plan_release

__all__ = ["Plan", "Previous", "ReleaseConfig", "SubsetSpec", "build_release", "plan_release"]
