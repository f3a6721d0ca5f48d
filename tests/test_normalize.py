"""Text normalisation: one case per rule."""

from __future__ import annotations

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
