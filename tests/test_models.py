"""Acoustic models: the registry's real loading paths on random weights, vocabularies, chunked
emissions, the device fallback, and the shipped demo model's accuracy on unseen voices."""

from __future__ import annotations

import io
import json
import random
import subprocess
import wave

import numpy as np
import pytest
import torch
import torchaudio
from scipy.signal import resample_poly

from align.acoustic import Vocabulary
from align.metrics import char_errors
from align.models import hub_checkpoint_path, load_model, random_checkpoint, sha256_file
from align.normalize import normalize
from crawler.sample_archive.synth import ENGLISH_VOICES, VARIANTS
from crawler.sample_archive.texts import english_sentence

# A small wav2vec2 (same code, a fraction of the size) for the local-checkpoint paths.
TINY = {
    "extractor_mode": "layer_norm",
    "extractor_conv_layer_config": [(32, 10, 5), (32, 3, 2), (32, 3, 2), (32, 3, 2),
                                    (32, 3, 2), (32, 2, 2), (32, 2, 2)],
    "extractor_conv_bias": True, "encoder_embed_dim": 64, "encoder_projection_dropout": 0.0,
    "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 4, "encoder_num_layers": 2,
    "encoder_num_heads": 4, "encoder_attention_dropout": 0.0, "encoder_ff_interm_features": 128,
    "encoder_ff_interm_dropout": 0.0, "encoder_dropout": 0.0, "encoder_layer_norm_first": True,
    "encoder_layer_drop": 0.0, "aux_num_out": 29,
}
EN_LABELS = list(torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H.get_labels())


@pytest.fixture
def hub(tmp_path):
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(before)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * 16000)).astype(np.float32)


def test_wav2vec2_base_loads_through_the_torch_hub_cache(hub):
    path = random_checkpoint("wav2vec2-base-960h")
    assert path == hub_checkpoint_path("wav2vec2-base-960h") and path.is_relative_to(hub)
    model = load_model("wav2vec2-base-960h")
    info = model.info
    assert info.vocab.labels == tuple(EN_LABELS) and info.vocab.blank == 0
    assert info.vocab.word_separator == "|" and info.weights_license == "MIT"
    assert info.model_id == f"wav2vec2-base-960h@sha256:{sha256_file(path)[:16]}"
    lp = model.forward(torch.from_numpy(noise(2.0))[None])
    assert lp.shape == (1, 99, 29)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(1, 99), atol=1e-4)


@pytest.mark.slow
def test_mms_fa_loads_through_the_torch_hub_cache(hub):
    path = random_checkpoint("mms-fa")
    model = load_model("mms-fa")
    vocab = model.info.vocab
    assert vocab.labels == tuple(torchaudio.pipelines.MMS_FA.get_labels(star=None))
    assert "*" not in vocab.labels and vocab.word_separator is None and not vocab.upper
    assert model.info.weights_license == "CC-BY-NC-4.0" and "non-commercial" in model.info.note
    assert model.info.checksum == sha256_file(path)
    # Two windows batched together give what each gives alone (per-window normalisation).
    a, b = noise(2.0, seed=1), noise(2.0, seed=2) * 3
    both = model.forward(torch.from_numpy(np.stack([a, b])))
    alone = model.forward(torch.from_numpy(a)[None])
    assert both.shape[-1] == len(vocab.labels) == 28
    assert torch.allclose(both[0], alone[0], atol=1e-4)


def test_vocabulary_mapping():
    en = Vocabulary(tuple(EN_LABELS))
    ids = en.encode("hello world")
    assert [en.labels[i] for i in ids] == list("HELLO|WORLD")
    assert en.decode([en.index[c] for c in "-HH-ELL-LO||W"]) == "HELLO W"
    mms = Vocabulary(tuple(torchaudio.pipelines.MMS_FA.get_labels(star="*")), 0, None, "*",
                     upper=False)
    assert [mms.labels[i] for i in mms.encode("It's OK")] == list("it'sok")
    assert mms.decode([mms.index["*"], mms.index["a"], 0, mms.index["a"]]) == "aa"
    with pytest.raises(ValueError):
        Vocabulary(("-", "a", "a"))


def _tiny_state_dict_checkpoint(tmp_path):
    torch.manual_seed(0)
    module = torchaudio.models.wav2vec2_model(**TINY)
    torch.save(module.state_dict(), tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps(
        {"wav2vec2_model": TINY, "labels": EN_LABELS, "blank": 0, "license": "CC0-1.0"}))
    return module


