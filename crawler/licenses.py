"""License statements → SPDX ids, families and a gate decision, on what the statements mean.

archive.org's ``licenseurl`` is messy: a string or a list, http or https, with or without ``www``
and the trailing slash, ``deed.xx``/``legalcode`` suffixes, jurisdiction ports (``/3.0/us/``),
and free text ("Attribution-NonCommercial-ShareAlike 3.0 Generic"). The gate reads it strictly:

- URLs are parsed, not pattern-matched: a known host exactly (``creativecommons.org`` with or
  without ``www``, ``usa.gov``), then a path grammar — ``licenses/<kind>/<version>/[<port>]``
  with the port from the list CC published for that version (``manifests.licenses``), and
  nothing after it but ``deed[.xx]``, ``legalcode[.xx]``, ``index.html`` or a query/fragment.
  ``licenses/by/4.0/nc/`` is no port (4.0 has none): unparseable, and its ``nc`` rejects it.
- Every statement of every license field is also read for restrictions in words (NC, ND, no
  redistribution, a reservation of rights, a denial of public-domain status), in a tokenised
  form so hyphens, underscores, case and spacing do not matter. Any restriction anywhere
  rejects the item; a license and anything that disagrees with it is a conflict.
- Several public-domain statements (PDM beside a U.S.-government URL) agree: the item is public
  domain under the most authoritative of them (``manifests.licenses.PUBLIC_DOMAIN``).
- Old forms seen on archive.org are explicit rules: ``licenses/publicdomain`` (CC's retired
  public-domain dedication), ``licenses/cc0/3.0/`` (228 captioned items in The People's Speech's
  counts; CC0 exists only as 1.0 and this URL was never a CC deed, but the waiver it names is
  unambiguous, so it reads as ``CC0-1.0`` with the raw URL kept in the evidence — and does not
  conflict with a ``publicdomain/zero/1.0`` beside it). ``licenses/publicdomain/prelinger/`` is
  refused on purpose: it is not a CC legal tool but the Prelinger Archives' own label, whose
  terms differ from film to film.

Every step is linear in its input: statements are capped at ``MAX_STATEMENT_CHARS`` (longer
ones reject the item unread) and ``MAX_STATEMENTS`` per field; values of the wrong type reject
the item with a reason instead of raising.
"""

from __future__ import annotations

import re
import reprlib
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from manifests.licenses import (
    CC_VERSIONS,
    PD_DEDICATION,
    PUBLIC_DOMAIN,
    US_GOVERNMENT,
    acceptable_spdx,
    cc_spdx,
    valid_port,
)

# Metadata fields that carry license statements, strongest first.
LICENSE_FIELDS = ("licenseurl", "license", "rights")
MAX_STATEMENT_CHARS = 8192
MAX_STATEMENTS = 32  # per field
MAX_TEXT_LICENSE_CHARS = 200  # a license's name; longer text is read only for restrictions

CC_HOSTS = frozenset({"creativecommons.org", "www.creativecommons.org"})
US_GOV_HOSTS = frozenset({"usa.gov", "www.usa.gov"})
US_GOV_PATHS = frozenset({"government-works", "copyright.shtml"})
# License kinds in CC URLs → the elements of their SPDX id ("by-nd-nc" is 1.0's spelling).
CC_KINDS = {"by": "BY", "by-sa": "BY-SA", "by-nd": "BY-ND", "by-nc": "BY-NC",
            "by-nc-sa": "BY-NC-SA", "by-nc-nd": "BY-NC-ND", "by-nd-nc": "BY-NC-ND"}
_LANG = r"[a-z]{2,3}(?:[_-][a-z0-9]{2,8}){0,2}"
URL_TAIL = re.compile(rf"(?:deed(?:\.{_LANG})?|legalcode(?:\.{_LANG})?|index\.html?)?")
SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,15}://", re.I)
HOSTLIKE = re.compile(r"(?:www\.)?[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})+(?:/|$)", re.I)

