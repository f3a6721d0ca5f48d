"""What a spider hands to the pipelines: one item of a source, with its file choices.

Every item discovery returns becomes one of these, even when its metadata is malformed,
withdrawn or unreadable: ``problem`` then says why it is rejected, so it reaches the catalog with
a reason instead of vanishing.
"""

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
    # Why the item is rejected whatever its license says (malformed metadata, a dark or
    # access-restricted item, metadata that could not be read); None when there is no such reason.
    problem: str | None = None
    # False when the source gave no usable file list: the catalog keeps the file rows it has.
    files_known: bool = True
    # True when no metadata could be read at all this time: the catalog records the sighting
    # without replacing what an earlier crawl stored.
    unreadable: bool = False
