"""License statements → SPDX ids, families and a gate decision, driven by tables.

archive.org's ``licenseurl`` is messy: a string or a list, http or https, with or without ``www``
and the trailing slash, ``deed.xx``/``legalcode`` suffixes, jurisdiction ports (``/3.0/us/``),
and free text ("Attribution-NonCommercial-ShareAlike 3.0 Generic"). Every statement is kept
with where it was found (evidence); the decision follows DESIGN.md: public domain (CC0, PDM, US
government works), CC BY and CC BY-SA in every version and port are accepted; NC, ND, missing,
unparseable and conflicting evidence are rejected with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Ported CC licenses that have their own SPDX id; other ports get a LicenseRef- id.
SPDX_PORTED = {
    "CC-BY-2.5-AU", "CC-BY-3.0-AT", "CC-BY-3.0-AU", "CC-BY-3.0-DE", "CC-BY-3.0-IGO",
    "CC-BY-3.0-NL", "CC-BY-3.0-US", "CC-BY-SA-2.0-UK", "CC-BY-SA-2.1-JP", "CC-BY-SA-3.0-AT",
    "CC-BY-SA-3.0-DE", "CC-BY-SA-3.0-IGO", "CC-BY-NC-3.0-DE", "CC-BY-NC-ND-3.0-DE",
    "CC-BY-NC-ND-3.0-IGO", "CC-BY-NC-SA-2.0-DE", "CC-BY-NC-SA-2.0-FR", "CC-BY-NC-SA-2.0-UK",
    "CC-BY-NC-SA-3.0-DE", "CC-BY-NC-SA-3.0-IGO", "CC-BY-ND-3.0-DE",
}
US_GOVERNMENT = "LicenseRef-US-Government-Work"

# Patterns over a normalised URL (lower case, no scheme, no www., no trailing slash or deed).
URL_TABLE: list[tuple[re.Pattern, object]] = [
    (re.compile(r"creativecommons\.org/publicdomain/zero/1\.0"), "CC0-1.0"),
    (re.compile(r"creativecommons\.org/publicdomain/mark/1\.0"), "CC-PDM-1.0"),
    (re.compile(r"creativecommons\.org/licenses/publicdomain"), "LicenseRef-CC-PD-Dedication"),
    (re.compile(r"creativecommons\.org/licenses/(by(?:-nc)?(?:-nd|-sa)?)/(\d\.\d)(?:/([a-z]{2,3}))?$"),
     "cc"),
    (re.compile(r"usa\.gov/(government-works|copyright\.shtml|publicdomain)"), US_GOVERNMENT),
]
# Free-text statements, tried on lower-cased text.
TEXT_TABLE: list[tuple[re.Pattern, object]] = [
    (re.compile(r"\b(cc0|cc zero|creative commons zero)\b"), "CC0-1.0"),
    (re.compile(r"public domain mark"), "CC-PDM-1.0"),
    (re.compile(r"\b(united states|u\.s\.|us) government work\b|\bwork of the (us|u\.s\.|united "
                r"states) (federal )?government\b"), US_GOVERNMENT),
    (re.compile(r"^(?:creative commons |cc[ -])?((?:attribution|by)(?:[ -](?:non-?commercial|nc|"
                r"no ?deriv(?:ative)?s|nd|share-? ?alike|sa))*)[ -]+(\d\.\d)"
                r"(?: ([a-z]+(?: [a-z]+)?))?$"), "cc-text"),
]
FAMILIES = {"BY": "by", "BY-SA": "by-sa"}
PUBLIC_DOMAIN = {"CC0-1.0", "CC-PDM-1.0", "LicenseRef-CC-PD-Dedication", US_GOVERNMENT}
NAMES = {"CC0-1.0": "CC0 1.0 Universal", "CC-PDM-1.0": "Public Domain Mark 1.0",
         "LicenseRef-CC-PD-Dedication": "Creative Commons Public Domain Dedication",
         US_GOVERNMENT: "Work of the U.S. federal government (public domain)"}
URLS = {"CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
        "CC-PDM-1.0": "https://creativecommons.org/publicdomain/mark/1.0/",
        "LicenseRef-CC-PD-Dedication": "https://creativecommons.org/licenses/publicdomain/",
        US_GOVERNMENT: "https://www.usa.gov/government-works"}
# Ports written out in free text ("3.0 United States").
PORT_NAMES = {"generic": None, "unported": None, "international": None, "united states": "us",
              "us": "us", "spain": "es", "germany": "de", "france": "fr", "netherlands": "nl",
              "australia": "au", "austria": "at", "england and wales": "uk", "uk": "uk",
              "japan": "jp", "igo": "igo"}
# Metadata fields that carry license statements, strongest first.
LICENSE_FIELDS = ("licenseurl", "license", "rights")
ALL_RIGHTS_RESERVED = re.compile(r"all rights reserved|alle rechte vorbehalten|"
                                 r"tous droits r[ée]serv[ée]s", re.I)
# Restrictions stated in words in a rights or license field, whatever URL sits beside them.
RESTRICTIONS = [
    (re.compile(r"non-?commercial|not for (any )?commercial|no commercial|personal use only|"
                r"private use only|educational use only", re.I), "non-commercial"),
    (re.compile(r"no deriv|no derivatives|may not be (modified|altered|edited)|"
                r"without modification", re.I), "no-derivatives"),
    (re.compile(r"\bnot (be )?(re)?distribut|\bmay not be (copied|shared|reproduced)|"
                r"\bwith permission only\b|\bpermission required\b", re.I), "no redistribution"),
]
NEGATION = re.compile(r"\b(not|no|never|isn't|is not|n't)\b", re.I)


@dataclass(frozen=True)
class License:
    spdx: str
    family: str | None  # public-domain | by | by-sa | None when not acceptable
    url: str | None  # canonical license URL
    name: str
    restrictions: tuple[str, ...] = ()  # e.g. ("non-commercial",)


@dataclass
class Evidence:
    field: str  # metadata field the statement came from
    value: str  # the raw statement
    spdx: str | None  # what it normalised to (None: unparseable / a reservation of rights)
    note: str = ""


@dataclass
class Decision:
    """The license gate's verdict on one item, with everything an auditor needs."""

    decision: str  # accepted | rejected
    reason: str | None
    license: License | None
    raw: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def spdx(self) -> str | None:
        return self.license.spdx if self.license else None

    @property
    def family(self) -> str | None:
        return self.license.family if self.license and self.decision == "accepted" else None


