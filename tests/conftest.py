"""Shared fixtures: a small sample archive built once per session, and a server for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.sample_archive.build import build
from crawler.sample_archive.server import serving

SMALL_ITEMS = 6
SEED = 1234


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Path:
    """A 6-item sample archive: every license family and the most important defects."""
    return build(tmp_path_factory.mktemp("archive") / "sample", items=SMALL_ITEMS, seed=SEED)


@pytest.fixture(scope="session")
def defects(archive) -> dict:
    return json.loads((archive / "defects.json").read_text())


@pytest.fixture(scope="session")
def base_url(archive):
    with serving(archive) as url:
        yield url


@pytest.fixture(scope="session")
def aligned(base_url, tmp_path_factory) -> Path:
    """A workdir with the small archive crawled and aligned by the demo model. Shared by the
    align, export and release tests: treat it as read-only (copy it to change it)."""
    from helpers import align
    from test_crawl import run_crawl

    workdir = tmp_path_factory.mktemp("aligned")
    run_crawl(workdir, base_url)
    align(workdir)
    return workdir
