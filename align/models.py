"""The model registry: a name or a path → an ``AcousticModel``.

- ``wav2vec2-base-960h``: torchaudio's ``WAV2VEC2_ASR_BASE_960H`` (MIT-licensed weights), fetched
  once into the torch hub cache (``missing_weights`` says how; aligning never downloads).
- ``mms-fa``: torchaudio's ``MMS_FA`` (weights CC-BY-NC-4.0: say so in any data card).
- ``demo``: the small model shipped in ``align/demo_model/``, trained on synthetic speech.
- a path: TorchScript, or a state dict with a JSON config of ``wav2vec2_model`` arguments and
  labels (``model.pt`` + ``config.json`` in a directory, or ``X.pt`` beside ``X.json``).

Weights are identified by the sha256 of their file, which ends up in every manifest row.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torchaudio

from align.acoustic import AcousticModel, ModelInfo, Vocabulary
from align.demo_net import DemoCTC
from align.filters import read_overrides
from align.registry import BUNDLES, list_models

DEMO_DIR = Path(__file__).resolve().parent / "demo_model"
# Centre of frame 0's receptive field for wav2vec2's feature extractor (400 samples wide).
WAV2VEC2_FRAME_OFFSET_S = 200 / 16_000


def sha256_file(path: Path) -> str:
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _bundle(name: str):
    return getattr(torchaudio.pipelines, BUNDLES[name][0])


def hub_checkpoint_path(name: str) -> Path:
    """Where torch hub keeps (or would keep) a registry model's weights."""
    filename = Path(_bundle(name)._path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def weights_url(name: str) -> str:
    """Where torchaudio publishes a registry model's weights."""
    path = _bundle(name)._path
    return path if path.startswith("https") else \
        f"https://download.pytorch.org/torchaudio/models/{path}"


def missing_weights(name: str) -> str | None:
    """Why registry model ``name`` cannot load here (its weights are not in the torch hub
    cache), or None. Nothing is downloaded while aligning: a batch job on a machine without a
    network would otherwise stall on it and fail with a bare ``urlopen error``."""
    if name not in BUNDLES:
        return None
    dest = hub_checkpoint_path(name)
    if dest.is_file():
        return None
    return (f"the weights of {name} are not in the torch hub cache (looked for {dest}; "
            f"TORCH_HOME chooses the cache). Fetch them once: curl -fL --create-dirs -o "
            f"'{dest}' '{weights_url(name)}' (or copy a copy you have there); or name a local "
            f"model instead: --model PATH, or model = PATH in a job (model.pt + config.json, see "
            f"align/models.py)")


def load_model(name: str, device: str = "cpu") -> AcousticModel:
    if name in BUNDLES:
        return _load_bundle(name, device)
    if name == "demo":
        return load_demo(device)
    path = Path(name)
    if path.exists():
        return load_checkpoint(path, device)
    raise ValueError(f"unknown model {name!r}: use one of {', '.join(list_models())} or a path")


def _load_bundle(name: str, device: str) -> AcousticModel:
    if why := missing_weights(name):
        raise FileNotFoundError(why)
    bundle = _bundle(name)
    _, license_, note = BUNDLES[name]
    normalize = False
    if name == "mms-fa":
        # The bare model: torchaudio's wrapper layer-normalises across the whole batch (so a
        # window's output would depend on its batch-mates) and appends a "*" column of log 1
        # that wins every frame after a second log-softmax. We normalise each window ourselves
        # and align text that never needs "*".
        module = bundle.get_model(with_star=False).model
        vocab = Vocabulary(tuple(bundle.get_labels(star=None)), 0, None, None, upper=False)
        normalize = True
    else:
        module = bundle.get_model()
        vocab = Vocabulary(tuple(bundle.get_labels()), 0, "|", None, upper=True)
    info = ModelInfo(name, sha256_file(hub_checkpoint_path(name)), vocab, license_,
                     frame_offset_s=WAV2VEC2_FRAME_OFFSET_S, note=note)
    return _wrap(module, info, device, normalize=normalize, first=True)


class _Bound:
    """A picklable forward function (so models can travel to worker processes)."""

    def __init__(self, module, first: bool):
        self.module, self.first = module, first

    def __call__(self, waves):
        out = self.module(waves)
        return out[0] if self.first else out


def _wrap(module, info, device, normalize=False, first=True) -> AcousticModel:
    return AcousticModel(_Bound(module, first), module, info, device, normalize)


def load_demo(device: str = "cpu", directory: Path = DEMO_DIR) -> AcousticModel:
    config = json.loads((directory / "config.json").read_text())
    module = DemoCTC(**config["args"])
    state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    missing, unexpected = module.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("mel.")]:
        raise ValueError(f"demo weights do not fit the architecture: {missing} {unexpected}")
    vocab = Vocabulary(tuple(config["labels"]), config["blank"], "|", None, upper=True)
    info = ModelInfo("demo", sha256_file(directory / "model.pt"), vocab,
                     config.get("license", "Apache-2.0"), frame_s=config["frame_s"],
                     note="trained on espeak-ng speech only: for the offline demo and tests, "
                          "not for real corpora",
                     filter_defaults=_calibration(directory / "filters.toml"))
    return _wrap(module, info, device, first=False)


