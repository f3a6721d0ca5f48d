"""What a spider hands to the pipelines: one item of a source, with its file choices."""

from __future__ import annotations

from dataclasses import dataclass, field

from crawler.licenses import Decision
from crawler.selection import Choice


@dataclass
class SourceItem:
    source: str
    item_id: str
    url: str  # the item's human-readable page
    title: str | None
    creator: str | None
    metadata: dict = field(repr=False)
    metadata_hash: str = field(repr=False)
    files: list[Choice] = field(repr=False)
    pairs: list[dict] = field(repr=False)
    download_urls: dict[str, str] = field(repr=False)  # file name → URL
    decision: Decision | None = field(default=None, repr=False)  # set by the license gate
    todo: list = field(default_factory=list, repr=False)  # still to fetch, set by the catalog
