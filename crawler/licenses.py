"""License statements → SPDX ids, families and a gate decision, on what the statements mean.

archive.org's ``licenseurl`` is messy: a string or a list, http or https, with or without ``www``
and the trailing slash, ``deed.xx``/``legalcode`` suffixes, jurisdiction ports (``/3.0/us/``),
and free text ("Attribution-NonCommercial-ShareAlike 3.0 Generic"). The gate reads it strictly:

- URLs are parsed, not pattern-matched: a known host exactly (``creativecommons.org`` with or
  without ``www``, ``usa.gov``; a scheme's default port is the host), then a path grammar —
  ``licenses/<kind>/<version>/[<port>]`` with the port from the list CC published for that
  version (``manifests.licenses``), and
  nothing after it but ``deed[.xx]``, ``legalcode[.xx]``, ``index.html``, CC's ``rdf``, or a
  query/fragment (trailing slashes say nothing).
  ``licenses/by/4.0/nc/`` is no port (4.0 has none): unparseable, and its ``nc`` rejects it.
- Every statement of every license field is also read for restrictions in words (NC, ND, no
  redistribution, a reservation of rights, a denial of public-domain status), in a tokenised
  form so hyphens, underscores, case and spacing do not matter (a bare "NC"/"ND" counts only
  in a CC code's company: "Raleigh, NC" is a place). Any restriction anywhere
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

- Fields read: ``licenseurl``, ``license``/``licence``, ``rights``, ``usage`` and
  ``copyright``, whatever their key's case (``Rights``, ``LICENSE``). ``description`` is not
  read: it is free prose about the recording (places, people, "Raleigh, NC"), far too noisy to
  judge a license on.
- A statement the gate does not understand is never ignored: anything in ``licenseurl`` or
  ``license`` that is not a known license, a URL in the other fields that is not one, or text
  there that speaks of a license/licence, terms of use or permission without naming a license
  it agrees with ("Standard YouTube License", "not licensed under Creative Commons") is
  conflicting evidence. A plain copyright notice beside CC BY/BY-SA is fine; beside a
  public-domain statement it is a conflict (a claim of copyright denies public domain).
- rightsstatements.org URLs are rights statements, not licenses: ``InC*`` claims copyright
  (``InC-EDU``/``InC-NC``, like ``NoC-NC``, also restricts use to non-commercial), and any of
  them beside a license conflicts. ``NoC-US`` ("No Copyright - United States") is an
  institution's claim that a work is public domain in the U.S.: it agrees with a public-domain
  statement beside it, but alone it is a claim, not a dedication (like the bare words
  "Public Domain"), and beside a CC license it contradicts the copyright that license rests on.

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

# Metadata fields that carry license statements, strongest first (keys read in any case).
LICENSE_FIELDS = ("licenseurl", "license", "licence", "rights", "usage", "copyright")
# Fields whose every statement must be a license the gate knows.
STRICT_FIELDS = frozenset({"licenseurl", "license", "licence"})
MAX_STATEMENT_CHARS = 8192
MAX_STATEMENTS = 32  # per field
MAX_TEXT_LICENSE_CHARS = 200  # a license's name; longer text is read only for restrictions

CC_HOSTS = frozenset({"creativecommons.org", "www.creativecommons.org"})
US_GOV_HOSTS = frozenset({"usa.gov", "www.usa.gov"})
US_GOV_PATHS = frozenset({"government-works", "copyright.shtml", "government-copyright"})
RS_HOSTS = frozenset({"rightsstatements.org", "www.rightsstatements.org"})
DEFAULT_PORTS = {"http": "80", "https": "443", "": None}
# License kinds in CC URLs → the elements of their SPDX id ("by-nd-nc" is 1.0's spelling).
CC_KINDS = {"by": "BY", "by-sa": "BY-SA", "by-nd": "BY-ND", "by-nc": "BY-NC",
            "by-nc-sa": "BY-NC-SA", "by-nc-nd": "BY-NC-ND", "by-nd-nc": "BY-NC-ND"}
_LANG = r"[a-z]{2,3}(?:[_-][a-z0-9]{2,8}){0,2}"
URL_TAIL = re.compile(rf"(?:deed(?:\.{_LANG})?|legalcode(?:\.{_LANG})?|index\.html?|rdf)?")
SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,15}://", re.I)
HOSTLIKE = re.compile(r"(?:www\.)?[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})+(?::[0-9]{1,5})?(?:/|$)",
                      re.I)

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
# Small capitals (ɴᴄ) have no NFKC decomposition, so they are mapped too; © and ℗ read as
# the word "copyright".
LOOKALIKES = str.maketrans({
    **dict(zip("аеорсухіјѕԁԛԝАВЕКМНОРСТХІЈЅοαεικνρτυχΑΒΕΗΙΚΜΝΟΡΤΥΧ",
               "aeopcyxijsdqwABEKMHOPCTXIJSoaeiknptuxABEHIKMNOPTYX", strict=True)),
    **dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘꞯʀꜱᴛᴜᴠᴡʏᴢ", "abcdefghijklmnopqrstuvwyz", strict=True)),
    "©": " copyright ", "℗": " copyright "})
# What statements say in words, read over their tokens (lower-case ASCII letters and digits
# joined by single spaces: "By-NC_ND", "NonCommercial" and "non–commercial" all tokenise to
# something these match). Every gap is bounded, so each search is linear.
# A gap of a few words that never crosses a negation: "commercial use is not prohibited" is no
# prohibition ("not prohibited" is never read as "prohibited" after a gap).
_GAP = r"(?:(?!not |no |never |nor )[a-z0-9]+ ){0,%d}?"
_USE_ONLY = r"(?:personal|private|educational|education|research|academic|scholarly|home|" \
            r"classroom|nonprofit|non profit|not for profit|internal)"
_FORBIDDEN = r"(?:prohibited|forbidden|excluded|restricted|disallowed|banned|not permitted|" \
             r"not allowed|not authori[sz]ed)"
_NEEDS_CONSENT = r"(?:requires?|needs?|subject to) " + _GAP % 3 + r"(?:permission|licen[cs]e|" \
                 r"agreement|consent|authori[sz]ation|approval|contract)"
# A bare NC/ND is a signal only in a CC code's company (after cc/by/sa/nc/nd/a license word,
# a version, deed or legalcode, or before a version) or alone: "Raleigh, NC" and "Bismarck, ND"
# are places.
_CODE_BEFORE = r"(?:^|\b(?:cc|by|sa|nc|nd|n c|n d|attribution|licen[cs]e[ds]?|deed|legalcode|" \
               r"[1-4] [05]) )"
_CODE_AFTER = r"(?= (?:by|sa|nc|nd|n c|n d)\b| [1-4] [05]\b)"
_SIGNAL_WORDS: list[tuple[str, list[str]]] = [
    ("non-commercial", [
        r"\bnon ?co?m+e?r+[a-z]{0,4}al", r"\bnon ?co?m+e?r+cial",
        _CODE_BEFORE + r"(?:nc|n c)\b", r"\b(?:nc|n c)" + _CODE_AFTER,
        r"\b(?:cc)?by(?:sa|nd)*nc", r"ncnd|ndnc", r"\bno ?commercial",
        r"\bnot " + _GAP % 6 + r"commercial",
        r"\b(?:commercial(?:ly)?|re ?sale|sale|selling) " + _GAP % 6 + r"(?:" + _FORBIDDEN
        + "|" + _NEEDS_CONSENT + ")",
        r"\b(?:prohibited|forbidden|not permitted|not allowed) " + _GAP % 3 + r"commercial",
        r"\bnot for (?:re ?)?sale\b", r"\bnot (?:to )?be (?:re ?)?sold\b",
        r"\b(?:may|must|can|shall|cannot) not be (?:re ?)?sold\b", r"\bcannot be (?:re ?)?sold\b",
        r"\bnot for profit(?= use| uses| purpose| only|$)",
        r"\b" + _USE_ONLY + r" " + _GAP % 3 + r"(?:use|uses|purposes?|viewing|listening) only\b",
        r"\bonly " + _GAP % 3 + _USE_ONLY + r"\b",
        r"\bfor " + _USE_ONLY + r" (?:use|uses|purposes?)\b",
        r"\beducational use permitted\b",
        # CC's element names in other languages (de, es, fr, it, pt, nl)
        r"\bnicht ?kommerziell", r"\bno ?comercial", r"\bnao ?comercial",
        r"\bpas d ?utilisation commerciale", r"\bniet ?commercieel", r"\bsin ?fines ?comerciales",
    ]),
    ("no-derivatives", [
        _CODE_BEFORE + r"(?:nd|n d)\b", r"\b(?:nd|n d)" + _CODE_AFTER,
        r"\b(?:cc)?by(?:sa|nc)*nd", r"\bno ?deriv", r"\bnon ?deriv",
        r"\b(?:derivatives?|derivative works?|modifications?|modifying|alterations?|altering|"
        r"edits?|editing|changes|adaptations?|adapting|remix[a-z]*|transformations?) "
        + _GAP % 4 + _FORBIDDEN,
        r"\bno (?:modifications?|alterations?|changes|edits|editing|adaptations?|remix[a-z]*)\b",
        r"\b(?:may|must|can|shall|should|do|does|cannot) not be " + _GAP % 2
        + r"(?:modified|altered|edited|changed|adapted|remixed|transformed|cut|excerpted)\b",
        r"\b(?:(?:may|must|can|shall|should|do|does|will) not|can t|don t|cannot) " + _GAP % 2
        + r"(?:modify|alter|edit|change|adapt|remix|transform|build upon|cut|excerpt)\b",
        r"\bwithout (?:any )?(?:modifications?|alterations?|changes)\b",
        r"\b(?:unmodified|unaltered|verbatim) " + _GAP % 2 + r"only\b",
        r"\bkeine ?bearbeitung", r"\bsin ?obras? ?derivadas?", r"\bpas de modification",
        r"\bnon ?opere ?derivate", r"\bsem ?deriva", r"\bgeen ?afgeleide",
    ]),
    ("no redistribution", [
        r"\bnot (?:be )?(?:re ?)?distribut",
        r"\b(?:may|must|can|shall) not be " + _GAP % 2 + r"(?:copied|shared|reproduced|"
        r"redistributed|republished|reposted|uploaded|broadcast)\b",
        r"\b(?:re ?distribution|distribution|reproduction|reproducing|copying|sharing|"
        r"duplication|re ?publication|republishing|re ?posting|re ?upload[a-z]*|"
        r"re ?broadcast[a-z]*) " + _GAP % 4 + r"(?:" + _FORBIDDEN + "|" + _NEEDS_CONSENT + ")",
        r"\bwith " + _GAP % 2 + r"permission only\b", r"(?<!\bno )\bpermission (?:is )?required\b",
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
# Phrases that look like a restriction word for word but grant the use: removed before reading.
BENIGN = re.compile(r"\b(?:both )?commercial (?:and|or) non ?commercial(?: use| uses| purposes)?|"
                    r"\bnon ?commercial (?:and|or) commercial\b|"
                    r"\bno permission (?:is )?(?:required|needed|necessary)\b")
RESERVED = re.compile(r"(?<!\bno )(?<!\bsome )\brights? (?:are |is )?reserved\b|"
                      r"\balle rechte vorbehalten\b|\btous droits reserves\b|"
                      r"\btodos (?:los derechos reservados|os direitos reservados)\b|"
                      r"\btutti i diritti riservati\b|\balle rechten voorbehouden\b")
NOT_PUBLIC_DOMAIN = re.compile(
    r"\b(?:not|never|isn t|no longer) (?:(?!copyright|and |but |or )[a-z0-9]+ ){0,3}?"
    r"public domain\b|"
    r"\bpublic domain (?:status )?(?:is |was )?(?:not|unclear|unknown|uncertain|disputed|"
    r"unverified)\b|"
    r"\bnot " + _GAP % 2 + r"works? of (?:the )?(?:u s|us|united states) " + _GAP % 1
    + r"government\b")
RESTRICTIONS = {"NC": "non-commercial", "ND": "no-derivatives"}
# Text that speaks of licensing: not understood, it disagrees with any license beside it.
LICENSE_TALK = re.compile(r"\blicen[cs]|\bterms (?:of (?:use|service)|and conditions)\b|"
                          r"\bconditions of use\b|\bpermission|\bcreative commons\b|\bcc\b|"
                          r"\bproprietary\b|\beula\b|\bcopyleft\b|\bgpl\b|\bstreaming only\b")
NEGATED_TALK = re.compile(r"\b(?:not|no|never|nor|t|without) (?:[a-z0-9]+ ){0,2}?(?:licen[cs]|"
                          r"cc\b|creative commons|permission|terms)")
# A CC BY/BY-SA license named inside a sentence ("it is licensed CC BY"): agrees with the same
# license beside it, disagrees with anything else.
MENTION = re.compile(r"\b(?:cc|creative commons)(?: licen[cs]e)? (?:attribution|by)"
                     r"( share ?alike| sa)?(?: ([1-4]) ([05])\b)?")
# Words that claim copyright, unless a negation or an expiry is next to them.
CLAIM_WORDS = frozenset({"copyright", "copyrighted", "copyrights"})
CLAIM_BEFORE = frozenset({"not", "no", "non", "never", "without", "t", "free", "expired",
                          "lapsed", "out"})
CLAIM_AFTER = frozenset({"expired", "lapsed", "free", "waived", "not", "never", "restrictions",
                         "status"})


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
    text = re.sub(r"\([cCpP]\)", " copyright ", text)  # (c) and (p) notices
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


def _host(netloc: str, scheme: str) -> str:
    """The host of ``netloc`` when its port is the scheme's default (``:443`` on https), else
    ``netloc`` whole, which matches no known host."""
    host, sep, port = netloc.rpartition(":")
    if sep and (port == DEFAULT_PORTS.get(scheme) or (not scheme and port in ("80", "443"))):
        return host
    return netloc


def rights_statement(value: str) -> str | None:
    """The code of a rightsstatements.org URL (``InC-EDU``, ``NoC-US``), upper case, or None
    when ``value`` is not one."""
    v = value.strip()
    try:
        parts = urlsplit(v if SCHEME.match(v) else f"//{v}")
    except ValueError:
        return None
    if _host(parts.netloc.lower(), parts.scheme.lower()) not in RS_HOSTS:
        return None
    segs = parts.path.strip("/").split("/")
    if len(segs) >= 2 and segs[0].lower() in ("vocab", "page", "data"):
        return segs[1].upper()[:20]
    return "?"


def parse_url(value: str) -> License | str:
    """A license URL → License, or why it is not one (a sentence)."""
    v = value.strip()
    try:
        parts = urlsplit(v if SCHEME.match(v) else f"//{v}")
    except ValueError:
        return "not a well-formed URL"
    if parts.scheme.lower() not in ("", "http", "https"):
        return f"{parts.scheme}: is not a web address"
    host = _host(parts.netloc.lower(), parts.scheme.lower())
    # trailing slashes say nothing (".../by/4.0//"); empty segments inside the path do
    path = parts.path.lower()
    segs = path.rstrip("/").split("/")[1:] if path.startswith("/") else None
    if host in US_GOV_HOSTS:
        if segs is not None and "/".join(segs) in US_GOV_PATHS:
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
    text = re.sub(r" (?:public )?licen[cs]e$", "", text)
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


def _fields(metadata: dict) -> list[tuple[str, str, object]]:
    """(key as found, field it stands for, value) for every license field, in any key case,
    strongest field first."""
    found = []
    for key, value in metadata.items():
        if isinstance(key, str) and (fld := key.lower()) in LICENSE_FIELDS:
            found.append((LICENSE_FIELDS.index(fld), key, fld, value))
    found.sort(key=lambda f: f[0])
    return [(key, fld, value) for _, key, fld, value in found]


def claims_copyright(words: str) -> bool:
    """Whether tokenised text claims copyright ("© 2021 Jane Doe", "In Copyright", "protected
    by copyright"), as opposed to denying it ("not protected by copyright", "No copyright",
    "copyright expired", "no known copyright restrictions")."""
    ws = words.split()
    for i, w in enumerate(ws):
        if w in CLAIM_WORDS and not CLAIM_BEFORE.intersection(ws[max(0, i - 4):i]) \
                and not CLAIM_AFTER.intersection(ws[i + 1:i + 4]):
            return True
    return False


def _read_rights_statement(code: str) -> list[str]:
    """Notes for a rightsstatements.org code (see the module docstring)."""
    if code == "NOC-US":
        return ["public-domain claim (rightsstatements.org NoC-US), not a license"]
    notes = [f"rightsstatements.org {code} is a rights statement, not a license"]
    if code in ("INC-EDU", "INC-NC", "NOC-NC"):
        notes.append("restricts use: non-commercial")
    if code.startswith("INC"):
        notes.append("claims copyright")
    return notes


def _read_text(words: str) -> tuple[list[str], list[tuple[str, str | None]]]:
    """Notes on free text in a rights-like field that no license name parses, and the CC
    licenses it names: speaking of licensing without naming one, or negating it, is a
    statement the gate does not understand."""
    if not LICENSE_TALK.search(words):
        return [], []
    mentions = [("BY-SA" if m[1] else "BY", f"{m[2]}.{m[3]}" if m[2] else None)
                for m in MENTION.finditer(words)]
    if NEGATED_TALK.search(words) or not mentions:
        return ["speaks of licensing but names no license the gate understands"], []
    return [], mentions


def decide(metadata: dict) -> Decision:
    """The gate: every statement in the license fields, read for what it means, reconciled
    into one decision."""
    raw: list[str] = []
    evidence: list[Evidence] = []
    if not isinstance(metadata, dict):
        return _reject(f"malformed: metadata is {type(metadata).__name__}, not an object",
                       None, raw, evidence)
    stated: list[tuple[str, Evidence]] = []  # (restriction, where) not explained by a license
    denials: list[Evidence] = []  # denials of public domain, claims of copyright
    claims: list[Evidence] = []  # public-domain claims that are no license (NoC-US)
    mentions: list[tuple[str, str | None, Evidence]] = []  # CC licenses named in sentences
    licenses: dict[str, License] = {}
    for key, fld, field_value in _fields(metadata):
        values, malformed = _statements(key, field_value)
        if malformed:
            shown = reprlib.repr(field_value)
            if fld == "licenseurl":
                raw.append(shown)
            evidence.append(Evidence(key, shown, None, f"malformed: {malformed}"))
            return _reject(f"malformed: {malformed}", None, raw, evidence)
        for value in values:
            if fld == "licenseurl":
                raw.append(value if len(value) <= MAX_STATEMENT_CHARS
                           else value[:MAX_STATEMENT_CHARS] + "…")
            if len(value) > MAX_STATEMENT_CHARS:
                evidence.append(Evidence(key, value[:MAX_TEXT_LICENSE_CHARS] + "…", None,
                                         "oversized"))
                return _reject(f"oversized: a {key} statement of {len(value)} characters "
                               f"(limit {MAX_STATEMENT_CHARS})", None, raw, evidence)
            url = looks_like_url(value)
            parsed = parse_url(value) if url else _parse_text(value)
            lic = parsed if isinstance(parsed, License) else None
            words = BENIGN.sub(" ", tokens(value))
            notes = [f"restricts use: {kind}" for kind, pattern in SIGNALS
                     if pattern.search(words) and not (lic and kind in lic.restrictions)]
            if RESERVED.search(words):
                notes.append("reserves rights")
            if NOT_PUBLIC_DOMAIN.search(words):
                notes.append("denies public domain")
            if not url and claims_copyright(words):
                notes.append("claims copyright")
            found: list[tuple[str, str | None]] = []
            if lic:
                licenses.setdefault(lic.spdx, lic)
                evidence.append(Evidence(key, value, lic.spdx, ""))
            elif url and (code := rights_statement(value)):
                notes[:0] = _read_rights_statement(code)
            elif fld in STRICT_FIELDS or url:
                why = parsed if isinstance(parsed, str) else "not a recognised license"
                evidence.append(Evidence(key, value, None, why))
            else:
                text_notes, found = _read_text(words)
                notes[:0] = text_notes
            for note in dict.fromkeys(notes):
                e = Evidence(key, value, None, note)
                if note != "claims copyright":  # evidence only where it decides (below)
                    evidence.append(e)
                if note.startswith("restricts use: "):
                    stated.append((note.removeprefix("restricts use: "), e))
                elif note in ("denies public domain", "claims copyright"):
                    denials.append(e)
                elif note.startswith("public-domain claim"):
                    claims.append(e)
            for elements, version in found:
                e = Evidence(key, value, None, f"names CC {elements}" + (f" {version}" if version
                                                                       else ""))
                evidence.append(e)
                mentions.append((elements, version, e))
    return _reconcile(licenses, stated, denials, claims, mentions, raw, evidence)


def _agrees(lic: License | None, elements: str, version: str | None) -> bool:
    """Whether a CC license named in a sentence is ``lic``."""
    return bool(lic and lic.url and f"/licenses/{elements.lower()}/" in lic.url
                and (version is None or f"/{version}/" in lic.url))


UNDERSTOOD = ("restricts use", "denies public domain", "claims copyright", "public-domain claim",
              "names CC ")


def _reconcile(licenses: dict[str, License], stated: list[tuple[str, Evidence]],
               denials: list[Evidence], claims: list[Evidence],
               mentions: list[tuple[str, str | None, Evidence]], raw: list[str],
               evidence: list[Evidence]) -> Decision:
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
        if denials[0] not in evidence:
            evidence.append(denials[0])  # a copyright claim, which only public domain minds
        return _reject(f"conflicting evidence: {only.spdx} and {denials[0].field} says "
                       f"{_quote(denials[0].value)}", only, raw, evidence)
    if reserved := [e for e in evidence if e.note == "reserves rights"]:
        if not only:
            return _reject(f"all rights reserved: stated in {reserved[0].field}: "
                           f"{_quote(reserved[0].value)}", None, raw, evidence)
        return _reject("conflicting evidence: a license and a reservation of rights", only,
                       raw, evidence)
    unparsed = [e for e in evidence if e.spdx is None and not e.note.startswith(UNDERSTOOD)]
    unparsed += [e for elements, version, e in mentions if not _agrees(only, elements, version)]
    if not (only and only.family == "public-domain"):
        unparsed += claims  # a public-domain claim agrees only with a public-domain statement
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
