"""Segmentation on oracle emissions: the ctc-segmentation and edge logic alone, no model."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torchaudio

from align.acoustic import Emissions, ModelInfo, Vocabulary
from align.audio import decode
from align.filters import FilterConfig, tier
from align.normalize import normalize
from align.recording import outside_cues
from align.segment import (
    MAX_TABLE_CELLS,
    Segment,
    TextLongerThanAudio,
    _window_sizes,
    edge_faults,
    segment,
)

VOCAB = Vocabulary(tuple(torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H.get_labels()))
INFO = ModelInfo("oracle", "0" * 64, VOCAB, "none")


def oracle(truth: dict, duration: float) -> Emissions:
    """Emissions a perfect model would give: each sentence's tokens spread over its speech,
    one frame each, in order, with blanks between."""
    frames = int(duration / 0.02) + 1
    lp = np.full((frames, len(VOCAB.labels)), -15.0, np.float32)
    lp[:, VOCAB.blank] = 0.0
    for s in truth["sentences"]:
        tokens = VOCAB.encode(normalize(s["text"]))
        a, b = int(s["start"] / 0.02) + 1, int(s["end"] / 0.02) - 1
        for tok, pos in zip(tokens, np.linspace(a, b, len(tokens)).astype(int), strict=True):
            lp[pos] = -15.0
            lp[pos, tok] = 0.0
    lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
    return Emissions(lp, INFO)


def recording(archive, defects, kind):
    d = next(d for d in defects["defects"] if d["kind"] == kind)
    name = d["file"] if d["file"].endswith(".mp3") else d["file"].rsplit(".", 1)[0] + ".mp3"
    truth = json.loads((archive / "truth" / d["item_id"] / f"{name}.json").read_text())
    return truth, decode(archive / "items" / d["item_id"] / name)


@pytest.mark.parametrize("kind", ["intro_outro", "mismatched_transcript"])
def test_boundaries_from_oracle_emissions(archive, defects, kind):
    truth, samples = recording(archive, defects, kind)
    emissions = oracle(truth, len(samples) / 16000)
    texts = [normalize(s["text"]) for s in truth["sentences"]]
    segs = segment(emissions, texts, samples)
    assert [s.index for s in segs] == list(range(len(texts)))
    errors = np.array([abs(s.speech_start_s - t["start"]) for s, t in
                       zip(segs, truth["sentences"], strict=True)] +
                      [abs(s.speech_end_s - t["end"]) for s, t in
                       zip(segs, truth["sentences"], strict=True)])
    assert np.median(errors) < 0.03 and np.mean(errors < 0.1) > 0.95
    for a, b in truth["unspoken"]:  # nothing placed over the jingle
        assert not [s for s in segs if s.speech_start_s < b and s.speech_end_s > a]
    assert all(s.words and s.words[0].start_s <= s.words[-1].end_s for s in segs)


def _contract_holds(segs) -> None:
    """Each segment's speech holds its words; neighbours' speech never overlaps."""
    for a, b in zip(segs, segs[1:], strict=False):
        assert a.speech_end_s <= b.speech_start_s, (a.index, a.speech_end_s, b.speech_start_s)
    for s in segs:
        if s.words:
            assert s.speech_start_s <= s.words[0].start_s, s.index
            assert s.words[-1].end_s <= s.speech_end_s, s.index


@pytest.mark.parametrize("kind", ["intro_outro", "mismatched_transcript"])
def test_utterances_without_a_pause_between_them_share_no_word(archive, defects, kind):
    """Every sentence cut in two at a word (as a clause split does): the halves' tokens run
    on without a gap, so forced alignment windows padded past each placement would overlap
    and the same word could be aligned in both halves. Speech edges stay apart and hold their
    words; and the sentences whole keep the contract too."""
    truth, samples = recording(archive, defects, kind)
    emissions = oracle(truth, len(samples) / 16000)
    halves = []
    for s in truth["sentences"]:
        words = normalize(s["text"]).split()
        cut = max(1, len(words) // 2)
        halves += [" ".join(words[:cut]), " ".join(words[cut:])] if len(words) > 1 \
            else [" ".join(words)]
    segs = segment(emissions, halves, samples)
    assert [s.index for s in segs] == list(range(len(halves)))
    assert sum(bool(s.words) for s in segs) >= 0.9 * len(segs)
    _contract_holds(segs)
    _contract_holds(segment(emissions, [normalize(s["text"]) for s in truth["sentences"]],
                            samples))


def _row(clip_id: str, start: float, end: float, words: list[tuple[float, float]],
         tier_: str = "clean") -> dict:
    return {"clip_id": clip_id, "source": "s", "item_id": "i", "audio_file": "a.mp3",
            "tier": tier_, "start_s": start, "end_s": end,
            "words": [{"word": "w", "start_s": a, "end_s": b} for a, b in words]}


def test_edge_faults_finds_cuts_through_words():
    good = [_row("a", 0.0, 2.1, [(0.2, 1.0), (1.1, 2.0)]),
            _row("b", 2.1, 4.0, [(2.3, 3.0), (3.1, 3.8)])]
    assert edge_faults(good) == {"inside_word": [], "shares_word": []}
    # No end padding and a cut before the last word's end; the next clip starts with its tail.
    cut = [_row("a", 0.0, 1.5, [(0.2, 1.0), (1.1, 2.0)]), _row("b", 1.5, 4.0, [(2.3, 3.0)])]
    assert edge_faults(cut) == {"inside_word": ["a"], "shares_word": ["a", "b"]}
    # The other way round: a clip starting after its first word's start.
    late = [_row("a", 0.5, 2.1, [(0.2, 1.0), (1.1, 2.0)])]
    assert edge_faults(late)["inside_word"] == ["a"]
    # A neighbour's audio over this clip's first word, with every clip's own words inside it.
    over = [_row("a", 0.0, 2.5, [(0.2, 2.0)]), _row("b", 2.2, 4.0, [(2.4, 3.0)])]
    assert edge_faults(over) == {"inside_word": [], "shares_word": ["a", "b"]}
    # Other recordings and rejected clips (no audio) are nobody's neighbour; only clean
    # clips are reported.
    apart = [_row("a", 0.0, 2.5, [(0.2, 2.0)]),
             {**_row("b", 2.2, 4.0, [(2.4, 3.0)]), "audio_file": "b.mp3"},
             _row("c", 2.2, 4.0, [], "rejected"), _row("d", 5.0, 6.0, [(4.0, 5.5)], "other")]
    assert edge_faults(apart) == {"inside_word": [], "shares_word": []}


def test_clean_clips_of_the_small_archive_are_never_cut_inside_a_word(aligned):
    """The demo model on the small archive: every clean clip starts before its first word and
    ends after its last, and no clip's audio reaches into a neighbour's word."""
    rows = [r for p in sorted((aligned / "manifests" / "clips").glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    clean = [r for r in rows if r["tier"] == "clean"]
    assert clean and all(r["words"] for r in clean)
    assert edge_faults(rows) == {"inside_word": [], "shares_word": []}
    for r in rows:  # the words are as aligned, inside the clip, not clamped onto its edges
        if r["words"]:
            assert r["start_s"] <= r["words"][0]["start_s"] <= r["words"][-1]["end_s"] <= \
                r["end_s"], r["clip_id"]


def test_text_longer_than_audio_is_refused(archive, defects):
    truth, samples = recording(archive, defects, "intro_outro")
    lp = np.full((150, len(VOCAB.labels)), np.log(1 / len(VOCAB.labels)), np.float32)
    emissions = Emissions(lp, INFO)  # three seconds of frames
    with pytest.raises(TextLongerThanAudio):
        segment(emissions, [normalize(s["text"]) for s in truth["sentences"]],
                samples[:48000])


def test_window_sizes_grow_within_the_memory_bound():
    short = _window_sizes(30_000, 9_000)  # ten minutes
    assert short[0] >= 1000 and short[-1] == 30_000
    assert all(b == min(30_000, 2 * a) for a, b in zip(short, short[1:], strict=False))
    long = _window_sizes(540_000, 160_000)  # three hours, a dense transcript
    assert long[-1] * 160_000 <= MAX_TABLE_CELLS and long[0] >= 1000


def _seg(i: int, start: float, end: float) -> Segment:
    return Segment(index=i, text="x", score=-0.5, speech_start_s=start, speech_end_s=end)


def test_subtitle_cues_flag_clips_only_when_they_prove_reliable():
    config = FilterConfig()
    segs = [_seg(0, 1.0, 2.0), _seg(1, 3.0, 4.0), _seg(2, 5.0, 6.0), _seg(3, 7.0, 8.0),
            _seg(4, 9.0, 12.0)]
    cues = [(0.9, 2.1), (2.9, 4.2), (4.8, 6.0), (7.0, 8.3), (9.0, 10.0)]
    # Four of five utterances lie in their cues: the cues are trusted, the fifth is suspect.
    assert outside_cues(segs, cues, config) == {4}
    # Every cue late by two seconds (a shifted subtitle file): nothing is trusted or flagged.
    shifted = [(a + 2, b + 2) for a, b in cues]
    assert outside_cues(segs, shifted, config) == set()
    # Untimed text and too few cues to judge flag nothing either.
    assert outside_cues(segs, [None] * 5, config) == set()
    assert outside_cues(segs[:2], [(5.0, 6.0), (0.0, 1.0)], config) == set()
    metrics = {"aligned": True, "score": -0.5, "cer": 0.0, "cer_start": 0.0, "cer_end": 0.0,
               "duration_s": 3.0, "chars_per_s": 14.0, "language": "en",
               "silence_share": 0.1, "asr_caption": False}
    assert tier({**metrics, "outside_cue": True}, config)[0] == "other"
    assert tier(metrics, config) == ("clean", [])


def test_speech_next_to_a_clip_that_its_text_lacks_makes_it_other():
    config = FilterConfig()
    metrics = {"aligned": True, "score": -0.5, "cer": 0.0, "cer_start": 0.0, "cer_end": 0.0,
               "duration_s": 3.0, "chars_per_s": 14.0, "language": "en",
               "silence_share": 0.1, "asr_caption": False}
    # A reader said "nineteen hundred and thirteen" where the text has "1913".
    verdict, reasons = tier({**metrics, "heard_before": "", "heard_after": "THIRTEEN"}, config)
    assert verdict == "other"
    assert reasons[0].startswith("speech next to the clip that its text lacks:")
    assert "THIRTEEN" in reasons[0]
    # A letter or two heard in noise is not speech.
    assert tier({**metrics, "heard_before": "O", "heard_after": "A E"}, config)[0] == "clean"
