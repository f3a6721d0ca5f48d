"""The acoustic-model interface: 16 kHz mono audio in, CTC log-probabilities out.

Every model (wav2vec2, MMS forced-alignment, a local checkpoint, the shipped demo model) is
wrapped in one ``AcousticModel``, so the rest of the align stage never needs to know which one
it has. Long recordings are processed in overlapping windows, several per forward pass, so
memory stays flat however long the recording is; each window's context frames are dropped.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Vocabulary:
    """A model's output tokens and how normalised text maps onto them."""

    labels: tuple[str, ...]
    blank: int = 0
    word_separator: str | None = "|"  # None: the model has no word boundary token
    star: str | None = None  # MMS's "anything else" token
    upper: bool = True

    def __post_init__(self):
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("duplicate labels")

    @property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.labels)}

    def text_case(self, text: str) -> str:
        return text.upper() if self.upper else text.lower()

    def encode(self, text: str) -> list[int]:
        """Normalised text (letters, apostrophes, spaces) → token ids; unknown letters dropped."""
        index = self.index
        out = []
        for word in self.text_case(text).split():
            if out and self.word_separator:
                out.append(index[self.word_separator])
            out += [index[c] for c in word if c in index]
        return out

    def decode(self, ids) -> str:
        """Greedy CTC: collapse repeats, drop blanks, separators back to spaces."""
        out, prev = [], None
        for i in ids:
            i = int(i)
            if i != prev and i != self.blank:
                c = self.labels[i]
                if c != self.star:
                    out.append(" " if c == self.word_separator else c)
            prev = i
        return " ".join("".join(out).split())


@dataclass(frozen=True)
class ModelInfo:
    name: str  # registry name or path
    checksum: str  # sha256 of the weights
    vocab: Vocabulary
    weights_license: str  # e.g. "MIT", "CC-BY-NC-4.0"
    frame_s: float = 0.02
    frame_offset_s: float = 0.0  # centre of frame 0's receptive field, in seconds
    sample_rate: int = SAMPLE_RATE
    note: str = ""
    # Filter thresholds calibrated for this model (a ``filters.toml`` shipped beside its
    # weights): a weaker model hears correct text less exactly, so its CER and confidence
    # limits differ. The user's ``--filters`` file overrides them.
    filter_defaults: tuple[tuple[str, object], ...] = ()

    @property
    def model_id(self) -> str:
        return f"{self.name}@sha256:{self.checksum[:16]}"


@dataclass
class Emissions:
    log_probs: np.ndarray  # [frames, vocab] float32, log-softmax
    info: ModelInfo

    @property
    def frame_s(self) -> float:
        return self.info.frame_s

    def time(self, frame: int | float) -> float:
        """Seconds into the audio of a frame index."""
        return frame * self.info.frame_s + self.info.frame_offset_s

    def greedy(self) -> str:
        return self.info.vocab.decode(self.log_probs.argmax(-1))


class AcousticModel:
    """A loaded model on a device, with chunked inference for recordings of any length."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], module: torch.nn.Module,
                 info: ModelInfo, device: str = "cpu", normalize_waveform: bool = False):
        self.module = module
        self._forward = forward
        self.info = info
        self.normalize_waveform = normalize_waveform
        self.device = resolve_device(device)
        self.module.to(self.device).eval()

    @torch.inference_mode()
    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        """[batch, samples] → log-probabilities [batch, frames, vocab] (on the CPU)."""
        waves = waves.to(self.device, torch.float32)
        if self.normalize_waveform:
            waves = torch.nn.functional.layer_norm(waves, waves.shape[-1:])
        return torch.log_softmax(self._forward(waves).float(), dim=-1).cpu()

    def emissions(self, audio: np.ndarray, *, chunk_s: float = 30.0,
                  context_s: float = 3.0, batch_size: int = 4) -> Emissions:
        """Log-probabilities of a whole recording, computed in overlapping windows.

        Windows start on the frame grid; each is run with ``context_s`` of audio on both sides
        and only its own frames are kept. Full-length windows are batched; the shorter last one
        runs alone, never zero-padded (padding would change what the model sees).
        """
        # int16 samples are scaled window by window: no float copy of a long recording.
        audio = np.asarray(audio).reshape(-1)
        scale = 1 / 32768 if audio.dtype == np.int16 else 1.0
        hop = round(self.info.frame_s * self.info.sample_rate)
        total = audio.size
        if total == 0:
            return Emissions(np.zeros((0, len(self.info.vocab.labels)), np.float32), self.info)
        chunk = max(hop, round(chunk_s * self.info.sample_rate / hop) * hop)
        ctx = round(context_s * self.info.sample_rate / hop) * hop
        windows = []  # (window start, window end, first kept frame, end of kept frames or None)
        for start in range(0, total, chunk):
            last = start + chunk >= total
            windows.append((max(0, start - ctx), min(total, start + chunk + ctx), start // hop,
                            None if last else (start + chunk) // hop))
        pieces: dict[int, np.ndarray] = {}
        groups: dict[int, list[int]] = {}
        for i, (w0, w1, _, _) in enumerate(windows):
            groups.setdefault(w1 - w0, []).append(i)
        for members in groups.values():
            for b in range(0, len(members), batch_size):
                batch = members[b: b + batch_size]
                waves = torch.stack([torch.from_numpy(
                    audio[windows[i][0]: windows[i][1]].astype(np.float32) * scale)
                    for i in batch])
                out = self.forward(waves).numpy()
                for row, i in zip(out, batch, strict=True):
                    w0, _, keep0, keep1 = windows[i]
                    first = w0 // hop
                    lo = keep0 - first
                    hi = row.shape[0] if keep1 is None else min(row.shape[0], keep1 - first)
                    pieces[i] = row[lo:hi]
        log_probs = np.concatenate([pieces[i] for i in range(len(windows))])
        out = Emissions(np.ascontiguousarray(log_probs, dtype=np.float32), self.info)
        _return_freed_memory()
        return out


def resolve_device(device: str) -> str:
    if device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn("CUDA requested but not available: running on the CPU", stacklevel=3)
        return "cpu"
    return device


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, looked up once (find_library runs ldconfig); None elsewhere."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to hand back
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    return None


def _return_freed_memory() -> None:
    """Hand the model's freed activations back to the system. glibc keeps freed heap memory
    for reuse, and the next big allocation — ctc-segmentation's table, up to 1.2 GB — is
    made with mmap, so without this the two add up: a 1-hour recording peaked 170 MB higher."""
    if trim := _malloc_trim():
        trim(0)