NAMES = {"CC0-1.0": "CC0 1.0 Universal", "CC-PDM-1.0": "Public Domain Mark 1.0",
         PD_DEDICATION: "Creative Commons Public Domain Dedication",
         US_GOVERNMENT: "Work of the U.S. federal government (public domain)"}
URLS = {"CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
        "CC-PDM-1.0": "https://creativecommons.org/publicdomain/mark/1.0/",
        PD_DEDICATION: "https://creativecommons.org/licenses/publicdomain/",
        US_GOVERNMENT: "https://www.usa.gov/government-works"}

# Free-text statements, tried on normalised lower-case text (never on URLs), whole: a name
# inside a longer sentence ("our other works are CC0") says nothing about this one.
_GOV = r"(?:u\.?s\.?|us|united states)(?: federal)? government"
TEXT_PUBLIC_DOMAIN: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^(?:cc0|cc zero|creative commons zero|creative commons cc0)(?: 1\.0)?"
                r"(?: universal)?(?: \(cc0 1\.0\))?(?: public domain dedication)?$"), "CC0-1.0"),
    (re.compile(r"^(?:creative commons )?public domain mark(?: 1\.0)?$"), "CC-PDM-1.0"),
    (re.compile(rf"^(?:this (?:work|recording|item|video|audio) is )?(?:an? )?(?:{_GOV} work|"
                rf"work of the {_GOV})(?: \(public domain\))?$"), US_GOVERNMENT),
]
TEXT_CC = re.compile(r"^(?:creative commons |cc[ -])?((?:attribution|by)(?:[ -](?:non-?commercial|"
                     r"nc|no ?deriv(?:ative)?s|nd|share-? ?alike|sa))*)[ -]+(\d\.\d)"
                     r"(?: ([a-z]+(?: [a-z]+)?))?$")
NEGATION = re.compile(r"\b(not|no|never|isn't|is not|n't)\b")
# Ports written out in free text ("3.0 United States").
PORT_NAMES = {"generic": None, "unported": None, "international": None, "united states": "us",
              "us": "us", "spain": "es", "germany": "de", "france": "fr", "netherlands": "nl",
              "australia": "au", "austria": "at", "england and wales": "uk", "uk": "uk",
              "japan": "jp", "igo": "igo"}

# Letters that look Latin in other scripts (Cyrillic, Greek), read as the Latin ones.
LOOKALIKES = str.maketrans("аеорсухіјѕԁԛԝАВЕКМНОРСТХІЈЅοαεικνρτυχΑΒΕΗΙΚΜΝΟΡΤΥΧ",
                           "aeopcyxijsdqwABEKMHOPCTXIJSoaeiknptuxABEHIKMNOPTYX")
# What statements say in words, read over their tokens (lower-case ASCII letters and digits
# joined by single spaces: "By-NC_ND", "NonCommercial" and "non–commercial" all tokenise to
# something these match). Every gap is bounded, so each search is linear.
_GAP = r"(?:[a-z0-9]+ ){0,%d}?"
_USE_ONLY = r"(?:personal|private|educational|education|research|academic|scholarly|home|" \
            r"classroom|nonprofit|non profit|internal)"
