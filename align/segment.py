"""Where each utterance of a transcript is spoken in a long recording.

Three passes, coarse to fine:

1. ``ctc-segmentation`` places every utterance on the log-softmax emissions of the whole
   recording (its window grows and is retried until the path is found, so a correct transcript
   of a long recording does not end in "maximum window size reached"). Untranscribed audio
   before, between and after utterances is absorbed by blank frames.
2. ``torchaudio.functional.forced_align`` aligns each utterance's tokens within its span, which
   gives token (and word) timings.
3. The speech boundaries are moved to the nearest quiet frames, measured on the audio itself:
   a CTC model's first and last emissions sit inside the sounds they stand for, not at their
   edges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
import torchaudio.functional as taf
from ctc_segmentation import (
    CtcSegmentationParameters,
    ctc_segmentation,
    determine_utterance_segments,
    prepare_token_list,
)

from align.acoustic import Emissions

log = logging.getLogger(__name__)
# ctc-segmentation logs "Maximum window size reached" as an error on every window we retry;
# the retries are ours to report.
logging.getLogger("ctc_segmentation").setLevel(logging.CRITICAL)
ENERGY_HOP = 160  # 10 ms at 16 kHz
EDGE_SEARCH_S = 0.25  # how far the speech edges may move from the token edges


@dataclass
class Word:
    word: str
    start_s: float
    end_s: float
    score: float


@dataclass
class Segment:
    index: int  # the utterance's position in the transcript
    text: str  # normalised, in the model's alphabet
    score: float  # ctc-segmentation confidence (log-probability, min over windows)
    speech_start_s: float
    speech_end_s: float
    words: list[Word] = field(default_factory=list)
    aligned: bool = True  # False when the tokens could not be placed at all


class TextLongerThanAudio(ValueError):
    pass


# ctc-segmentation's table holds window × tokens float32 cells: this bounds its memory.
MAX_TABLE_CELLS = 300_000_000  # 1.2 GB: a 3-hour recording aligns in under 3 GB
# A placement whose worst utterance scores below this is not trusted: larger windows are
# tried and the best is kept. A window too narrow for the recording's changes of speaking rate
# (or for an unspoken intro) pushes utterances early, and every one after them scores badly.
SETTLED_SCORE = -3.0
# Windows tried at most once one has given a placement (before that, a failing window is
# retried larger until the memory bound): each try costs more than the last, and a transcript
# that does not match its audio never settles.
MAX_TRIES = 3


def _window_sizes(frames: int, tokens: int) -> list[int]:
    """Windows to try, smallest first: the ratio of audio to text sets where to start, and
    the table's memory bound where to stop."""
    ratio = frames / max(tokens, 1)
    cap = max(1000, min(frames, MAX_TABLE_CELLS // max(tokens, 1)))
    start = int(min(cap, max(1500, 400 * ratio)))
    sizes = [start]
    while sizes[-1] < cap:
        sizes.append(min(cap, sizes[-1] * 2))
    return sizes


def place_utterances(emissions: Emissions, token_lists: list[list[int]]) -> list[tuple]:
    """ctc-segmentation over the whole recording: (start_s, end_s, score) per utterance.

    A window that fails, or whose worst utterance scores below ``SETTLED_SCORE``, is retried
    larger (``MAX_TRIES`` at most once one has placed them); the placement with the best worst
    score wins (a larger window is not always better: the band follows a straight line through the
    recording).
    """
    lpz = emissions.log_probs
    total_tokens = sum(len(t) for t in token_lists) + len(token_lists) + 1
    if total_tokens > len(lpz):
        raise TextLongerThanAudio(f"text longer than audio: {total_tokens} tokens for "
                                  f"{len(lpz)} frames ({len(lpz) * emissions.frame_s:.1f} s)")
    vocab = emissions.info.vocab
    best, tries = None, 0  # tries: windows tried since the first placement, that one included
    for size in _window_sizes(len(lpz), total_tokens):
        if tries == MAX_TRIES:
            break
        config = CtcSegmentationParameters(
            char_list=list(vocab.labels), blank=vocab.blank,
            index_duration=emissions.frame_s, min_window_size=size,
            max_window_size=size + 1)  # one size per try: we choose the sizes ourselves
        gt, begins = prepare_token_list(config, [np.array(t, dtype=np.int64)
                                                 for t in token_lists])
        try:
            timings, char_probs, _ = ctc_segmentation(config, lpz, gt)
        except (IndexError, AssertionError) as exc:
            log.info("window %d frames failed (%s); trying a larger one", size, exc)
            tries += best is not None
            continue
        tries += 1
        segments = [(s, e, float(score)) for s, e, score in determine_utterance_segments(
            config, begins, char_probs, timings, ["x"] * len(token_lists))]
        worst = min(score for _, _, score in segments)
        if best is None or worst > best[0]:
            best = (worst, segments)
        if worst > SETTLED_SCORE:
            break
        log.info("window %d frames left an utterance at score %.1f; trying a larger one",
                 size, worst)
    if best is None:
        raise ValueError("ctc-segmentation found no path within the window sizes tried")
    return best[1]


def _energy_db(samples: np.ndarray, block: int = 6000) -> np.ndarray:
    """10 ms frame energies, a minute at a time (no float copy of a long recording)."""
    n = len(samples) // ENERGY_HOP
    out = np.empty(n, np.float32)
    for i in range(0, n, block):
        j = min(n, i + block)
        frames = samples[i * ENERGY_HOP: j * ENERGY_HOP].astype(np.float32).reshape(
            j - i, ENERGY_HOP) / 32768.0
        out[i:j] = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    return out


def _refine_edges(energy: np.ndarray, start_s: float, end_s: float,
                  lo_s: float, hi_s: float) -> tuple[float, float]:
    """Move token edges to where the sound starts and stops, within [lo_s, hi_s]."""
    hop = ENERGY_HOP / 16000
    a, b = int(start_s / hop), int(np.ceil(end_s / hop))
    lo, hi = max(0, int(lo_s / hop)), min(len(energy), int(np.ceil(hi_s / hop)))
    if b <= a or hi - lo < 3:
        return start_s, end_s
    window = energy[lo:hi]
    floor = np.percentile(window, 10)
    peak = np.percentile(energy[a:b], 95) if b > a else window.max()
    if peak - floor < 12:  # no clear silence around the speech: keep the token edges
        return start_s, end_s
    threshold = floor + 0.25 * (peak - floor)
    reach = int(EDGE_SEARCH_S / hop)
    s = a
    while s - 1 >= max(lo, a - reach) and energy[s - 1] > threshold:
        s -= 1
    while s < b and energy[s] <= threshold and s < a + reach // 2:
        s += 1
    e = b
    while e < min(hi, b + reach) and energy[e] > threshold:
        e += 1
    while e > s + 1 and energy[e - 1] <= threshold and e > b - reach // 2:
        e -= 1
    return s * hop, e * hop


def align_tokens(emissions: Emissions, tokens: list[int], first: int, last: int,
                 words: list[str]) -> tuple[list[Word], float, float] | None:
    """forced_align within frames [first, last): word timings and the token edges (s)."""
    if not tokens or last - first < len(tokens):
        return None
    lp = torch.from_numpy(emissions.log_probs[first:last]).unsqueeze(0)
    targets = torch.tensor([tokens], dtype=torch.int32)
    try:
        path, scores = taf.forced_align(lp, targets, blank=emissions.info.vocab.blank)
    except RuntimeError:
        return None
    spans = taf.merge_tokens(path[0], scores[0].exp(), blank=emissions.info.vocab.blank)
    vocab = emissions.info.vocab
    sep = vocab.index.get(vocab.word_separator) if vocab.word_separator else None
    out, current = [], []
    if sep is None:  # no boundary token: words are as many spans as they have tokens
        k = 0
        for w in words:
            n = len(vocab.encode(w))
            out.append(spans[k: k + n])
            k += n
        out = [g for g in out if g]
    else:
        for span in spans:
            if span.token == sep:
                if current:
                    out.append(current)
                current = []
            else:
                current.append(span)
        if current:
            out.append(current)
    t = emissions.time
    word_list = [Word(w, t(first + g[0].start), t(first + g[-1].end),
                      float(np.mean([s.score for s in g])))
                 for w, g in zip(words, out, strict=False)]
    return word_list, t(first + spans[0].start), t(first + spans[-1].end)


def _windows(placed: list[tuple], fps: float, frames: int,
             slack: int = 5) -> tuple[list[tuple], list[int]]:
    """Each utterance's forced-alignment window in frames, ``slack`` frames past its placement
    where the gap to a neighbour allows, and never past the middle of that gap; and those
    middles (one per pair of neighbours). Neighbours' windows do not overlap, so neither can
    their words (a word shared by two clips was one aligned twice, once in each neighbour's
    overlapping window)."""
    lo = [max(0, int(start * fps) - slack) for start, _, _ in placed]
    hi = [min(frames, int(np.ceil(end * fps)) + slack) for _, end, _ in placed]
    mids = []
    for i in range(len(placed) - 1):
        pe, ns = int(np.ceil(placed[i][1] * fps)), int(placed[i + 1][0] * fps)
        mid = max(0, min(frames, (pe + ns) // 2))
        hi[i], lo[i + 1] = min(hi[i], mid), max(lo[i + 1], mid)
        mids.append(mid)
    return list(zip(lo, hi, strict=True)), mids


def segment(emissions: Emissions, texts: list[str], samples: np.ndarray) -> list[Segment]:
    """Place each normalised utterance in the recording; see the module's docstring.

    Contract the clip cutter relies on: a segment's speech edges hold all of its words, and
    one segment's speech ends no later than the next one's starts (both lie within disjoint
    windows), so a cut between them is never inside a word of either."""
    vocab = emissions.info.vocab
    token_lists = [vocab.encode(t) for t in texts]
    placed = place_utterances(emissions, token_lists)
    energy = _energy_db(samples)
    duration = len(samples) / 16000
    fps = 1 / emissions.frame_s
    windows, mids = _windows(placed, fps, len(emissions.log_probs))
    aligned = [align_tokens(emissions, tokens, *windows[i], vocab.text_case(text).split())
               for i, (text, tokens) in enumerate(zip(texts, token_lists, strict=True))]
    # How far each pair of neighbours' speech edges may move towards each other: to the middle
    # of the stretch between their tokens (ctc-segmentation's placements touch, so the middle
    # of *their* gap can sit on a word's quiet tail), or of their placements' gap where one
    # has no tokens. Each lies between the two windows, so no word is on the wrong side.
    cuts = [(aligned[i][2] + aligned[i + 1][1]) / 2 if aligned[i] and aligned[i + 1]
            else emissions.time(mids[i]) for i in range(len(placed) - 1)]
    out = []
    for i, (start, end, score) in enumerate(placed):
        lo_s = cuts[i - 1] if i else 0.0
        hi_s = min(duration, cuts[i]) if i + 1 < len(placed) else duration
        if aligned[i] is None:
            out.append(Segment(i, texts[i], score, max(start, lo_s),
                               max(min(end, hi_s), lo_s), [], aligned=False))
            continue
        words, t0, t1 = aligned[i]
        t0, t1 = max(t0, lo_s), min(t1, hi_s)
        s, e = _refine_edges(energy, t0, t1, max(lo_s, t0 - 1.0), min(hi_s, t1 + 1.0))
        # The energy search works on 10 ms frames and may end a frame past its bound, or stop
        # short of a word's last frame: the bounds limit it, the words widen it.
        s, e = max(s, lo_s), min(e, hi_s)
        if words:
            s, e = min(s, words[0].start_s), max(e, words[-1].end_s)
        out.append(Segment(i, texts[i], score, s, e, words))
    return out


def edge_faults(clips: list[dict]) -> dict[str, list[str]]:
    """Clean clips (manifest rows) whose cut goes through a word — the contract above, checked
    on what the align stage wrote: ``inside_word``, a clip that starts after its first word's
    start or ends before its last word's end; ``shares_word``, a clip whose audio reaches into
    a word of the clip before or after it in the same recording (rejected clips have no audio
    and no words, so they are no one's neighbour). Ids, sorted."""
    by_recording: dict[tuple, list[dict]] = {}
    for c in clips:
        if c["tier"] != "rejected":
            key = (c["source"], c["item_id"], c["audio_file"])
            by_recording.setdefault(key, []).append(c)
    inside, shares = set(), set()
    for rows in by_recording.values():
        rows.sort(key=lambda c: (c["start_s"], c["clip_id"]))
        for k, c in enumerate(rows):
            words = c["words"] or []
            if c["tier"] != "clean" or not words:
                continue
            if c["start_s"] > words[0]["start_s"] or c["end_s"] < words[-1]["end_s"]:
                inside.add(c["clip_id"])
            for n in rows[max(0, k - 1): k] + rows[k + 1: k + 2]:
                theirs = n["words"] or []
                if any(c["start_s"] < w["end_s"] and w["start_s"] < c["end_s"] for w in theirs) \
                        or any(n["start_s"] < w["end_s"] and w["start_s"] < n["end_s"]
                               for w in words):
                    shares.add(c["clip_id"])
    return {"inside_word": sorted(inside), "shares_word": sorted(shares)}
