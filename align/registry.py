"""The names of the models ``align.models`` can load, without importing torch: a job file's
``model`` is checked when it loads, and a wrong name should cost a fraction of a second, not
the seconds torch and torchaudio take to import."""

from __future__ import annotations

# name -> (torchaudio.pipelines bundle, weights license, note for the data card)
BUNDLES = {
    "wav2vec2-base-960h": ("WAV2VEC2_ASR_BASE_960H", "MIT",
                           "fairseq wav2vec 2.0 base fine-tuned on LibriSpeech 960 h"),
    "mms-fa": ("MMS_FA", "CC-BY-NC-4.0",
               "Meta MMS forced-alignment model; its weights are licensed for non-commercial "
               "use only, which a release's data card must state"),
}


def list_models() -> list[str]:
    return [*BUNDLES, "demo"]
