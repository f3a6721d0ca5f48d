"""Decoding recordings to 16 kHz mono, and writing clips.

ffmpeg decodes and resamples in one pass straight to 16-bit 16 kHz mono, so a multi-hour file
never exists in memory at its original rate (a 3-hour recording is 346 MB here). Clips are
slices of those samples written as FLAC with libsndfile.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000
BYTES_PER_S = SAMPLE_RATE * 2
# A decode that yields less than this share of the stated length is a damaged file.
MIN_DECODED_SHARE = 0.9
# The longest recording decoded (at 16 kHz int16, 1.4 GB): longer is refused with a reason,
# not read until memory runs out. The aligner's table bound makes longer ones useless anyway.
MAX_DECODE_S = 12 * 3600.0
# The most decoded bytes one file byte is believed to make before the first read: 16 kHz int16
# is 256 kbit/s, so a 16 kbit/s file expands 16 times. Leaner files grow the buffer instead.
MAX_EXPANSION = 16
FIRST_BUFFER = 1 << 20  # bytes read before any hint is believed: a minimum, not a guess


class DecodeError(Exception):
    """The file cannot be decoded completely; the message is the recorded reason."""


def stated_length(expected_s: float | None) -> float | None:
    """A stated length worth believing: finite, positive, within ``MAX_DECODE_S``."""
    try:
        value = float(expected_s)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and 0 < value <= MAX_DECODE_S else None


def decode(path: Path, expected_s: float | None = None,
           max_s: float = MAX_DECODE_S) -> np.ndarray:
    """int16 mono samples at 16 kHz; raises DecodeError with a one-line reason.

    The stated length is a hint: it sizes the first buffer only when the file is big enough
    to hold that much audio, and it is compared with what was decoded (a shortfall is a
    damaged file). Memory follows what ffmpeg actually yields, up to ``max_s``."""
    stated = stated_length(expected_s)
    limit = int(max_s * BYTES_PER_S)
    size = Path(path).stat().st_size
    guess = min(int((stated or 0) * BYTES_PER_S * 1.05) or limit, size * MAX_EXPANSION, limit)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
           "-ar", str(SAMPLE_RATE), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        stderr: list[bytes] = []
        drain = threading.Thread(target=_drain, args=(proc.stderr, stderr), daemon=True)
        drain.start()
        data, n = _read_all(proc.stdout, max(guess, FIRST_BUFFER), limit)
        if n > limit:
            proc.kill()
        proc.wait()
        drain.join()
    if n > limit:
        raise DecodeError(f"decode failed: longer than the {max_s / 3600:g} h limit")
    errors = b"".join(stderr).decode("utf-8", "replace").strip().splitlines()
    if proc.returncode != 0:
        raise DecodeError(f"decode failed: {errors[-1] if errors else 'ffmpeg error'}")
    samples = data.view("<i2")
    if samples.size == 0:
        raise DecodeError("decode failed: no audio")
    got = samples.size / SAMPLE_RATE
    if stated and got < MIN_DECODED_SHARE * stated:
        detail = f"; ffmpeg: {errors[0]}" if errors else ""
        raise DecodeError(f"decode failed: truncated audio ({got:.1f} s of a stated "
                          f"{stated:.1f} s){detail}")
    return samples


def _drain(stream, keep: list[bytes], head: int = 1 << 16) -> None:
    """Read ffmpeg's messages to the end (a full pipe would stall it) keeping only their first
    and last ``head`` bytes: a damaged file can make a message per frame."""
    first, last = b"", b""
    while chunk := stream.read(1 << 16):
        if len(first) < head:
            first += chunk[: head - len(first)]
        last = (last + chunk)[-head:]
    keep.append(first if len(first) < head else first + b"\n" + last)


def _read_all(stream, guess: int, limit: int) -> tuple[np.ndarray, int]:
    """Read a pipe into one buffer: ``communicate`` would hold the chunks and their joined
    copy at once, twice the samples of a 3-hour recording. The buffer starts at ``guess``
    (``np.empty``: pages not written are never touched), doubles in place when full, and is
    trimmed to what was read. Stops once more than ``limit`` bytes arrived."""
    buf, n = np.empty(guess, np.uint8), 0
    while n <= limit:
        if n == buf.size:
            buf.resize(min(2 * buf.size, limit + 1), refcheck=False)
        with memoryview(buf) as view, view[n:] as rest:
            got = stream.readinto(rest)
        if not got:
            break
        n += got
    buf.resize(n - n % 2, refcheck=False)  # an odd last byte is half a sample
    return buf, n


def to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


def write_flac(path: Path, samples: np.ndarray) -> None:
    """Write a 16 kHz mono FLAC clip atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(tmp, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)