def test_local_state_dict_with_a_json_config(tmp_path):
    module = _tiny_state_dict_checkpoint(tmp_path)
    model = load_model(str(tmp_path))
    x = torch.from_numpy(noise(1.5))[None]
    want = torch.log_softmax(module.eval()(x)[0], -1)
    assert torch.allclose(model.forward(x), want, atol=1e-5)
    assert model.info.weights_license == "CC0-1.0" and model.info.vocab.word_separator == "|"
    assert model.info.checksum == sha256_file(tmp_path / "model.pt")


def test_local_torchscript_with_a_sidecar(tmp_path):
    module = _tiny_state_dict_checkpoint(tmp_path).eval()
    scripted = torch.jit.script(module)
    scripted.save(str(tmp_path / "scripted.pt"))
    (tmp_path / "scripted.json").write_text(json.dumps({"labels": EN_LABELS, "blank": 0}))
    model = load_model(str(tmp_path / "scripted.pt"))
    x = torch.from_numpy(noise(1.0))[None]
    assert torch.allclose(model.forward(x), torch.log_softmax(module(x)[0], -1), atol=1e-5)


def test_a_missing_config_or_unknown_name_is_a_clear_error(tmp_path):
    (tmp_path / "lonely.pt").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="no JSON config"):
        load_model(str(tmp_path / "lonely.pt"))
    with pytest.raises(ValueError, match="unknown model"):
        load_model("no-such-model")


@pytest.mark.parametrize("model_name", ["tiny", "demo"])
def test_chunked_emissions_match_whole_file_emissions(model_name, tmp_path):
    if model_name == "tiny":
        _tiny_state_dict_checkpoint(tmp_path)
        model = load_model(str(tmp_path))
    else:
        model = load_model("demo")
    audio = _speech(seconds=45)
    whole = model.forward(torch.from_numpy(audio)[None])[0].numpy()
    chunked = model.emissions(audio, chunk_s=10, context_s=3, batch_size=3).log_probs
    assert abs(len(chunked) - len(whole)) <= 1
    n = min(len(chunked), len(whole))
    diff = np.abs(np.exp(chunked[:n]) - np.exp(whole[:n]))
    assert diff.mean() < 0.01 and np.percentile(diff.max(-1), 99) < 0.2
    agree = (chunked[:n].argmax(-1) == whole[:n].argmax(-1)).mean()
    assert agree > 0.97


def test_emissions_of_short_and_empty_audio():
    model = load_model("demo")
    assert model.emissions(np.zeros(0, np.float32)).log_probs.shape[1] == 29
    e = model.emissions(noise(0.5), chunk_s=30)
    assert 20 <= len(e.log_probs) <= 26 and e.time(10) == pytest.approx(0.2)


def test_cuda_falls_back_to_the_cpu_with_a_warning():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.warns(UserWarning, match="CUDA requested"):
        model = load_model("demo", device="cuda")
    assert model.device == "cpu"


def _speech(seconds: float, variants=("+m3", "+f2"), seed: int = 5) -> np.ndarray:
    """Held-out-voice speech at 16 kHz, sentences back to back with short pauses."""
    rng = random.Random(seed)
    parts, total = [], 0
    while total < seconds * 16000:
        x, _ = _utterance(rng, variants)
        parts += [x, np.zeros(int(rng.uniform(0.2, 0.8) * 16000), np.float32)]
        total += len(x) + len(parts[-1])
    return np.concatenate(parts)[: int(seconds * 16000)]


def _utterance(rng: random.Random, variants) -> tuple[np.ndarray, str]:
    label = normalize(english_sentence(rng))
    voice = rng.choice(ENGLISH_VOICES) + rng.choice(variants)
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rng.randint(135, 185)), "-p",
                          str(rng.randint(30, 70)), "--stdout", label.lower()],
                         capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    return resample_poly(x, 320, 441).astype(np.float32), label


def test_demo_model_reads_unseen_voices():
    """Fresh sentences in the held-out variants (the sample archive's): greedy CER ≤ 15 %."""
    model = load_model("demo")
    rng = random.Random(2026)
    errors = chars = 0
    for _ in range(30):
        x, label = _utterance(rng, [v or "" for v in VARIANTS])
        hyp = model.emissions(x).greedy()
        errors += char_errors(label, hyp)
        chars += len(label)
    assert errors / chars <= 0.15, errors / chars


def test_demo_model_is_small_and_described():
    from align.models import DEMO_DIR

    assert (DEMO_DIR / "model.pt").stat().st_size < 5 * 1024 * 1024
    card = (DEMO_DIR / "MODEL_CARD.md").read_text()
    for fact in ("espeak-ng", "CER", "held-out", "not a model for real"):
        assert fact in card
