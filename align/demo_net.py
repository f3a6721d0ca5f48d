"""The architecture of the shipped ``demo`` model: a small character CTC model.

Log-mel features, a strided convolution (20 ms frames, like wav2vec2), separable convolution
blocks, one bidirectional GRU, and a projection onto wav2vec2-base-960h's vocabulary. Every layer
works frame by frame or over a bounded context (BatchNorm in eval mode, fixed feature
normalisation), so emissions computed in overlapping chunks match whole-file emissions.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

SAMPLE_RATE = 16_000
HOP = 160  # 10 ms feature hop; the strided front end makes 20 ms frames


class SeparableBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dropout: float):
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, kernel, padding=kernel // 2,
                                   groups=channels)
        self.pointwise = nn.Conv1d(channels, channels, 1)
        self.norm = nn.BatchNorm1d(channels)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.act(self.norm(self.pointwise(self.depthwise(x)))))


class DemoCTC(nn.Module):
    def __init__(self, n_mels: int = 80, channels: int = 256, blocks: int = 5, kernel: int = 11,
                 rnn: int = 160, vocab: int = 29, dropout: float = 0.1,
                 feature_mean: float = 0.0, feature_std: float = 1.0):
        super().__init__()
        self.config = dict(n_mels=n_mels, channels=channels, blocks=blocks, kernel=kernel,
                           rnn=rnn, vocab=vocab, dropout=dropout, feature_mean=feature_mean,
                           feature_std=feature_std)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=400, win_length=400, hop_length=HOP, n_mels=n_mels)
        self.register_buffer("feature_mean", torch.tensor(float(feature_mean)))
        self.register_buffer("feature_std", torch.tensor(float(feature_std)))
        self.front = nn.Sequential(nn.Conv1d(n_mels, channels, 5, stride=2, padding=2),
                                   nn.BatchNorm1d(channels), nn.GELU())
        self.blocks = nn.Sequential(*[SeparableBlock(channels, kernel, dropout)
                                      for _ in range(blocks)])
        self.rnn = nn.GRU(channels, rnn, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * rnn, vocab)

    def features(self, waves: torch.Tensor) -> torch.Tensor:
        """[batch, samples] → normalised log-mel [batch, n_mels, frames]."""
        mel = self.mel(waves)
        return (torch.log(mel + 1e-6) - self.feature_mean) / self.feature_std

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        """[batch, samples] at 16 kHz → CTC log-probabilities [batch, frames, vocab]."""
        x = self.blocks(self.front(self.features(waves)))
        x, _ = self.rnn(x.transpose(1, 2))
        return torch.log_softmax(self.out(x), dim=-1)

    @staticmethod
    def frames_for(samples: int) -> int:
        return (samples // HOP + 1 + 1) // 2
