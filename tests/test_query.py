"""The archive.org query subset, evaluated against plain documents."""

from __future__ import annotations

import pytest

from crawler.sample_archive.query import QueryError, compile_query
from crawler.settings import ARCHIVE_ORG_QUERY

DOCS = [
    {"identifier": "a", "title": "Town hall meeting", "mediatype": "audio",
     "licenseurl": "https://creativecommons.org/licenses/by/4.0", "format": ["VBR MP3", "SubRip"],
     "closed_captioning": "yes"},
    {"identifier": "b", "title": "Library podcast", "mediatype": "movies",
     "licenseurl": ["http://creativecommons.org/licenses/by-sa/3.0/deed.en_GB"],
     "format": ["Ogg Vorbis", "Web Video Text Tracks"]},
    {"identifier": "c", "title": "Radio hour", "mediatype": "audio",
     "licenseurl": "https://creativecommons.org/licenses/by-nc/4.0/", "format": ["VBR MP3", "Text"],
     "closed_captioning": "yes"},
    {"identifier": "d", "title": "Lecture", "mediatype": "texts",
     "licenseurl": "https://www.usa.gov/government-works", "format": ["Text"],
     "access-restricted-item": "true", "date": "2004-05-01"},
    {"identifier": "e", "title": "Untitled", "mediatype": "audio", "format": ["VBR MP3"],
     "date": "2019-01-01"},
]


def matching(q: str) -> list[str]:
    pred = compile_query(q)
    return [d["identifier"] for d in DOCS if pred(d)]


@pytest.mark.parametrize("q, expected", [
    ("mediatype:audio", ["a", "c", "e"]),
    ("mediatype:(audio OR movies)", ["a", "b", "c", "e"]),
    ("mediatype:AUDIO", ["a", "c", "e"]),  # values compare case-insensitively
    ("licenseurl:*creativecommons.org/licenses/by/*", ["a"]),
    ("licenseurl:*creativecommons.org\\/licenses\\/by\\/*", ["a"]),  # escaped slashes
    ("licenseurl:*by-sa*", ["b"]),  # a list value matches if any element does
    ("licenseurl:*by*", ["a", "b", "c"]),
    ("licenseurl:*", ["a", "b", "c", "d"]),  # field present
    ("format:SubRip", ["a"]),
    ('format:"Web Video Text Tracks"', ["b"]),
    ("closed_captioning:yes", ["a", "c"]),
    ("mediatype:audio AND NOT licenseurl:*by-nc*", ["a", "e"]),
    ("mediatype:audio -licenseurl:*by-nc*", ["a", "e"]),
    ("mediatype:audio NOT closed_captioning:yes", ["e"]),
    ("NOT access-restricted-item:TRUE AND format:Text", ["c"]),
    ("(format:SubRip OR format:\"Web Video Text Tracks\") AND mediatype:movies", ["b"]),
    ("title:hall", ["a"]),  # text fields match word by word
    ("title:(podcast OR lecture)", ["b", "d"]),
    ('title:"town hall"', ["a"]),
    ("title:radio mediatype:audio", ["c"]),  # implicit AND, as on archive.org
    ("podcast", ["b"]),  # no field: the default text fields
    ("identifier:?", ["a", "b", "c", "d", "e"]),
    ("date:[2000-01-01 TO 2010-12-31]", ["d"]),
    ("date:{2004-05-01 TO *]", ["e"]),
])
def test_query_subset(q, expected):
    assert matching(q) == expected


def test_the_default_query_selects_permissive_captioned_audio():
    assert matching(ARCHIVE_ORG_QUERY) == ["a", "b"]


@pytest.mark.parametrize("q", ["", "   ", "title:(unclosed", "AND", "title:foo~2"])
def test_bad_or_unsupported_queries_raise_query_error(q):
    with pytest.raises(QueryError):
        compile_query(q)


def _accepted_forms() -> list[tuple[str, object]]:
    """Every license form the gate accepts: the sample archive's, and the URL forms seen in the
    wild (free text is found by the same query terms, but only its sample forms are listed)."""
    from test_licenses import WILD

    from crawler.licenses import looks_like_url
    from crawler.sample_archive.plan import LICENSE_FORMS

    forms = [(k, raw) for k, (raw, _, _, decision, _) in sorted(LICENSE_FORMS.items())
             if decision == "accepted"]
    forms += [(s, s) for s, _, family in WILD if family and looks_like_url(s)]
    return forms


@pytest.mark.parametrize("name, raw", _accepted_forms())
def test_every_license_form_the_gate_accepts_is_found_by_the_default_query(name, raw):
    from crawler.licenses import decide

    assert decide({"licenseurl": raw}).decision == "accepted"
    doc = {"identifier": "x", "mediatype": "audio", "closed_captioning": "yes",
           "licenseurl": raw}
    assert compile_query(ARCHIVE_ORG_QUERY)(doc), f"{name}: {raw!r}"


@pytest.mark.parametrize("raw", [
    "http://creativecommons.org/licenses/publicdomain", "http://creativecommons.org/licenses/"
    "publicdomain/", "https://creativecommons.org/licenses/cc0/3.0/",
    "http://www.usa.gov/copyright.shtml", "Attribution 4.0 International",
])
def test_forms_the_old_query_missed_are_found(raw):
    doc = {"identifier": "x", "mediatype": "movies", "format": ["SubRip"], "licenseurl": raw}
    assert compile_query(ARCHIVE_ORG_QUERY)(doc)