_SIGNAL_WORDS: list[tuple[str, list[str]]] = [
    ("non-commercial", [
        r"\bnon ?commercial", r"\bnc\b", r"bync|ncnd|ndnc", r"\bno ?commercial",
        r"\bnot " + _GAP % 6 + r"commercial",
        r"\bcommercial(?:ly)? " + _GAP % 6 + r"(?:prohibited|forbidden|excluded|restricted|"
        r"not permitted|not allowed|requires? " + _GAP % 3 + r"permission)",
        r"\b(?:prohibited|forbidden|not permitted|not allowed) " + _GAP % 3 + r"commercial",
        r"\bnot for (?:re ?)?sale\b", r"\b(?:may|must|can|shall) not be (?:re ?)?sold\b",
        r"\b" + _USE_ONLY + r" " + _GAP % 3 + r"(?:use|uses|purposes?|viewing|listening) only\b",
        r"\bonly " + _GAP % 3 + _USE_ONLY + r"\b",
        r"\bfor " + _USE_ONLY + r" (?:use|uses|purposes?)\b",
    ]),
    ("no-derivatives", [
        r"\bnd\b", r"bynd", r"\bno ?deriv", r"\bnon ?deriv",
        r"\bderivatives? " + _GAP % 3 + r"(?:prohibited|forbidden|not permitted|not allowed)",
        r"\bno (?:modifications?|alterations?|changes|edits|editing|adaptations?|remix[a-z]*)\b",
        r"\b(?:may|must|can|shall|should) not be " + _GAP % 2 + r"(?:modified|altered|edited|"
        r"changed|adapted|remixed|transformed|cut|excerpted)\b",
        r"\bwithout (?:any )?(?:modifications?|alterations?|changes)\b",
        r"\bdo not (?:modify|alter|edit|change|adapt|remix|cut)\b",
        r"\b(?:unmodified|unaltered|verbatim) " + _GAP % 2 + r"only\b",
    ]),
    ("no redistribution", [
        r"\bnot (?:be )?(?:re ?)?distribut",
        r"\b(?:may|must|can|shall) not be " + _GAP % 2 + r"(?:copied|shared|reproduced|"
        r"redistributed|republished|reposted|uploaded|broadcast)\b",
        r"\bwith " + _GAP % 2 + r"permission only\b", r"\bpermission (?:is )?required\b",
        r"\bno (?:re ?)?distribution\b",
        r"\bdo not (?:copy|share|reproduce|redistribute|distribute|repost|re ?upload|"
        r"republish)\b",
        r"\b(?:prohibited|forbidden|not permitted|not allowed) without " + _GAP % 3
        + r"permission\b",
        r"\bwithout " + _GAP % 3 + r"permission (?:is )?(?:prohibited|forbidden|not permitted|"
        r"not allowed)\b",
    ]),
]
SIGNALS = [(kind, re.compile("|".join(patterns))) for kind, patterns in _SIGNAL_WORDS]
RESERVED = re.compile(r"\ball rights reserved\b|\balle rechte vorbehalten\b|"
                      r"\btous droits reserves\b|\btodos los derechos reservados\b")
NOT_PUBLIC_DOMAIN = re.compile(
    r"\b(?:not|never|isn t|no longer) " + _GAP % 3 + r"public domain\b|"
    r"\bpublic domain " + _GAP % 2 + r"(?:not|unclear|unknown|uncertain|disputed|unverified)\b|"
    r"\bnot " + _GAP % 2 + r"works? of (?:the )?(?:u s|us|united states) " + _GAP % 1
    + r"government\b")
RESTRICTIONS = {"NC": "non-commercial", "ND": "no-derivatives"}
# A URL in a rights or license field that names one of these is a license statement: if it is
# not one the gate knows (a foreign host, a broken path), it disagrees with any license beside it.
LICENSE_WORDS = re.compile(r"creativecommons|licen[cs]e|publicdomain|government|copyright")


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


def tokens(text: str) -> str:
    """``text`` as lower-case ASCII words joined by single spaces, so wording is matched
    whatever its spelling: Cyrillic and Greek look-alike letters read as the Latin ones, accents,
    zero-width and punctuation characters dropped, letters split from digits ("nc4" is "nc 4")
    except in ordinals ("2nd" stays one word, not "nd")."""
    folded = unicodedata.normalize("NFKD", text.translate(LOOKALIKES))
    folded = folded.encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[0-9]+(?:st|nd|rd|th)(?![a-z])|[0-9]+|[a-z]+", folded))