def normalise_url(value: str) -> str:
    v = value.strip().lower()
    v = re.sub(r"^[a-z]+://", "", v)
    v = re.sub(r"^www\.", "", v)
    v = re.split(r"[?#]", v, maxsplit=1)[0]
    v = re.sub(r"/(deed(\.[a-z]{2,3}([_-][a-z]{2,4})?)?|legalcode(\.[a-z]{2,3})?)$", "", v)
    v = re.sub(r"/(index\.html?)?$", "", v)
    return v.rstrip("/")


def _cc(kind: str, version: str, port: str | None) -> License:
    elements = kind.upper()
    spdx = f"CC-{elements}-{version}"
    url = f"https://creativecommons.org/licenses/{kind.lower()}/{version}/"
    name_parts = {"BY": "Attribution", "NC": "NonCommercial", "ND": "NoDerivatives" if
                  version == "4.0" else "NoDerivs", "SA": "ShareAlike"}
    name = "Creative Commons " + "-".join(name_parts[e] for e in elements.split("-")) + \
        f" {version}"
    if port:
        spdx = f"{spdx}-{port.upper()}"
        if spdx not in SPDX_PORTED:
            spdx = f"LicenseRef-{spdx}"
        url = f"https://creativecommons.org/licenses/{kind.lower()}/{version}/{port.lower()}/"
        name += f" ({port.upper()} port)"
    restrictions = tuple(r for e, r in (("NC", "non-commercial"), ("ND", "no-derivatives"))
                         if e in elements.split("-"))
    family = None if restrictions else FAMILIES.get(elements)
    return License(spdx, family, url, name, restrictions)


def _public_domain(spdx: str) -> License:
    return License(spdx, "public-domain", URLS[spdx], NAMES[spdx])


