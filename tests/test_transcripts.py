"""Transcript parsing: what is speech and what is not, whatever the file's encoding."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from align.transcripts import (
    Cue,
    Transcript,
    TranscriptError,
    clean,
    cue_spans,
    parse,
    read_transcript,
    sentences,
)
from manifests.textfile import MAX_TEXT_BYTES, decode

ROOT = Path(__file__).resolve().parents[1]


def bounded(code: str, timeout: float = 20) -> str:
    """Run ``code`` in a fresh interpreter that must finish within ``timeout`` seconds: the
    inputs below took minutes to hours before (quadratic), and take well under a second now."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("raw, spoken", [
    ("<i>Hello</i> there", "Hello there"),
    ("<v Narrator>It began in spring.</v>", "It began in spring."),
    ("{\\an8}Top line", "Top line"),
    ("[MUSIC PLAYING] We begin.", "We begin."),
    ("(applause) Thank you. (laughter)", "Thank you."),
    ("♪ la la la ♪ Good evening.", "Good evening."),
    ("NARRATOR: The river rose.", "The river rose."),
    ("JOHN SMITH: We met.", "We met."),
    ("Mary Jones: Yes.", "Yes."),
    (">> Good morning. >> Morning.", "Good morning. Morning."),
    ("- Did we?\n- We did.", "Did we? We did."),
    ("The U.S. said: no.", "The U.S. said: no."),  # not a speaker label
    ("Dr. Smith's report, page 3.", "Dr. Smith's report, page 3."),
])
def test_clean(raw, spoken):
    assert clean(raw) == spoken


@pytest.mark.parametrize("data", [
    "Café “déjà vu” — naïve".encode("utf-8-sig"),
    "Café “déjà vu” — naïve".encode("utf-16"),
    "Café “déjà vu” — naïve".encode("cp1252"),
    "Café “déjà vu” — naïve".encode().decode("latin-1").encode("utf-8"),  # mojibake
])
def test_decode_any_encoding(data):
    assert decode(data) in ("Café “déjà vu” — naïve", 'Café "déjà vu" — naïve')


def test_srt_and_vtt_keep_millisecond_times():
    srt_text = "1\n00:00:01,250 --> 00:00:03,500\n<i>One.</i>\n\n2\n00:00:04,000 --> " \
               "00:00:05,125\n[music]\n\n3\n00:00:05,200 --> 00:00:07,000\nTwo.\n"
    t = parse(srt_text, "srt")
    assert [(c.start, c.end, c.text) for c in t.cues] == [(1.25, 3.5, "One."),
                                                          (5.2, 7.0, "Two.")]
    vtt_text = "WEBVTT\n\n00:00:00.897 --> 00:00:05.276\n<v Bob>Hi there.</v>\n"
    assert [(c.start, c.end, c.text) for c in parse(vtt_text, "vtt").cues] == [
        (0.897, 5.276, "Hi there.")]


def test_sample_archive_transcripts_hold_exactly_the_spoken_sentences(archive):
    checked = 0
    for truth_path in sorted((archive / "truth").rglob("*.json")):
        truth = json.loads(truth_path.read_text())
        if not truth["transcript_matches"] or not truth["transcripts"]:
            continue
        t = truth["transcripts"][0]
        if t["kind"] == "asr":
            continue
        transcript = read_transcript(archive / "items" / truth["item_id"] / t["name"])
        spoken = " ".join(s["text"] for s in truth["sentences"])
        assert transcript.text == spoken, t["name"]
        assert not re.search(r"[\[\]<>♪]|\(applause\)|NARRATOR", transcript.text)
        assert transcript.timed == (t["kind"] != "txt")
        checked += 1
    assert checked >= 5


def test_sentences_respect_abbreviations():
    assert sentences("Dr. Smith arrived at 3 Elm St. shortly after 8. The U.S. census "
                     "said so! \"Really?\" she asked.") == [
        "Dr. Smith arrived at 3 Elm St. shortly after 8.", "The U.S. census said so!",
        "\"Really?\" she asked."]


def test_cue_spans_cover_the_cues_an_utterance_touches():
    t = parse("1\n00:00:01,000 --> 00:00:03,000\nHello there. How are\n\n"
              "2\n00:00:03,500 --> 00:00:06,000\n[music] you today? Fine.\n", "srt")
    parts = sentences(t.text)
    assert parts == ["Hello there.", "How are you today?", "Fine."]
    assert cue_spans(t, parts) == [(1.0, 3.0), (1.0, 6.0), (3.5, 6.0)]
    assert cue_spans(parse("Hello there. Fine.", "txt"), ["Hello there.", "Fine."]) == [None] * 2