def normalise_url(value: str) -> str:
    """A URL for display and comparison: lower case, no scheme, ``www.``, query, fragment,
    ``deed``/``legalcode`` suffix or trailing slash."""
    v = value.strip().lower()
    v = re.sub(r"^[a-z][a-z0-9+.-]{0,15}://", "", v)
    v = re.sub(r"^www\.", "", v)
    v = re.split(r"[?#]", v, maxsplit=1)[0]
    v = re.sub(r"/(deed(\.[a-z]{2,3}([_-][a-z0-9]{2,8}){0,2})?|legalcode(\.[a-z]{2,3}"
               r"([_-][a-z0-9]{2,8}){0,2})?|index\.html?)$", "", v)
    return v.rstrip("/")


def looks_like_url(value: str) -> bool:
    v = value.strip()
    return not re.search(r"\s", v) and bool(SCHEME.match(v) or HOSTLIKE.match(v))


def _cc(elements: str, version: str, port: str | None) -> License:
    spdx = cc_spdx(elements, version, port)
    parts = elements.split("-")
    words = {"BY": "Attribution", "NC": "NonCommercial", "SA": "ShareAlike",
             "ND": "NoDerivatives" if version == "4.0" else "NoDerivs"}
    name = "Creative Commons " + "-".join(words[e] for e in parts) + f" {version}"
    url = f"https://creativecommons.org/licenses/{elements.lower()}/{version}/"
    if port:
        url += f"{port.lower()}/"
        name += f" ({port.upper()} port)"
    restrictions = tuple(RESTRICTIONS[e] for e in ("NC", "ND") if e in parts)
    return License(spdx, None if restrictions else acceptable_spdx(spdx), url, name,
                   restrictions)


def _public_domain(spdx: str) -> License:
    return License(spdx, acceptable_spdx(spdx), URLS[spdx], NAMES[spdx])


def _tail_ok(rest: list[str]) -> bool:
    """Nothing after a license but one deed/legalcode/index segment (or a trailing slash)."""
    return not rest or (len(rest) == 1 and URL_TAIL.fullmatch(rest[0]) is not None)


def parse_url(value: str) -> License | str:
    """A license URL → License, or why it is not one (a sentence)."""
    v = value.strip()
    try:
        parts = urlsplit(v if SCHEME.match(v) else f"//{v}")
    except ValueError:
        return "not a well-formed URL"
    if parts.scheme.lower() not in ("", "http", "https"):
        return f"{parts.scheme}: is not a web address"
    host = parts.netloc.lower()
    segs = parts.path.lower().split("/")[1:] if parts.path.startswith("/") else None
    if host in US_GOV_HOSTS:
        if segs is not None and "/".join(segs).rstrip("/") in US_GOV_PATHS \
                and segs[-1] in ("", *US_GOV_PATHS):
            return _public_domain(US_GOVERNMENT)
        return "not a usa.gov page on government works"
    if host not in CC_HOSTS:
        return f"not a Creative Commons address (host {host[:80]!r})"
    if not segs:
        return "no license in the address"
    head, rest = segs[:3], segs[3:]
    if head[:1] == ["publicdomain"] and head[1:3] in (["zero", "1.0"], ["mark", "1.0"]):
        return _public_domain("CC0-1.0" if head[1] == "zero" else "CC-PDM-1.0") \
            if _tail_ok(rest) else "unexpected path after the license"
    if head[:1] != ["licenses"] or len(head) < 2:
        return "not a license address"
    kind = head[1]
    if kind == "publicdomain":
        if head[2:3] == ["prelinger"]:
            return ("licenses/publicdomain/prelinger/ is the Prelinger Archives' own label, not "
                    "a Creative Commons legal tool; its terms differ from film to film")
        return _public_domain(PD_DEDICATION) if _tail_ok(segs[2:]) \
            else "unexpected path after licenses/publicdomain"
    if kind == "cc0" and head[2:3] == ["3.0"]:
        return _public_domain("CC0-1.0") if _tail_ok(rest) \
            else "unexpected path after licenses/cc0/3.0"
    if kind not in CC_KINDS:
        return f"no Creative Commons license kind {kind[:40]!r}"
    version = head[2] if len(head) > 2 else ""
    if version not in CC_VERSIONS:
        return f"no version {version[:20]!r} of CC {kind}"
    port = None
    if rest and rest[0] and not URL_TAIL.fullmatch(rest[0]):
        port, rest = rest[0], rest[1:]
    if not valid_port(version, port):
        return (f"CC {kind} {version} has no port {port[:20]!r}" if port
                else f"CC {kind} {version} exists only in ports")
    if not _tail_ok(rest):
        return "unexpected path after the license"
    return _cc(CC_KINDS[kind], version, port)


