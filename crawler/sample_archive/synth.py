"""Speech synthesis with espeak-ng and encoding with ffmpeg, for the sample archive.

Each sentence is synthesised on its own so that its exact onset and offset in the finished
recording are known (the ground truth the alignment evaluation is scored against). Everything is
deterministic: espeak-ng and ffmpeg (in bitexact mode) give the same bytes for the same input.
"""

from __future__ import annotations

import io
import random
import subprocess
import wave
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SYNTH_RATE = 22050  # espeak-ng's native output rate
# Below this absolute level (int16) a sample counts as silence when trimming espeak's padding.
SILENCE_LEVEL = 200

# English voices and variants the archive speaks with. Kept apart from any voices a model is
# trained on elsewhere, so scores on the archive are scores on unseen speakers.
ENGLISH_VOICES = ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc"]
VARIANTS = ["", "+m3", "+f2", "+m7", "+f4", "+klatt", "+m1", "+f1"]


@dataclass(frozen=True)
class Voice:
    name: str  # espeak-ng voice, with variant, e.g. "en-us+f2"
    speed: int  # words per minute
    pitch: int  # 0-99

    @classmethod
    def random_english(cls, rng: random.Random) -> Voice:
        return cls(rng.choice(ENGLISH_VOICES) + rng.choice(VARIANTS),
                   rng.randint(135, 185), rng.randint(30, 70))


def espeak(text: str, voice: Voice) -> np.ndarray:
    """Synthesise ``text``; return int16 mono samples at ``SYNTH_RATE`` with padding trimmed."""
    proc = subprocess.run(
        ["espeak-ng", "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch),
         "--stdout", text],
        check=True, capture_output=True,
    )
    with wave.open(io.BytesIO(proc.stdout)) as w:
        if w.getframerate() != SYNTH_RATE:
            raise RuntimeError(f"espeak-ng produced {w.getframerate()} Hz, expected {SYNTH_RATE}")
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_LEVEL)
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    return samples[loud[0]: loud[-1] + 1].copy()


def tones(rng: random.Random, seconds: float) -> np.ndarray:
    """An unspoken jingle: a sequence of soft sine tones over a noise bed (float, -1..1)."""
    n = int(seconds * SYNTH_RATE)
    out = np.zeros(n)
    t = np.arange(SYNTH_RATE // 2) / SYNTH_RATE
    pos = 0
    while pos < n:
        f = rng.choice([262.0, 330.0, 392.0, 523.0, 440.0])
        seg = 0.25 * np.sin(2 * np.pi * f * t) * np.hanning(t.size)
        seg = seg[: n - pos]
        out[pos: pos + seg.size] += seg
        pos += seg.size
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 0.02, n)
    return out + noise


@dataclass
class Recording:
    """A finished recording at ``SYNTH_RATE`` with each sentence's place in it."""

    samples: np.ndarray  # float64, mono, -1..1
    sentences: list[dict] = field(default_factory=list)  # {"text", "start", "end"} in seconds

    @property
    def duration(self) -> float:
        return self.samples.size / SYNTH_RATE


def compose(
    rng: random.Random,
    texts: Iterable[str],
    voice: Voice,
    *,
    target_s: float | None = None,
    noise_dbfs: float | None = None,
    intro_s: float = 0.0,
    outro_s: float = 0.0,
) -> Recording:
    """Lay sentences end to end with varied pauses; optional noise bed and unspoken intro/outro.

    With ``target_s``, sentences are taken from ``texts`` only until that much speech is laid.
    """
    parts: list[np.ndarray] = []
    sentences: list[dict] = []
    pos = 0

    def add(chunk: np.ndarray) -> None:
        nonlocal pos
        parts.append(chunk)
        pos += chunk.size

    if intro_s:
        add(tones(rng, intro_s))
    add(np.zeros(int(rng.uniform(0.4, 1.2) * SYNTH_RATE)))
    speech_start = pos
    for text in texts:
        if sentences:
            pause = rng.uniform(0.3, 1.4) if rng.random() < 0.85 else rng.uniform(1.8, 3.0)
            add(np.zeros(int(pause * SYNTH_RATE)))
        speech = espeak(text, voice).astype(np.float64) / 32768.0
        sentences.append({"text": text, "start": round(pos / SYNTH_RATE, 4),
                          "end": round((pos + speech.size) / SYNTH_RATE, 4)})
        add(speech)
        if target_s is not None and (pos - speech_start) / SYNTH_RATE >= target_s:
            break
    add(np.zeros(int(rng.uniform(0.5, 1.0) * SYNTH_RATE)))
    if outro_s:
        add(tones(rng, outro_s))
    samples = np.concatenate(parts)
    if noise_dbfs is not None:
        level = 10 ** (noise_dbfs / 20)
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, level, samples.size)
        samples = samples + noise
    return Recording(np.clip(samples, -1.0, 1.0), sentences)


# name → (ffmpeg arguments, file extension, archive.org format label)
ENCODINGS = {
    "vbr_mp3": (["-c:a", "libmp3lame", "-q:a", "5"], "mp3", "VBR MP3"),
    "cbr_mp3": (["-c:a", "libmp3lame", "-b:a", "64k"], "mp3", "64Kbps MP3"),
    "ogg": (["-c:a", "libvorbis", "-q:a", "3"], "ogg", "Ogg Vorbis"),
    "wav": (["-c:a", "pcm_s16le"], "wav", "WAVE"),
    "flac": (["-c:a", "flac"], "flac", "Flac"),
}


def encode(rec: Recording, out: Path, encoding: str, rate: int, channels: int) -> None:
    """Write ``rec`` with ffmpeg at ``rate`` Hz and ``channels`` channels, bit-exactly."""
    codec_args, _, _ = ENCODINGS[encoding]
    pcm = (rec.samples * 32767).astype("<i2")
    if channels == 2:
        # A real stereo file: the right channel is slightly quieter than the left.
        pcm = np.stack([pcm, (pcm * 0.9).astype("<i2")], axis=1)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "s16le", "-ar", str(SYNTH_RATE), "-ac", str(channels), "-i", "pipe:0",
         "-ar", str(rate), "-map_metadata", "-1", "-fflags", "+bitexact",
         "-flags:a", "+bitexact", *codec_args, str(out)],
        input=pcm.tobytes(), check=True,
    )
