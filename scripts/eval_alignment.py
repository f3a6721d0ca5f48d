"""Alignment accuracy on the sample archive against its ground truth. Prints figures.

Builds (or reuses) a sample archive, serves it on 127.0.0.1, crawls it, aligns it with the
given model, and compares every clip with the sentence onsets/offsets in ``truth/``:

- speech boundaries (``speech_start_s``, ``speech_end_s``) against the true onsets/offsets:
  median absolute error (target ≤ 40 ms) and share within 100 ms (target ≥ 95 %);
- cut points (``start_s``, ``end_s``): the clip holds all of its sentence's speech, never more
  than 20 ms short (target: ≥ 98 % of clean clips), and never more than 100 ms of a
  neighbouring sentence (target: all);
- the filter: share of clips with the right text (a matching transcript, and speech within
  200 ms of the truth) kept ``clean`` (target ≥ 90 %), and ``clean`` clips from transcripts
  that do not match their audio or placed over other words (> 500 ms off) (target: none);
- no clip overlaps the unspoken intro or outro;
- no clean clip cut inside one of its aligned words, and none whose audio reaches into a
  neighbouring clip's word (``align.segment.edge_faults``) (target: none).

    .venv/bin/python scripts/eval_alignment.py [--items 40] [--model demo] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from align.normalize import normalize
from align.segment import edge_faults
from crawler.run import crawl
from crawler.sample_archive.build import build
from crawler.sample_archive.server import serving
from speechcrawl.align_stage import run_align

# A clip "has the right text" when its transcript matches the recording and its aligned speech
# lies within RIGHT_S of its sentence's; beyond MISPLACED_S its audio holds other words.
RIGHT_S = 0.2
MISPLACED_S = 0.5


def load_clips(workdir: Path) -> list[dict]:
    rows = []
    for path in sorted((workdir / "manifests" / "clips").glob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def evaluate(archive: Path, clips: list[dict]) -> dict:
    by_recording: dict[tuple, list[dict]] = {}
    for c in clips:
        by_recording.setdefault((c["item_id"], c["audio_file"]), []).append(c)
    start_err, end_err = [], []
    contains, neighbour_ok, clean_right, wrong_clean, overlaps = [], [], [], 0, 0
    misplaced, misplaced_clean = 0, 0
    for (item_id, audio), rows in sorted(by_recording.items()):
        truth_path = archive / "truth" / item_id / f"{audio}.json"
        if not truth_path.exists():
            continue
        truth = json.loads(truth_path.read_text())
        right_text = truth["transcript_matches"] and truth["language"] == "en" and not any(
            t["kind"] == "asr" for t in truth["transcripts"])
        for c in rows:
            for a, b in truth["unspoken"]:
                if c["tier"] != "rejected" and c["start_s"] < b and c["end_s"] > a:
                    overlaps += 1
        if not right_text:
            wrong_clean += sum(1 for c in rows if c["tier"] == "clean")
            continue
        sents = truth["sentences"]
        index: dict[str, list[int]] = {}
        for k, s in enumerate(sents):  # the same sentence may be spoken more than once
            index.setdefault(normalize(s["text"]), []).append(k)
        for c in rows:
            if c["text"] not in index:  # a sentence split into clauses: no single truth
                continue
            k = min(index[c["text"]], key=lambda k: abs(sents[k]["start"] - c["speech_start_s"]))
            s = sents[k]
            err = max(abs(c["speech_start_s"] - s["start"]), abs(c["speech_end_s"] - s["end"]))
            start_err.append(abs(c["speech_start_s"] - s["start"]))
            end_err.append(abs(c["speech_end_s"] - s["end"]))
            if err <= RIGHT_S:
                clean_right.append(c["tier"] == "clean")
            elif err > MISPLACED_S:  # the clip's audio holds other words than its text
                misplaced_clean += c["tier"] == "clean"
                misplaced += 1
            if c["tier"] == "clean":
                contains.append(c["start_s"] <= s["start"] + 0.02 and c["end_s"] >= s["end"] - 0.02)
                prev_end = sents[k - 1]["end"] if k else -1e9
                next_start = sents[k + 1]["start"] if k + 1 < len(sents) else 1e9
                neighbour_ok.append(c["start_s"] >= prev_end - 0.1 and
                                    c["end_s"] <= next_start + 0.1)
    errors = np.array(start_err + end_err)
    faults = edge_faults(clips)
    return {
        "clips": len(clips), "compared": len(start_err),
        "boundary_median_ms": float(np.median(errors) * 1000) if errors.size else None,
        "boundary_within_100ms": float(np.mean(errors <= 0.1)) if errors.size else None,
        "boundary_p95_ms": float(np.percentile(errors, 95) * 1000) if errors.size else None,
        "clean_contains_speech": float(np.mean(contains)) if contains else None,
        "clean_cut_in_speech": contains.count(False),
        "clean_within_100ms_of_neighbours": float(np.mean(neighbour_ok)) if neighbour_ok
        else None,
        "right_text_kept_clean": float(np.mean(clean_right)) if clean_right else None,
        "wrong_text_clean_clips": wrong_clean,
        "misplaced_clips": misplaced, "misplaced_clean_clips": misplaced_clean,
        "clips_over_unspoken_audio": overlaps,
        "clean_clips": sum(c["tier"] == "clean" for c in clips),
        "clean_cut_inside_a_word": len(faults["inside_word"]),
        "clean_sharing_a_word": len(faults["shares_word"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--model", default="demo")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep everything here (default: a temporary directory)")
    args = p.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="eval-align-"))
    archive = build(workdir / "sample-archive", items=args.items)
    with serving(archive) as url:
        crawl("archive_org", workdir, url, query="identifier:*")
    run_align(workdir, args.model, "cpu", args.workers, out=sys.stderr)
    r = evaluate(archive, load_clips(workdir))
    print(f"{r['clips']} clips, {r['compared']} compared with the ground truth ({workdir})")
    print(f"speech boundaries: median |error| {r['boundary_median_ms']:.1f} ms (target <= 40), "
          f"{100 * r['boundary_within_100ms']:.1f} % within 100 ms (target >= 95), "
          f"p95 {r['boundary_p95_ms']:.0f} ms")
    print(f"cut points of clean clips: {100 * r['clean_contains_speech']:.1f} % hold all their "
          f"speech (target >= 98; {r['clean_cut_in_speech']} cut inside it by the ground "
          f"truth), {100 * r['clean_within_100ms_of_neighbours']:.1f} % take at "
          f"most 100 ms of a neighbour (target 100)")
    print(f"filter: {100 * r['right_text_kept_clean']:.1f} % of clips with the right text kept "
          f"clean (target >= 90); {r['wrong_text_clean_clips']} clean clips from wrong texts "
          f"(target 0); {r['misplaced_clean_clips']} clean of {r['misplaced_clips']} misplaced "
          f"clips (target 0); {r['clips_over_unspoken_audio']} kept clips over unspoken "
          "intro/outro (target 0)")
    print(f"word edges: {r['clean_cut_inside_a_word']} of {r['clean_clips']} clean clips cut "
          f"inside one of their words, {r['clean_sharing_a_word']} sharing a word with a "
          "neighbour (target 0 and 0)")


if __name__ == "__main__":
    main()
