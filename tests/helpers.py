"""Small test helpers that use the real tools (ffmpeg, ffprobe, urllib)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np


def decode_16k(path: Path) -> np.ndarray:
    """Decode with ffmpeg to 16 kHz mono float32."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000",
         "-f", "f32le", "pipe:1"], check=True, capture_output=True).stdout
    return np.frombuffer(out, dtype="<f4")


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True, capture_output=True).stdout
    return json.loads(out)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, *, method: str = "GET", headers: dict | None = None,
          follow: bool = True) -> tuple[int, dict, bytes]:
    """(status, headers, body) for one request; HTTP errors are returned, not raised."""
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def get_json(url: str):
    status, _, body = fetch(url)
    assert status == 200, (status, body[:200])
    return json.loads(body)


ALIGN = [sys.executable, "-m", "speechcrawl.cli", "align", "--model", "demo"]


def align(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    """``speechcrawl align`` with the shipped demo model, as a user runs it."""
    cmd = ALIGN + ["--workdir", str(workdir), *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return result