def parse_statement(value: str) -> License | None:
    """One license statement (a URL or a license's name) → License, or None if not understood."""
    if not value or not value.strip():
        return None
    url = normalise_url(value)
    for pattern, result in URL_TABLE:
        if m := pattern.search(url):
            if result == "cc":
                return _cc(m.group(1), m.group(2), m.group(3))
            return _public_domain(result)
    text = re.sub(r"\s+", " ", value.strip().lower()).strip(" .")
    text = re.sub(r"^(licensed under|license:|licence:)\s*", "", text)
    for pattern, result in TEXT_TABLE:
        if (m := pattern.search(text)) and not (result != "cc-text" and NEGATION.search(text)):
            if result != "cc-text":
                return _public_domain(result)
            return _cc_from_text(m.group(1), m.group(2), m.group(3))
    return None


def _cc_from_text(elements: str, version: str, port_text: str | None) -> License | None:
    parts = ["BY"]
    flat = elements.replace("attribution", "").replace("by", "", 1)
    for word, code in (("non-commercial", "NC"), ("noncommercial", "NC"), ("nc", "NC"),
                       ("noderiv", "ND"), ("no deriv", "ND"), ("nd", "ND"),
                       ("sharealike", "SA"), ("share-alike", "SA"), ("share alike", "SA"),
                       ("sa", "SA")):
        if re.search(rf"(^|[ -]){re.escape(word)}", flat) and code not in parts:
            parts.append(code)
    if "ND" in parts and "SA" in parts:
        return None  # no such license
    kind = "-".join(p for p in ("BY", "NC", "ND", "SA") if p in parts).lower()
    port = None
    if port_text:
        if port_text not in PORT_NAMES:
            return None
        port = PORT_NAMES[port_text]
    return _cc(kind, version, port)


def _raw_values(value) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [str(v) for v in values if str(v).strip()]


def decide(metadata: dict) -> Decision:
    """The gate: every statement in the license fields, reconciled into one decision."""
    raw: list[str] = []
    evidence: list[Evidence] = []
    for fld in LICENSE_FIELDS:
        for value in _raw_values(metadata.get(fld)):
            lic = parse_statement(value)
            if fld == "licenseurl":
                raw.append(value)
                evidence.append(Evidence(fld, value, lic.spdx if lic else None,
                                         "" if lic else "not a recognised license"))
                continue
            if lic:
                evidence.append(Evidence(fld, value, lic.spdx))
            if ALL_RIGHTS_RESERVED.search(value):
                evidence.append(Evidence(fld, value, None, "reserves rights"))
            for pattern, restriction in RESTRICTIONS:
                if pattern.search(value) and not (lic and restriction in lic.restrictions):
                    evidence.append(Evidence(fld, value, None, f"restricts use: {restriction}"))
    found = {e.spdx for e in evidence if e.spdx}
    by_spdx = {lic.spdx: lic for e in evidence if e.spdx and (lic := parse_statement(e.value))}

    if not evidence:
        return Decision("rejected", "missing: no license statement", None, raw, evidence)
    if stated := [e for e in evidence if e.note.startswith("restricts use")]:
        lic = by_spdx.get(sorted(found)[0]) if len(found) == 1 else None
        what = stated[0].note.removeprefix("restricts use: ")
        return Decision("rejected", f"{what}: stated in {stated[0].field}: "
                                    f"{stated[0].value!r}", lic, raw, evidence)
    if reserved := [e for e in evidence if e.note == "reserves rights"]:
        lic = by_spdx.get(sorted(found)[0]) if len(found) == 1 else None
        if not found:
            return Decision("rejected", f"all rights reserved: stated in {reserved[0].field}",
                            None, raw, evidence)
        return Decision("rejected", "conflicting evidence: a license and a reservation of rights",
                        lic, raw, evidence)
    if len(found) > 1:
        return Decision("rejected", "conflicting evidence: " + ", ".join(sorted(found)), None,
                        raw, evidence)
    if not found:
        return Decision("rejected", "unparseable: " + "; ".join(repr(e.value) for e in evidence),
                        None, raw, evidence)
    unparsed = [e for e in evidence if e.spdx is None]
    lic = by_spdx[found.pop()]
    if unparsed:
        return Decision("rejected", "conflicting evidence: also " + repr(unparsed[0].value), lic,
                        raw, evidence)
    if lic.restrictions:
        return Decision("rejected", ", ".join(lic.restrictions) + f": {lic.spdx}", lic, raw,
                        evidence)
    if lic.family is None:
        return Decision("rejected", f"not an accepted license: {lic.spdx}", lic, raw, evidence)
    return Decision("accepted", None, lic, raw, evidence)
