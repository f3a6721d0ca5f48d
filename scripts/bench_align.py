"""Align-stage benchmarks. Prints ratios measured in one run; asserts nothing.

1. Overhead: align-stage wall time for one recording (decode, emissions, ctc-segmentation,
   metrics, clips, manifest) ÷ the model's forward time on the same audio, with the
   wav2vec2-base architecture (random weights: they cost the same) on the CPU (target ≤ 1.15).
2. Scale: a 3-hour recording against a 1-hour one (each in its own process): peak RSS (target
   ≤ 3 GB) and time ÷ (3 × the 1-hour time) (target ≤ 1.1). Uses ``--scale-model`` (default
   ``demo``, so the run takes minutes rather than hours on 2 cores).
3. Clip writing: numpy slicing + libsndfile FLAC against pydub's per-clip FLAC export of the
   same clips (target ≥ 10× faster).

    .venv/bin/python scripts/bench_align.py [--minutes 10] [--hours 1] [--clips 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import peak_rss_mb, run_measured

from align.audio import decode, to_float, write_flac
from align.models import load_model, random_checkpoint
from align.recording import RecordingJob, align_recording
from crawler.sample_archive.synth import Voice, compose, encode
from crawler.sample_archive.texts import english_sentence
from speechcrawl.align_stage import filter_config


def make_recording(out: Path, minutes: float, seed: int = 1) -> Path:
    """Synthesised speech of about ``minutes`` as MP3, with its transcript beside it."""
    rng = random.Random(seed)

    def stream():
        while True:
            yield english_sentence(rng)

    rec = compose(rng, stream(), Voice("en-us+m3", 165, 50), target_s=minutes * 60)
    audio = out / f"speech-{minutes:g}min.mp3"
    encode(rec, audio, "vbr_mp3", 22050, 1)
    audio.with_suffix(".txt").write_text(" ".join(s["text"] for s in rec.sentences) + "\n")
    return audio


def job(audio: Path) -> RecordingJob:
    return RecordingJob("bench", audio.stem, audio.name, audio, audio.with_suffix(".txt").name,
                        audio.with_suffix(".txt"), None, False, "CC0-1.0", "public-domain",
                        "bench")


def one(audio: Path, model_name: str, hub: str) -> dict:
    """Align one recording in this process; time the stage and the model's forward pass."""
    import torch

    torch.hub.set_dir(hub)
    torch.set_num_threads(os.cpu_count() or 1)
    model = load_model(model_name)
    work = audio.parent / f"work-{audio.stem}-{model_name}"
    t0 = time.perf_counter()
    rows = align_recording(job(audio), model, filter_config(model.info), work / "clips", work)
    stage = time.perf_counter() - t0
    stage_rss = peak_rss_mb()  # the forward pass below, on the whole file at once, is not the stage
    samples = decode(audio)
    t0 = time.perf_counter()
    model.emissions(to_float(samples))
    forward = time.perf_counter() - t0
    result = {"stage_s": stage, "forward_s": forward, "clips": len(rows),
              "audio_s": len(samples) / 16000, "stage_rss_mb": stage_rss}
    return {**result, "rss_mb": peak_rss_mb()}


def run_child(audio: Path, model: str, hub: str) -> dict:
    return run_measured([sys.executable, __file__, "--child", str(audio), "--model", model,
                         "--hub", hub])


def bench_clips(audio: Path, n: int) -> None:
    from pydub import AudioSegment

    samples = decode(audio)
    rng = np.random.default_rng(0)
    spans = []
    for _ in range(n):
        start = rng.uniform(0, len(samples) / 16000 - 12)
        spans.append((start, start + rng.uniform(2, 12)))
    out = audio.parent / "clips-bench"
    t0 = time.perf_counter()
    for k, (a, b) in enumerate(spans):
        write_flac(out / "ours" / f"{k}.flac", samples[int(a * 16000): int(b * 16000)])
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    seg = AudioSegment.from_file(audio).set_frame_rate(16000).set_channels(1)
    (out / "pydub").mkdir(parents=True)
    for k, (a, b) in enumerate(spans):
        seg[int(a * 1000): int(b * 1000)].export(out / "pydub" / f"{k}.flac", format="flac")
    theirs = time.perf_counter() - t0
    print(f"clip writing: {n} clips in {ours:.2f} s (numpy + libsndfile) vs {theirs:.2f} s "
          f"(pydub export): {theirs / ours:.0f}x faster (target >= 10)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="overhead test length")
    p.add_argument("--hours", type=float, default=1.0, help="scale test: this and 3x this")
    p.add_argument("--scale-model", default="demo")
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--parts", default="overhead,clips,scale",
                   help="which of overhead, clips, scale to run (default: all)")
    p.add_argument("--child")
    p.add_argument("--model")
    p.add_argument("--hub")
    args = p.parse_args()
    if args.child:
        print(json.dumps(one(Path(args.child), args.model, args.hub)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-align-") as tmp:
        tmp = Path(tmp)
        hub = str(tmp / "hub")
        parts = set(args.parts.split(","))
        random_checkpoint("wav2vec2-base-960h", hub_dir=tmp / "hub")
        short = make_recording(tmp, args.minutes) if parts & {"overhead", "clips"} else None
        if "overhead" in parts:
            r = run_child(short, "wav2vec2-base-960h", hub)
            print(f"overhead, wav2vec2-base (random weights), {r['audio_s'] / 60:.1f} min: "
                  f"stage {r['stage_s']:.1f} s, forward {r['forward_s']:.1f} s, ratio "
                  f"{r['stage_s'] / r['forward_s']:.3f} (target <= 1.15)", flush=True)
        if "clips" in parts:
            bench_clips(short, args.clips)
        if "scale" not in parts:
            return
        one_h = make_recording(tmp, args.hours * 60, seed=2)
        three_h = make_recording(tmp, args.hours * 180, seed=3)
        a = run_child(one_h, args.scale_model, hub)
        b = run_child(three_h, args.scale_model, hub)
        print(f"scale ({args.scale_model}): {a['audio_s'] / 3600:.2f} h in {a['stage_s']:.0f} s "
              f"(peak RSS {a['stage_rss_mb']:.0f} MB), {b['audio_s'] / 3600:.2f} h in "
              f"{b['stage_s']:.0f} s (peak RSS {b['stage_rss_mb']:.0f} MB, target <= 3072); time "
              f"ratio {b['stage_s'] / (3 * a['stage_s']):.2f} (target <= 1.1)")


if __name__ == "__main__":
    main()
