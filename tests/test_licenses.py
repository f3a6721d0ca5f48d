"""The license gate: one case per license form seen in the sample archive and in the wild."""

from __future__ import annotations

import pytest

from crawler.licenses import decide, normalise_url, parse_statement
from crawler.sample_archive.plan import LICENSE_FORMS


@pytest.mark.parametrize("form", sorted(LICENSE_FORMS))
def test_every_sample_archive_form(form):
    raw, spdx, family, decision, reason = LICENSE_FORMS[form]
    d = decide({"licenseurl": raw} if raw is not None else {})
    assert (d.spdx, d.family, d.decision) == (spdx, family, decision)
    assert (d.reason is None) == (decision == "accepted")
    if reason:
        assert reason in d.reason
    assert d.raw == ([] if raw is None else raw if isinstance(raw, list) else [raw])


# Forms seen on archive.org and elsewhere: statement → (SPDX id, family or None if rejected).
WILD = [
    ("http://creativecommons.org/licenses/by/3.0/", "CC-BY-3.0", "by"),
    ("https://creativecommons.org/licenses/by/4.0/", "CC-BY-4.0", "by"),
    ("https://creativecommons.org/licenses/by/4.0/legalcode", "CC-BY-4.0", "by"),
    ("https://creativecommons.org/licenses/by/4.0/legalcode.de", "CC-BY-4.0", "by"),
    ("http://creativecommons.org/licenses/by/2.5/deed.pt_BR", "CC-BY-2.5", "by"),
    ("http://creativecommons.org/licenses/by-sa/3.0/deed.zh-hans", "CC-BY-SA-3.0", "by-sa"),
    ("https://creativecommons.org/licenses/by-sa/4.0/?ref=chooser-v1", "CC-BY-SA-4.0", "by-sa"),
    (" https://CreativeCommons.org/Licenses/BY/4.0/ ", "CC-BY-4.0", "by"),
    ("http://www.creativecommons.org/licenses/by/3.0", "CC-BY-3.0", "by"),
    ("creativecommons.org/licenses/by-sa/2.0/uk/", "CC-BY-SA-2.0-UK", "by-sa"),
    ("http://creativecommons.org/licenses/by/3.0/us", "CC-BY-3.0-US", "by"),
    ("http://creativecommons.org/licenses/by/2.5/ar/", "LicenseRef-CC-BY-2.5-AR", "by"),
    ("http://creativecommons.org/licenses/by/1.0/", "CC-BY-1.0", "by"),
    ("http://creativecommons.org/licenses/by-nc-nd/3.0/", "CC-BY-NC-ND-3.0", None),
    ("http://creativecommons.org/licenses/by-nc/2.0/", "CC-BY-NC-2.0", None),
    ("http://creativecommons.org/licenses/by-nd/4.0/", "CC-BY-ND-4.0", None),
    ("http://creativecommons.org/licenses/publicdomain/", "LicenseRef-CC-PD-Dedication",
     "public-domain"),
    ("https://creativecommons.org/publicdomain/zero/1.0/legalcode", "CC0-1.0", "public-domain"),
    ("http://creativecommons.org/publicdomain/mark/1.0", "CC-PDM-1.0", "public-domain"),
    ("https://www.usa.gov/government-works/", "LicenseRef-US-Government-Work", "public-domain"),
    ("http://www.usa.gov/copyright.shtml", "LicenseRef-US-Government-Work", "public-domain"),
    ("CC BY-SA 4.0", "CC-BY-SA-4.0", "by-sa"),
    ("cc-by 3.0", "CC-BY-3.0", "by"),
    ("Creative Commons Attribution 3.0 United States", "CC-BY-3.0-US", "by"),
    ("Attribution-ShareAlike 4.0 International", "CC-BY-SA-4.0", "by-sa"),
    ("Attribution-NoDerivs 3.0 Unported", "CC-BY-ND-3.0", None),
    ("Attribution-NonCommercial 4.0 International", "CC-BY-NC-4.0", None),
    ("Licensed under CC0", "CC0-1.0", "public-domain"),
    ("This work is a work of the U.S. federal government", "LicenseRef-US-Government-Work",
     "public-domain"),
]