# ~400 KB each: prefixes that never close, label-like runs, blank lines, unclosed brackets.
ADVERSARIAL = {
    "unclosed tags": '"<a " * 150_000',
    "bare angles": '"<" * 400_000',
    "unclosed ass tags": '"{\\\\" * 200_000',
    "unclosed brackets": '"[" * 400_000',
    "unclosed parentheses": '"(" * 400_000',
    "brackets inside tags": '"<a [ (" * 70_000',
    "label-like initials": '"A." * 200_000',
    "label-like hyphens": '"A-A " * 100_000',
    "blank lines": '"\\n" * 400_000 + "x"',
    "space lines": '" \\n" * 200_000',
    "notes": '"\u266a" * 100_000 + "x" * 300_000',
}


@pytest.mark.parametrize("expr", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_markup_stripping_is_linear(expr):
    out = bounded(f"from align.transcripts import clean\nprint(len(clean({expr})))")
    assert int(out) >= 0


def test_sentence_splitting_is_linear_and_keeps_every_word():
    """pysbd's cost grows faster than its input (200 KB of sentences: 9 s; a one-line SRT of
    that size spent minutes): it sees windows; no word is lost or split at a window edge."""
    out = bounded("""
import json
from align.transcripts import sentences
text = " ".join(f"Dr. Smith met guest number {i} on the U.S. coast today." for i in range(8000))
long = "word " * 80_000  # one "sentence" of 400 KB: cut at spaces
found, cut = sentences(text), sentences(long.strip())
print(json.dumps([len(found), " ".join(found) == text, found[:2],
                  " ".join(cut) == long.strip(), max(map(len, cut))]))
""")
    count, joined, first, cut_joined, longest = json.loads(out)
    assert count == 8000 and joined
    assert first == ["Dr. Smith met guest number 0 on the U.S. coast today.",
                     "Dr. Smith met guest number 1 on the U.S. coast today."]
    assert cut_joined and longest <= 2000
    unbroken = sentences("x" * 5000)  # no space to cut at: cut at the window's limit
    assert "".join(unbroken) == "x" * 5000 and max(map(len, unbroken)) <= 2000


def test_cue_spans_of_many_cues_are_found_without_pairwise_search():
    out = bounded("""
from align.transcripts import Cue, Transcript, cue_spans
t = Transcript("srt", tuple(Cue(i, i + 1.0, f"Sentence {i}.") for i in range(40_000)))
spans = cue_spans(t, [f"Sentence {i}." for i in range(40_000)] + ["not in the text"])
assert spans[:-1] == [(i, i + 1.0) for i in range(40_000)] and spans[-1] is None
print("ok")
""")
    assert out.strip() == "ok"


def test_cue_spans_across_cue_boundaries():
    t = Transcript("srt", (Cue(0, 1, "One two"), Cue(1, 2, "three."), Cue(2, 3, "Four."),
                           Cue(3, 4, "Five six.")))
    assert cue_spans(t, ["One two three.", "Four.", "Five", "six."]) == [
        (0, 2), (2, 3), (3, 4), (3, 4)]


@pytest.mark.parametrize("kind, text, reason", [
    ("vtt", "00:00:00.000 --> 00:00:01.000\nHello there.\n", "malformed transcript (vtt)"),
    ("srt", "1\n99999999999999:00:00,000 --> 99999999999999:00:01,000\nHello.\n",
     "malformed transcript (srt)"),
    ("ass", "[Script Info]\n", "unsupported transcript format"),
])
def test_malformed_transcripts_have_a_reason(kind, text, reason):
    with pytest.raises(TranscriptError) as err:
        parse(text, kind)
    assert str(err.value).startswith(reason)


def test_garbage_srt_has_no_cues_and_bytes_never_fail_to_decode():
    assert parse("this is not a subtitle file\n\n<<<>>>\n", "srt").cues == ()
    assert decode(b"\xff\xfeH\x00i\x00!")  # odd-length UTF-16: replaced, not raised
    assert decode(bytes(range(256)))


def test_a_transcript_larger_than_the_limit_is_not_read(tmp_path):
    path = tmp_path / "huge.srt"
    with path.open("wb") as f:
        f.truncate(MAX_TEXT_BYTES + 1)  # sparse: nothing written, the size is real
    with pytest.raises(TranscriptError, match="transcript too large"):
        read_transcript(path)


def test_the_crawlers_transcript_checks_read_as_the_align_stage_reads(tmp_path):
    """One decoder: a cp1252 file of even length was read as UTF-16 (its cue times lost, so a
    caption longer than its audio passed); a file over the size limit is not read at all."""
    from crawler.pipelines import asr_by_content, transcript_end

    data = "1\n00:00:01,000 --> 00:09:02,500\nCafé olé.\n".encode("cp1252")
    path = tmp_path / "a.srt"
    path.write_bytes(data + b"\n" * (len(data) % 2))
    assert transcript_end(path) == 542.5
    huge = tmp_path / "huge.srt"
    with huge.open("wb") as f:
        f.write(data)
        f.truncate(MAX_TEXT_BYTES + 1)
    assert transcript_end(huge) is None and asr_by_content(huge) is None
