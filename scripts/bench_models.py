"""Acoustic-model benchmarks on this machine. Prints figures, asserts nothing.

- Real-time factor (compute seconds per audio second) of every architecture in the registry,
  through the same chunked ``emissions`` call the align stage makes. The large models run
  with random weights saved where torch hub keeps the real ones: they cost the same.
- A chunk batch-size sweep for wav2vec2-base.
- Peak RSS of each run (each in its own process).

These figures are the denominator of the align-overhead ratio in ``bench_align.py``.

    .venv/bin/python scripts/bench_models.py [--seconds 60] [--skip-mms]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from benchlib import peak_rss_mb, run_measured


def child(name: str, seconds: float, batch: int, hub: str) -> None:
    from align.models import load_model

    torch.set_num_threads(os.cpu_count() or 1)
    torch.hub.set_dir(hub)
    t0 = time.perf_counter()
    model = load_model(name)
    load_s = time.perf_counter() - t0
    audio = np.random.default_rng(0).normal(0, 0.1, int(seconds * 16000)).astype(np.float32)
    model.emissions(audio[: 16000 * 5], batch_size=1)  # warm-up
    t0 = time.perf_counter()
    e = model.emissions(audio, batch_size=batch)
    compute = time.perf_counter() - t0
    params = sum(p.numel() for p in model.module.parameters())
    print(json.dumps({"load_s": load_s, "compute_s": compute, "frames": len(e.log_probs),
                      "params": params, "rss_mb": peak_rss_mb()}))


def run(name: str, seconds: float, batch: int, hub: str) -> dict:
    result = run_measured([sys.executable, __file__, "--child", name, "--seconds",
                           str(seconds), "--batch", str(batch), "--hub", hub])
    result["rtf"] = result["compute_s"] / seconds
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--skip-mms", action="store_true", help="skip the 300 M-parameter MMS model")
    p.add_argument("--child")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--hub")
    args = p.parse_args()
    if args.child:
        return child(args.child, args.seconds, args.batch, args.hub)

    from align.models import random_checkpoint

    names = ["demo", "wav2vec2-base-960h"] + ([] if args.skip_mms else ["mms-fa"])
    with tempfile.TemporaryDirectory(prefix="bench-models-") as hub:
        for name in names[1:]:
            random_checkpoint(name, hub_dir=Path(hub))
        print(f"{os.cpu_count()} CPU threads, torch {torch.__version__}, "
              f"{args.seconds:.0f} s of audio, 30 s chunks with 3 s context")
        print(f"{'model':<22}{'params':>10}{'RTF':>8}{'x realtime':>12}{'load s':>8}"
              f"{'peak RSS':>10}")
        for name in names:
            r = run(name, args.seconds, 4, hub)
            print(f"{name:<22}{r['params'] / 1e6:>9.1f}M{r['rtf']:>8.3f}{1 / r['rtf']:>11.1f}x"
                  f"{r['load_s']:>8.1f}{r['rss_mb']:>8.0f} MB")
        print("wav2vec2-base-960h, chunk batch size sweep:")
        for batch in (1, 2, 4, 8):
            r = run("wav2vec2-base-960h", args.seconds, batch, hub)
            print(f"  batch {batch}: RTF {r['rtf']:.3f}, peak RSS {r['rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