def _calibration(path: Path) -> tuple:
    """A model's calibrated filter thresholds, if it ships them (see ``ModelInfo``)."""
    return tuple(sorted(read_overrides(path).items())) if path.exists() else ()


def _sidecar(path: Path) -> tuple[Path, dict]:
    if path.is_dir():
        weights, config = path / "model.pt", path / "config.json"
    else:
        weights = path
        config = path.with_suffix(".json")
        if not config.exists():
            config = path.parent / "config.json"
    if not config.exists():
        raise FileNotFoundError(f"no JSON config for {path} (looked for {config})")
    return weights, json.loads(config.read_text())


def load_checkpoint(path: Path, device: str = "cpu") -> AcousticModel:
    """A local model: TorchScript, or a wav2vec2 state dict, with labels in a JSON config."""
    weights, config = _sidecar(Path(path))
    labels = tuple(config["labels"])
    sep = config.get("word_separator", "|" if "|" in labels else None)
    upper = config.get("upper", any(c.isupper() for c in labels))
    vocab = Vocabulary(labels, config.get("blank", 0), sep, config.get("star"), upper)
    frame_s = config.get("frame_s", 0.02)
    offset = config.get("frame_offset_s", WAV2VEC2_FRAME_OFFSET_S)
    calibration = (Path(path) / "filters.toml" if Path(path).is_dir()
                   else Path(path).with_suffix(".filters.toml"))
    info = ModelInfo(str(path), sha256_file(weights), vocab, config.get("license", "unknown"),
                     frame_s=frame_s, frame_offset_s=offset,
                     filter_defaults=_calibration(calibration))
    normalize = bool(config.get("normalize_waveform", False))
    if "wav2vec2_model" in config:
        module = torchaudio.models.wav2vec2_model(**config["wav2vec2_model"])
        state = torch.load(weights, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
        return _wrap(module, info, device, normalize, first=True)
    module = torch.jit.load(str(weights), map_location="cpu")
    return _wrap(module, info, device, normalize, first=config.get("returns_tuple", True))


def random_checkpoint(name: str, hub_dir: Path | None = None, seed: int = 0) -> Path:
    """Save randomly initialised weights of a registry model's architecture where torch hub
    looks for the real ones, so the real loading path can run with no network (tests and
    benchmarks). The file has the layout of the published checkpoint."""
    bundle = _bundle(name)
    params = dict(bundle._params)
    params["aux_num_out"] = params["aux_num_out"] + len(bundle._remove_aux_axis)
    torch.manual_seed(seed)
    module = torchaudio.models.wav2vec2_model(**params)
    if hub_dir is not None:
        torch.hub.set_dir(str(hub_dir))
    dest = hub_checkpoint_path(name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), dest)
    return dest
