"""Decoding recordings to 16 kHz mono, and writing clips.

ffmpeg decodes and resamples in one pass straight to 16-bit 16 kHz mono, so a multi-hour file
never exists in memory at its original rate (a 3-hour recording is 346 MB here). Clips are
slices of those samples written as FLAC with libsndfile.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000
# A decode that yields less than this share of the stated length is a damaged file.
MIN_DECODED_SHARE = 0.9


class DecodeError(Exception):
    """The file cannot be decoded completely; the message is the recorded reason."""


def decode(path: Path, expected_s: float | None = None) -> np.ndarray:
    """int16 mono samples at 16 kHz; raises DecodeError with a one-line reason."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
           "-ar", str(SAMPLE_RATE), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        stderr: list[bytes] = []
        drain = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
        drain.start()
        data, size = _read_all(proc.stdout, int((expected_s or 60) * SAMPLE_RATE * 2 * 1.05))
        proc.wait()
        drain.join()
    errors = b"".join(stderr).decode("utf-8", "replace").strip().splitlines()
    if proc.returncode != 0:
        raise DecodeError(f"decode failed: {errors[-1] if errors else 'ffmpeg error'}")
    samples = np.frombuffer(data, dtype="<i2", count=size // 2)
    if samples.size == 0:
        raise DecodeError("decode failed: no audio")
    got = samples.size / SAMPLE_RATE
    if expected_s and got < MIN_DECODED_SHARE * expected_s:
        detail = f"; ffmpeg: {errors[0]}" if errors else ""
        raise DecodeError(f"decode failed: truncated audio ({got:.1f} s of a stated "
                          f"{expected_s:.1f} s){detail}")
    return samples


def _read_all(stream, guess: int) -> tuple[bytearray, int]:
    """Read a pipe into one buffer sized from the stated length: ``communicate`` would hold
    the chunks and their joined copy at once, twice the samples of a 3-hour recording."""
    buf, n = bytearray(max(guess, 1 << 16)), 0
    while True:
        if n == len(buf):
            buf.extend(bytes(len(buf) // 2))
        with memoryview(buf) as view, view[n:] as rest:
            got = stream.readinto(rest)
        if not got:
            return buf, n
        n += got


def to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


def write_flac(path: Path, samples: np.ndarray) -> None:
    """Write a 16 kHz mono FLAC clip atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(tmp, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)