def _parse_text(value: str) -> License | None:
    text = re.sub(r"\s+", " ", value.strip().lower()).strip(" .")
    text = re.sub(r"^(?:licensed under|released under|license:|licence:)\s*(?:the )?", "", text)
    if len(text) <= MAX_TEXT_LICENSE_CHARS and (m := TEXT_CC.match(text)):
        return _cc_from_text(m.group(1), m.group(2), m.group(3))
    if len(text) > MAX_TEXT_LICENSE_CHARS or NEGATION.search(text):
        return None
    for pattern, spdx in TEXT_PUBLIC_DOMAIN:
        if pattern.match(text):
            return _public_domain(spdx)
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
    port = None
    if port_text:
        if port_text not in PORT_NAMES:
            return None
        port = PORT_NAMES[port_text]
    if version not in CC_VERSIONS or not valid_port(version, port):
        return None
    return _cc("-".join(p for p in ("BY", "NC", "ND", "SA") if p in parts), version, port)


def parse_statement(value: str) -> License | None:
    """One license statement (a URL or a license's name) → License, or None if not understood."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_STATEMENT_CHARS:
        return None
    if looks_like_url(value):
        lic = parse_url(value)
        return lic if isinstance(lic, License) else None
    return _parse_text(value)


def _quote(value: str, limit: int = 160) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _statements(fld: str, value) -> tuple[list[str], str | None]:
    """A field's statements, or why the field cannot be read (wrong type, too many)."""
    if value is None:
        return [], None
    values = value if isinstance(value, list) else [value]
    if len(values) > MAX_STATEMENTS:
        return [], f"{fld} holds {len(values)} statements (limit {MAX_STATEMENTS})"
    for v in values:
        if not isinstance(v, str):
            what = "null" if v is None else type(v).__name__
            return [], f"{fld} holds {'a list with ' if value is values else ''}{what}, not text"
    return [v for v in values if v.strip()], None


def _reject(reason: str, lic: License | None, raw: list[str], evidence: list[Evidence]):
    return Decision("rejected", reason, lic, raw, evidence)


