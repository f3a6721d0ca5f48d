"""The exports, each read back by the library its users load it with: HuggingFace datasets
(and DuckDB), NeMo's JSON lines with soundfile, and lhotse."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from align.audio import decode
from manifests.exports import ExportError, export
from manifests.paths import safe_name

SPEECHCRAWL = [sys.executable, "-m", "speechcrawl.cli"]
PROVENANCE = ["source", "item_id", "audio_file", "start_s", "end_s", "tier", "score", "cer",
              "license_spdx", "license_family", "attribution"]


def manifest_rows(workdir: Path) -> list[dict]:
    return pq.read_table(workdir / "manifests" / "clips").to_pylist()


@pytest.fixture(scope="module")
def clean(aligned) -> list[dict]:
    """The clean clips of the shared workdir, in clip_id order: what a default export holds."""
    rows = sorted((r for r in manifest_rows(aligned) if r["tier"] == "clean"),
                  key=lambda r: r["clip_id"])
    assert len(rows) >= 5, "the aligned demo workdir has too few clean clips to test exports"
    return rows


def assert_words_in_clip(words: list[tuple[str, float, float]], want: dict,
                         duration_s: float) -> None:
    """The manifest's word timings, moved into the clip and kept inside it."""
    assert [w for w, _, _ in words] == [w["word"] for w in want["words"]] and words
    for (_, start, end), w in zip(words, want["words"], strict=True):
        for got, t in ((start, w["start_s"]), (end, w["end_s"])):
            assert got == pytest.approx(min(max(t - want["start_s"], 0), duration_s), abs=2e-3)
        assert 0 <= start <= end <= duration_s


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(SPEECHCRAWL + ["export", *argv], capture_output=True, text=True,
                          timeout=300)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def hf_out(aligned, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "export"
    result = cli("hf", "--workdir", str(aligned), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("export hf: ")
    return out


# -- HuggingFace -----------------------------------------------------------------------------

def test_hf_export_loads_with_datasets_and_decodes_audio(hf_out, clean, aligned, tmp_path):
    import datasets

    files = sorted(str(p) for p in (hf_out / "data").glob("*.parquet"))
    assert [Path(f).name for f in files] == ["train-00000-of-00001.parquet"]
    ds = datasets.load_dataset("parquet", data_files=files, split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert isinstance(ds.features["audio"], datasets.Audio)
    assert ds.features["audio"].sampling_rate == 16_000
    assert ds["id"] == [r["clip_id"] for r in clean]
    assert ds["text"] == [r["text"] for r in clean]
    for row, want in zip(ds, clean, strict=True):
        samples = row["audio"].get_all_samples()
        assert samples.sample_rate == 16_000 and samples.data.shape[0] == 1
        assert abs(samples.data.shape[-1] / 16 - row["duration_ms"]) <= 1
        assert abs(row["duration_ms"] - want["duration_s"] * 1000) <= 1
        clip, _ = sf.read(aligned / want["clip_path"], dtype="float32")
        np.testing.assert_allclose(samples.data[0].numpy(), clip, atol=1e-4)
        assert {k: row[k] for k in PROVENANCE} == {k: want[k] for k in PROVENANCE}
        assert_words_in_clip([(w["word"], w["start_s"], w["end_s"]) for w in row["words"]],
                             want, samples.data.shape[-1] / 16_000)


def test_hf_audio_bytes_are_stored_uncompressed(hf_out, clean, aligned):
    (path,) = (hf_out / "data").glob("*.parquet")
    meta = pq.ParquetFile(path).metadata
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    for g in range(meta.num_row_groups):
        codecs = {n: meta.row_group(g).column(i).compression for i, n in enumerate(names)}
        assert codecs["audio.bytes"] == "UNCOMPRESSED"
        assert codecs["text"] == "ZSTD"
    audio = pq.read_table(path, columns=["audio"]).column("audio").to_pylist()
    assert [a["bytes"] for a in audio] == [(aligned / r["clip_path"]).read_bytes()
                                           for r in clean]
    assert b"huggingface" in pq.read_schema(path).metadata


def test_duckdb_queries_the_hf_export(hf_out, clean):
    glob = str(hf_out / "data" / "*.parquet")
    got = duckdb.sql(f"SELECT license_spdx, count(*), sum(duration_ms), "
                     f"sum(octet_length(audio.bytes)) FROM read_parquet('{glob}') "
                     "GROUP BY 1 ORDER BY 1").fetchall()
    by_license: dict[str, list] = {}
    for r in clean:
        n = by_license.setdefault(r["license_spdx"], [0, 0.0])
        n[0] += 1
        n[1] += r["duration_s"] * 1000
    assert [(k, c) for k, c, _, _ in got] == [(k, v[0]) for k, v in sorted(by_license.items())]
    for (_, c, ms, nbytes), (_, (_, want_ms)) in zip(got, sorted(by_license.items()),
                                                    strict=True):
        assert abs(ms - want_ms) <= c and nbytes > 0
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}') WHERE tier <> 'clean' "
                      "OR asr_caption").fetchall() == [(0,)]


def test_hf_shards_are_named_and_read_in_order(aligned, clean, tmp_path):
    import datasets

    out = tmp_path / "sharded"
    export("hf", aligned, out, max_shard_bytes=100_000)
    files = sorted((out / "data").glob("*.parquet"))
    n = len(files)
    assert n > 2
    assert [f.name for f in files] == [f"train-{k:05d}-of-{n:05d}.parquet" for k in range(n)]
    ds = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert ds["id"] == [r["clip_id"] for r in clean]


# -- NeMo ------------------------------------------------------------------------------------

def nemo_lines(out: Path) -> list[dict]:
    lines = (out / "manifest.json").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_nemo_manifest_points_at_the_clip_files(aligned, clean, tmp_path):
    export("nemo", aligned, tmp_path / "nemo")
    entries = nemo_lines(tmp_path / "nemo")
    assert [e["id"] for e in entries] == [r["clip_id"] for r in clean]
    for e, want in zip(entries, clean, strict=True):
        assert Path(e["audio_filepath"]).is_absolute()
        assert Path(e["audio_filepath"]) == (aligned / want["clip_path"]).absolute()
        audio, rate = sf.read(e["audio_filepath"])
        assert rate == 16_000 and audio.ndim == 1
        assert e["duration"] == pytest.approx(len(audio) / rate, abs=1e-9)
        assert abs(e["duration"] - want["duration_s"]) <= 1e-3
        assert e["text"] == want["text"] and "offset" not in e
        assert {k: e[k] for k in PROVENANCE} == {k: want[k] for k in PROVENANCE}


def test_nemo_against_recordings_cuts_the_same_audio(aligned, tmp_path):
    export("nemo", aligned, tmp_path / "nemo", tiers=["all"], against_recordings=True)
    entries = nemo_lines(tmp_path / "nemo")
    rows = {r["clip_id"]: r for r in manifest_rows(aligned)}
    assert {e["tier"] for e in entries} == {"clean", "other"}
    decoded: dict[str, np.ndarray] = {}
    for e in entries:
        r = rows[e["id"]]
        assert e["offset"] == r["start_s"]
        assert e["duration"] == pytest.approx(r["end_s"] - r["start_s"], abs=1e-6)
        path = Path(e["audio_filepath"])
        assert path.is_absolute() and path.name == safe_name(r["audio_file"])
        if path not in decoded:
            decoded[path] = decode(path)  # as align decoded it
        recording = decoded[path]
        first = int(e["offset"] * 16_000)
        clip, _ = sf.read(aligned / r["clip_path"], dtype="int16")
        assert abs(len(clip) - e["duration"] * 16_000) <= 1
        # The same samples, to the half millisecond start_s is rounded to in the manifest.
        assert any(np.array_equal(recording[first + d: first + d + len(clip)], clip)
                   for d in range(-8, 9))
    assert len(decoded) > 1


# -- Lhotse ----------------------------------------------------------------------------------

def test_lhotse_manifests_load_with_word_alignments(aligned, clean, tmp_path):
    import lhotse
    from lhotse.qa import validate

    out = tmp_path / "lhotse"
    export("lhotse", aligned, out)
    recordings = lhotse.load_manifest(out / "recordings.jsonl.gz")
    supervisions = lhotse.load_manifest(out / "supervisions.jsonl.gz")
    cuts = lhotse.load_manifest(out / "cuts.jsonl.gz")
    assert isinstance(recordings, lhotse.RecordingSet)
    assert isinstance(supervisions, lhotse.SupervisionSet)
    assert isinstance(cuts, lhotse.CutSet)
    ids = [r["clip_id"] for r in clean]
    assert list(recordings.ids) == list(supervisions.ids) == list(cuts.ids) == ids
    validate(recordings, read_data=True)
    validate(cuts)
    for cut, want in zip(cuts, clean, strict=True):
        audio = cut.load_audio()
        assert audio.shape[0] == 1
        assert abs(audio.shape[1] / 16_000 - want["duration_s"]) <= 1e-3
        assert audio.shape[1] == cut.num_samples
        (sup,) = cut.supervisions
        assert sup.text == want["text"] and sup.language == want["language"]
        assert sup.custom["license_spdx"] == want["license_spdx"]
        assert sup.custom["attribution"] == want["attribution"]
        assert_words_in_clip([(w.symbol, w.start, w.end) for w in sup.alignment["word"]],
                             want, cut.duration)
    assert supervisions[ids[0]].alignment == cuts[ids[0]].supervisions[0].alignment


# -- what every format shares ----------------------------------------------------------------

def test_tiers_and_machine_captions(aligned, tmp_path):
    rows = manifest_rows(aligned)
    out = tmp_path / "nemo"

    def ids(**kw) -> set[str]:
        export("nemo", aligned, out, **kw)
        return {e["id"] for e in nemo_lines(out)}

    def want(tiers, asr=False) -> set[str]:
        return {r["clip_id"] for r in rows if r["tier"] in tiers and (asr or not r["asr_caption"])}

    assert ids() == want({"clean"})
    assert ids(tiers=["other"]) == want({"other"})
    assert ids(tiers=["other", "clean"]) == ids(tiers=["all"]) == want({"clean", "other"})
    assert ids(tiers=["all"], include_asr_captions=True) == want({"clean", "other"}, asr=True)
    assert not any(r["asr_caption"] for r in rows if r["tier"] == "clean")
    assert json.loads((out / "export.json").read_text())["tiers"] == ["clean", "other"]


@pytest.mark.parametrize("fmt", ["hf", "nemo", "lhotse"])
def test_exporting_twice_gives_identical_bytes(aligned, tmp_path, fmt):
    export(fmt, aligned, tmp_path / "a")
    export(fmt, aligned, tmp_path / "b")
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a == b and len(a) >= 2
    if fmt == "lhotse":  # gzip headers carry no time stamp or name
        for name, data in a.items():
            if name.endswith(".gz"):
                assert data[4:8] == b"\0\0\0\0" and gzip.decompress(data)


def test_cli_rerun_replaces_the_export_whole(aligned, hf_out, tmp_path):
    out = tmp_path / "export"
    assert cli("hf", "--workdir", str(aligned), "--out", str(out)).returncode == 0
    first = tree(out)
    assert first == tree(hf_out)
    (out / "stale.txt").write_text("left from an earlier export")
    (out / "data" / "train-00000-of-00009.parquet").write_bytes(b"old shard")
    result = cli("hf", "--workdir", str(aligned), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert tree(out) == first
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary left beside it


def test_an_empty_selection_is_a_one_line_error(aligned, tmp_path):
    workdir = tmp_path / "work"
    manifest = workdir / "manifests" / "clips" / "clips.parquet"
    manifest.parent.mkdir(parents=True)
    shutil.copy(aligned / "catalog.sqlite", workdir)  # the CLI wants a workdir, not a typo
    table = pq.read_table(aligned / "manifests" / "clips")
    rejected = table.filter(pc.equal(table["tier"].cast("string"), "rejected"))
    assert rejected.num_rows > 0
    pq.write_table(rejected, manifest)
    out = tmp_path / "out"
    result = cli("nemo", "--workdir", str(workdir), "--out", str(out), "--tier", "all")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing to export" in lines[0], lines
    assert f"none of its {rejected.num_rows} clips" in lines[0]
    assert not out.exists()
    clean = table.filter(pc.equal(table["tier"].cast("string"), "clean"))
    captions = clean.set_column(clean.schema.get_field_index("asr_caption"), "asr_caption",
                                pa.array([True] * clean.num_rows))
    pq.write_table(captions, manifest)
    with pytest.raises(ExportError, match=f"its {clean.num_rows} clean clips are cut from "
                                          "machine captions"):
        export("hf", workdir, out)
    with pytest.raises(ExportError, match="no clip manifests"):
        export("hf", tmp_path / "nowhere", out)


def test_never_replaces_a_directory_that_is_not_an_export(aligned, tmp_path):
    precious = tmp_path / "mine" / "thesis.tex"
    precious.parent.mkdir()
    precious.write_text("years of work")
    with pytest.raises(ExportError, match="speechcrawl export did not make"):
        export("nemo", aligned, precious.parent)
    assert precious.read_text() == "years of work"
    with pytest.raises(ExportError, match="is the workdir"):
        export("nemo", aligned, aligned)
    with pytest.raises(ExportError, match="inside the workdir's clips/"):
        export("nemo", aligned, aligned / "clips" / "nemo")
    assert not (aligned / "clips" / "nemo").exists()
    with pytest.raises(ExportError, match="nemo export only"):
        export("hf", aligned, tmp_path / "x", against_recordings=True)
    with pytest.raises(ExportError, match="cannot export tier 'rejected'"):
        export("nemo", aligned, tmp_path / "x", tiers=["rejected"])
