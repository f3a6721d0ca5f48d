"""The code version recorded in catalogs, manifests and releases."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def code_version() -> str:
    try:
        return version("speechcrawl")
    except PackageNotFoundError:
        return "0+unknown"
