"""Written text → the words a speaker says, in an acoustic model's alphabet.

Numbers, years, ordinals, money, percentages and times become words (``num2words``), common
abbreviations are expanded, ``&`` becomes "and", and everything else that is not a letter, an
apostrophe or a space goes. The result is what a CTC model's vocabulary can express; the raw
text is always kept beside it by the caller.

Linear in the text: a number is matched only from its first digit (a lookbehind), so a long run
of digits is scanned once, and a number longer than ``MAX_WORDED_DIGITS`` is read digit by digit
(as a serial or a phone number is said) instead of being handed to ``int`` and ``num2words``,
which are quadratic in the digits and overflow.
"""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

ABBREVIATIONS = {
    "dr.": "doctor", "mr.": "mister", "mrs.": "missus", "ms.": "miz", "prof.": "professor",
    "jr.": "junior", "sr.": "senior", "st.": "street", "ave.": "avenue", "rd.": "road",
    "mt.": "mount", "no.": "number", "vs.": "versus", "etc.": "et cetera",
    "approx.": "approximately",
    "dept.": "department", "gov.": "governor", "sen.": "senator", "rep.": "representative",
    "gen.": "general", "capt.": "captain", "lt.": "lieutenant", "col.": "colonel",
    "sgt.": "sergeant", "jan.": "january", "feb.": "february", "aug.": "august",
    "sept.": "september", "oct.": "october", "nov.": "november", "dec.": "december",
}
# Letter-by-letter abbreviations, spoken as their letters.
INITIALISMS = re.compile(r"\b((?:[A-Za-z]\.){2,})")
CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"),
              "£": ("pound", "pounds", "penny", "pence"), "€": ("euro", "euros", "cent", "cents")}

_NUM = r"\d{1,3}(?:,\d{3})+|\d+"
_START = r"(?<![\d,])"  # a number's first digit, not one inside it
# Up to hundreds of trillions in words; longer digit strings are read digit by digit.
MAX_WORDED_DIGITS = 15
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _words(n: int | float, **kw) -> str:
    return num2words(n, lang="en", **kw)


def _cardinal(digits: str, **kw) -> str:
    """A written integer ("1,234", "007") in words, or its digits one by one when long."""
    digits = digits.replace(",", "")
    if len(digits) > MAX_WORDED_DIGITS:
        return " ".join(DIGITS[int(d)] for d in digits)
    return _words(int(digits), **kw)


def _money(m: re.Match) -> str:
    one, many, sub_one, sub_many = CURRENCIES[m.group(1)]
    whole = m.group(2).replace(",", "")
    cents = int(m.group(3).ljust(2, "0")) if m.group(3) else 0  # "$3.5" is 50 cents
    scale = m.group(4)
    if scale:  # "$2 million", "$1.25 billion"
        amount = _number(m.group(2) + (f".{m.group(3)}" if m.group(3) else ""))
        return f"{amount} {scale} {many}"
    out = f"{_cardinal(whole)} {one if whole.lstrip('0') == '1' else many}"
    if cents:
        out += f" {_words(cents)} {sub_one if cents == 1 else sub_many}"
    return out


def _number(text: str) -> str:
    if "." in text:
        whole, frac = text.split(".")
        return f"{_cardinal(whole)} point " + " ".join(DIGITS[int(d)] for d in frac)
    if "," not in text and len(text) == 4 and 1100 <= int(text) <= 2099:
        return _words(int(text), to="year")
    return _cardinal(text)


def expand(text: str) -> str:
    """Written forms → spoken words (still in mixed case and with punctuation)."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"([$£€])\s?(" + _NUM + r")(?:\.(\d{1,2}))?(?:\s(million|billion|thousand))?",
                  _money, text)
    text = re.sub(_START + r"(" + _NUM + r"(?:\.\d+)?)\s?%",
                  lambda m: _number(m.group(1)) + " percent", text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: _cardinal(m.group(1), to="ordinal"),
                  text)
    text = re.sub(r"\b(a|p)\.m\.", lambda m: f"{m.group(1)} m", text, flags=re.I)
    text = re.sub(r"\bSt\.(?=\s+[A-Z])", "saint", text)
    text = INITIALISMS.sub(lambda m: " ".join(m.group(1).replace(".", "")), text)
    for abbr, full in ABBREVIATIONS.items():
        text = re.sub(rf"(?<![\w.]){re.escape(abbr)}", full, text, flags=re.I)
    text = re.sub(r"(?<![\d.])(?:" + _NUM + r")(?:\.\d+)?(?!\d)",
                  lambda m: _number(m.group(0)), text)
    text = text.replace("&", " and ")
    return text


def to_alphabet(text: str, *, upper: bool = True) -> str:
    """Only letters, apostrophes (inside words) and single spaces; no accents."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[-‐‑–—/]", " ", text)
    text = re.sub(r"[^A-Za-z' ]+", " ", text)
    text = re.sub(r"(?<![A-Za-z])'|'(?![A-Za-z])", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text.upper() if upper else text.lower()


def normalize(text: str, *, upper: bool = True) -> str:
    """Written text → the spoken words in the models' alphabet (A–Z, apostrophe, space)."""
    return to_alphabet(expand(text), upper=upper)