def decide(metadata: dict) -> Decision:
    """The gate: every statement in the license fields, read for what it means, reconciled
    into one decision."""
    raw: list[str] = []
    evidence: list[Evidence] = []
    if not isinstance(metadata, dict):
        return _reject(f"malformed: metadata is {type(metadata).__name__}, not an object",
                       None, raw, evidence)
    stated: list[tuple[str, Evidence]] = []  # (restriction, where) not explained by a license
    denials: list[Evidence] = []
    licenses: dict[str, License] = {}
    for fld in LICENSE_FIELDS:
        values, malformed = _statements(fld, metadata.get(fld))
        if malformed:
            shown = reprlib.repr(metadata.get(fld))
            if fld == "licenseurl":
                raw.append(shown)
            evidence.append(Evidence(fld, shown, None, f"malformed: {malformed}"))
            return _reject(f"malformed: {malformed}", None, raw, evidence)
        for value in values:
            if fld == "licenseurl":
                raw.append(value if len(value) <= MAX_STATEMENT_CHARS
                           else value[:MAX_STATEMENT_CHARS] + "…")
            if len(value) > MAX_STATEMENT_CHARS:
                evidence.append(Evidence(fld, value[:MAX_TEXT_LICENSE_CHARS] + "…", None,
                                         "oversized"))
                return _reject(f"oversized: a {fld} statement of {len(value)} characters "
                               f"(limit {MAX_STATEMENT_CHARS})", None, raw, evidence)
            url = looks_like_url(value)
            parsed = parse_url(value) if url else _parse_text(value)
            lic = parsed if isinstance(parsed, License) else None
            words = tokens(value)
            notes = [f"restricts use: {kind}" for kind, pattern in SIGNALS
                     if pattern.search(words) and not (lic and kind in lic.restrictions)]
            if RESERVED.search(words):
                notes.append("reserves rights")
            if NOT_PUBLIC_DOMAIN.search(words):
                notes.append("denies public domain")
            if lic:
                licenses.setdefault(lic.spdx, lic)
                evidence.append(Evidence(fld, value, lic.spdx, ""))
            elif fld == "licenseurl" or (url and LICENSE_WORDS.search(words.replace(" ", ""))):
                why = parsed if isinstance(parsed, str) else "not a recognised license"
                evidence.append(Evidence(fld, value, None, why))
            for note in notes:
                e = Evidence(fld, value, None, note)
                evidence.append(e)
                if note.startswith("restricts use: "):
                    stated.append((note.removeprefix("restricts use: "), e))
                elif note == "denies public domain":
                    denials.append(e)
    return _reconcile(licenses, stated, denials, raw, evidence)


def _reconcile(licenses: dict[str, License], stated: list[tuple[str, Evidence]],
               denials: list[Evidence], raw: list[str], evidence: list[Evidence]) -> Decision:
    if not evidence:
        return _reject("missing: no license statement", None, raw, evidence)
    only = next(iter(licenses.values())) if len(licenses) == 1 else None
    if stated:
        what, e = stated[0]
        return _reject(f"{what}: stated in {e.field}: {_quote(e.value)}", only, raw, evidence)
    pd = [s for s in PUBLIC_DOMAIN if s in licenses]
    if len(licenses) > 1 and len(pd) == len(licenses):
        only = licenses[pd[0]]  # several public-domain statements agree
    elif len(licenses) > 1:
        return _reject("conflicting evidence: " + ", ".join(sorted(licenses)), None, raw,
                       evidence)
    if only and only.family == "public-domain" and denials:
        return _reject(f"conflicting evidence: {only.spdx} and {denials[0].field} says "
                       f"{_quote(denials[0].value)}", only, raw, evidence)
    if reserved := [e for e in evidence if e.note == "reserves rights"]:
        if not only:
            return _reject(f"all rights reserved: stated in {reserved[0].field}: "
                           f"{_quote(reserved[0].value)}", None, raw, evidence)
        return _reject("conflicting evidence: a license and a reservation of rights", only,
                       raw, evidence)
    unparsed = [e for e in evidence if e.spdx is None and not e.note.startswith(
        ("restricts use", "denies public domain"))]
    if not only:
        return _reject("unparseable: " + "; ".join(f"{_quote(e.value)} ({e.note})"
                                                   for e in unparsed[:3]), None, raw, evidence)
    if unparsed:
        return _reject(f"conflicting evidence: also {_quote(unparsed[0].value)} "
                       f"({unparsed[0].note})", only, raw, evidence)
    if only.restrictions:
        return _reject(", ".join(only.restrictions) + f": {only.spdx}", only, raw, evidence)
    if only.family is None or acceptable_spdx(only.spdx) != only.family:
        return _reject(f"not an accepted license: {only.spdx}", only, raw, evidence)
    return Decision("accepted", None, only, raw, evidence)
