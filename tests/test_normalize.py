"""Text normalisation: one case per rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from align.normalize import normalize


@pytest.mark.parametrize("written, spoken", [
    ("Hello, world!", "HELLO WORLD"),
    ("In 1987 they met.", "IN NINETEEN EIGHTY SEVEN THEY MET"),  # years
    ("In 2013.", "IN TWENTY THIRTEEN"),
    ("It cost 2,300 pounds.", "IT COST TWO THOUSAND THREE HUNDRED POUNDS"),  # thousands
    ("47 recordings", "FORTY SEVEN RECORDINGS"),  # counts
    ("3.5 degrees", "THREE POINT FIVE DEGREES"),  # decimals
    ("the 21st time", "THE TWENTY FIRST TIME"),  # ordinals
    ("the 2nd and 3rd", "THE SECOND AND THIRD"),
    ("$4.50 each", "FOUR DOLLARS FIFTY CENTS EACH"),  # currency
    ("$1", "ONE DOLLAR"),
    ("$18,000 bridge", "EIGHTEEN THOUSAND DOLLARS BRIDGE"),
    ("£2 million", "TWO MILLION POUNDS"),
    ("$1.25 billion", "ONE POINT TWO FIVE BILLION DOLLARS"),
    ("$3.5", "THREE DOLLARS FIFTY CENTS"),
    ("12% more", "TWELVE PERCENT MORE"),  # percentages
    ("Tom & Jerry", "TOM AND JERRY"),  # ampersand
    ("Dr. Smith and Mr. Jones", "DOCTOR SMITH AND MISTER JONES"),  # abbreviations
    ("Mrs. Owens, Prof. Baker", "MISSUS OWENS PROFESSOR BAKER"),
    ("3 Elm St. at 8 o'clock", "THREE ELM STREET AT EIGHT O'CLOCK"),
    ("St. James", "SAINT JAMES"),
    ("the U.S. census", "THE U S CENSUS"),  # initialisms
    ("at 10 a.m. or 3 p.m.", "AT TEN A M OR THREE P M"),
    ("at 10:30", "AT TEN THIRTY"),
    ("We're here, aren't we?", "WE'RE HERE AREN'T WE"),  # apostrophes inside words
    ("'quoted' words", "QUOTED WORDS"),  # quotes are not apostrophes
    ("“Curly” quotes — and dashes", "CURLY QUOTES AND DASHES"),
    ("naïve café", "NAIVE CAFE"),  # accents folded to the alphabet
    ("ﬁne ｗｉｄｅ", "FINE WIDE"),  # NFKC
    ("well-known", "WELL KNOWN"),
])
def test_rules(written, spoken):
    assert normalize(written) == spoken


def test_lower_case_alphabets():
    assert normalize("Dr. Who", upper=False) == "doctor who"


def test_long_numbers_are_read_digit_by_digit():
    """num2words overflows on 400 digits and int() refuses 4,300: a long digit string is said
    as its digits, like a serial number; up to hundreds of trillions it is a number."""
    digits = "9" * 400
    assert normalize(f"Serial {digits}.") == "SERIAL " + " ".join(["NINE"] * 400)
    assert normalize("1" * 5000).split() == ["ONE"] * 5000
    assert normalize(f"${digits}") == " ".join(["NINE"] * 400) + " DOLLARS"
    assert normalize(f"{digits}%").endswith("NINE PERCENT")
    assert normalize(f"the {digits}th") == "THE " + " ".join(["NINE"] * 400)
    assert normalize(f"{digits}.5").endswith("NINE POINT FIVE")
    assert normalize("999,999,999,999,999") == (
        "NINE HUNDRED AND NINETY NINE TRILLION NINE HUNDRED AND NINETY NINE BILLION NINE "
        "HUNDRED AND NINETY NINE MILLION NINE HUNDRED AND NINETY NINE THOUSAND NINE HUNDRED "
        "AND NINETY NINE")
    assert normalize("1,2,3") == "ONE TWO THREE"


ADVERSARIAL = {
    "digit run": '"1" * 400_000',
    "thousands groups": '"111," * 100_000',
    "digit run before a percent sign": '"1" * 400_000 + "x%"',
    "digit run before an ordinal": '"1" * 400_000 + "th"',
    "currency run": '"$1" * 20_000',
}


@pytest.mark.parametrize("expr", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_normalisation_is_linear(expr):
    """Each took minutes (or raised) before: a number regex tried from every digit."""
    result = subprocess.run(
        [sys.executable, "-c", f"from align.normalize import normalize\nnormalize({expr})"],
        capture_output=True, text=True, timeout=20, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