@pytest.mark.parametrize("statement, spdx, family", WILD)
def test_forms_seen_in_the_wild(statement, spdx, family):
    lic = parse_statement(statement)
    assert lic is not None and lic.spdx == spdx
    d = decide({"licenseurl": statement})
    assert d.family == family
    assert d.decision == ("accepted" if family else "rejected")


@pytest.mark.parametrize("statement", [
    "Public Domain",  # a claim, not a dedication: People's Speech shipped these as CC BY
    "All rights reserved", "see description", "http://example.org/my-license",
    "https://creativecommons.org/licenses/", "Attribution-NoDerivs-ShareAlike 3.0",
])
def test_unparseable_statements_are_rejected_with_the_statement_in_the_reason(statement):
    d = decide({"licenseurl": statement})
    assert d.decision == "rejected" and d.spdx is None
    assert statement in d.reason or "unparseable" in d.reason or "conflict" in d.reason


def test_missing_and_empty():
    for meta in ({}, {"licenseurl": ""}, {"licenseurl": []}, {"licenseurl": ["  "]}):
        d = decide(meta)
        assert d.decision == "rejected" and d.reason.startswith("missing")


def test_the_same_license_twice_is_not_a_conflict():
    d = decide({"licenseurl": ["https://creativecommons.org/licenses/by/4.0/",
                               "http://creativecommons.org/licenses/by/4.0"]})
    assert d.decision == "accepted" and d.spdx == "CC-BY-4.0"
    assert len(d.evidence) == 2


def test_a_license_and_a_reservation_of_rights_conflict():
    d = decide({"licenseurl": "https://creativecommons.org/licenses/by/4.0/",
                "rights": "Copyright 2019 ACME Radio. All rights reserved."})
    assert d.decision == "rejected" and "conflicting" in d.reason
    assert [e.field for e in d.evidence] == ["licenseurl", "rights"]


def test_evidence_from_other_fields_counts_when_it_agrees():
    d = decide({"licenseurl": "https://creativecommons.org/licenses/by-sa/4.0/",
                "rights": "CC BY-SA 4.0"})
    assert d.decision == "accepted" and d.family == "by-sa"
    d = decide({"rights": "https://creativecommons.org/licenses/by/4.0/"})
    assert d.decision == "accepted" and d.evidence[0].field == "rights"


def test_canonical_urls_and_names():
    lic = parse_statement("http://creativecommons.org/licenses/by-sa/3.0/deed.en_GB")
    assert lic.url == "https://creativecommons.org/licenses/by-sa/3.0/"
    assert lic.name == "Creative Commons Attribution-ShareAlike 3.0"
    assert normalise_url("HTTPS://www.CreativeCommons.org/licenses/by/4.0/deed.en") == \
        "creativecommons.org/licenses/by/4.0"


@pytest.mark.parametrize("metadata, reason", [
    ({"licenseurl": "http://creativecommons.org/licenses/by/3.0/",
      "rights": "For non-commercial use only. No derivatives."}, "non-commercial"),
    ({"licenseurl": "https://creativecommons.org/licenses/by-sa/4.0/",
      "rights": "Personal use only"}, "non-commercial"),
    ({"licenseurl": "https://creativecommons.org/licenses/by/4.0/",
      "license": "May not be redistributed"}, "no redistribution"),
    ({"rights": "This is not a work of the U.S. government. All rights reserved."},
     "all rights reserved"),
])
def test_restrictions_written_in_words_beat_a_permissive_url(metadata, reason):
    d = decide(metadata)
    assert d.decision == "rejected" and d.reason.startswith(reason)


def test_a_copyright_notice_is_not_a_reservation_of_rights():
    d = decide({"licenseurl": "https://creativecommons.org/licenses/by/4.0/",
                "rights": "Copyright 2015 Jane Doe"})
    assert d.decision == "accepted" and d.spdx == "CC-BY-4.0"
