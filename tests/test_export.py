"""The exports, each read back by the library its users load it with: HuggingFace datasets
(and DuckDB), NeMo's JSON lines (paths resolved as NeMo resolves them) and lhotse.

Exports of a release must be exactly a release config (ids, texts, audio bytes, splits; the
duplicates it dropped absent) and keep loading after the workdir and the export are moved.
Exports of a workdir are quick looks and say so. Share-alike never shares a file with
anything else, and no export holds a clip whose license the gate would not accept.
"""

from __future__ import annotations

import gzip
import hashlib
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
from manifests.release import ReleaseConfig, build_release
from manifests.release.splits import draw, group_of

SPEECHCRAWL = [sys.executable, "-m", "speechcrawl.cli"]
PROVENANCE = ["source", "item_id", "audio_file", "start_s", "end_s", "tier", "score", "cer",
              "license_spdx", "license_family", "attribution"]
DUP = "dup-text-00000"  # a clip repeating another item's text: the release drops it
BANNED = {"nc-00000": ("CC-BY-NC-4.0", "by"), "typo-00000": ("CC-BY-4", "by"),
          "mislabelled-00000": ("CC-BY-SA-4.0", "by")}  # never exported, whatever the row says


def manifest_rows(workdir: Path) -> list[dict]:
    return pq.read_table(workdir / "manifests" / "clips").to_pylist()


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(SPEECHCRAWL + ["export", *map(str, argv)], capture_output=True,
                          text=True, timeout=300)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def release_rows(release: Path, config: str) -> dict[str, list[dict]]:
    """Split → the config's rows (with their audio bytes) in the release's own order."""
    meta = json.loads((release / "release.json").read_text())
    return {split: [r for f in entry["files"] for r in pq.read_table(release / f).to_pylist()]
            for split, entry in meta["configs"][config]["splits"].items()}


def assert_words_in_clip(words: list[tuple[str, float, float]], want: dict,
                         duration_s: float) -> None:
    """The manifest's word timings, moved into the clip and kept inside it."""
    assert [w for w, _, _ in words] == [w["word"] for w in want["words"]] and words
    for (_, start, end), w in zip(words, want["words"], strict=True):
        for got, t in ((start, w["start_s"]), (end, w["end_s"])):
            assert got == pytest.approx(min(max(t - want["start_s"], 0), duration_s), abs=2e-3)
        assert 0 <= start <= end <= duration_s


def nemo_entries(manifest: Path) -> list[dict]:
    """Read a NeMo manifest as NeMo's ``item_iter`` does: one JSON object a line; a relative
    ``audio_filepath`` that names a directory is taken relative to the manifest's directory."""
    out = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        assert isinstance(item, dict) and {"audio_filepath", "duration", "text"} <= set(item)
        audio = Path(item["audio_filepath"])
        assert not audio.is_absolute() and audio.parent != Path(".")
        out.append({**item, "resolved": manifest.parent / audio})
    return out


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(aligned, tmp_path_factory) -> Path:
    """A copy of the shared workdir with a duplicate text in another item (the release drops
    it) and clips whose licenses the gate refuses (no export may hold them)."""
    w = Path(shutil.copytree(aligned, tmp_path_factory.mktemp("export") / "work"))
    rows = manifest_rows(w)
    items = {r["item_id"]: r for r in pq.read_table(w / "manifests" / "items.parquet")
             .to_pylist()}
    pd_items = sorted(i for i, r in items.items() if r["license_family"] == "public-domain"
                      and r["decision"] == "accepted")
    keeper, other = pd_items[0], pd_items[1]
    b = next(c for c in rows if c["item_id"] == keeper and c["tier"] == "clean"
             and len(c["text"]) >= 20)
    samples, rate = sf.read(w / b["clip_path"])
    extra = []
    for clip_id, (spdx, family) in {DUP: (items[other]["license_spdx"],
                                          items[other]["license_family"]), **BANNED}.items():
        path = Path("clips") / "archive_org" / other / f"{clip_id}.flac"
        (w / path).parent.mkdir(parents=True, exist_ok=True)
        sf.write(w / path, samples * 0.5, rate, format="FLAC", subtype="PCM_16")
        extra.append({**b, "clip_id": clip_id, "item_id": other, "clip_path": str(path),
                      "license_spdx": spdx, "license_family": family})
    schema = pq.read_schema(next((w / "manifests" / "clips").glob("*.parquet")))
    pq.write_table(pa.Table.from_pylist(extra, schema=schema),
                   w / "manifests" / "clips" / "zz-extra.parquet")
    return w


@pytest.fixture(scope="module")
def release(workdir) -> Path:
    """The workdir's release (inside it, so moving the workdir moves it), with a salt that
    puts the clean items in more than one split, and share-alike rows in other_sa."""
    items = {r["item_id"]: r for r in pq.read_table(workdir / "manifests" / "items.parquet")
             .to_pylist()}
    usable = sorted({c["item_id"] for c in manifest_rows(workdir) if c["tier"] == "clean"
                     and items[c["item_id"]]["license_family"] in ("public-domain", "by")})
    for n in range(1000):
        # Machine captions in: the fixture's share-alike item has only those (other_sa).
        cfg = ReleaseConfig(salt=f"export-{n}", splits={"train": 0.5, "validation": 0.25,
                                                        "test": 0.25}, include_asr_captions=True)
        if len({draw(group_of(f"archive_org/{i}", items[i]["creator"], cfg), cfg)
                for i in usable}) >= 2:
            break
    # The bad rows would fail the release's own audit gate: leave them out of its input.
    extra = workdir / "manifests" / "clips" / "zz-extra.parquet"
    t = pq.read_table(extra)
    hidden = workdir / "zz-extra.parquet.hidden"
    pq.write_table(t.filter(pc.equal(t["clip_id"], DUP)), extra)
    pq.write_table(t, hidden)
    try:
        rel = build_release(workdir, "v1", config=cfg, workers=1)
    finally:
        hidden.replace(extra)
    dropped = json.loads((rel / "dedup.json").read_text())["duplicate_text"]
    assert DUP in {d["dropped"] for d in dropped}
    return rel


@pytest.fixture(scope="module")
def clean(workdir) -> list[dict]:
    """The clean, acceptable clips of the workdir in clip_id order: a workdir export's."""
    rows = sorted((r for r in manifest_rows(workdir) if r["tier"] == "clean"
                   and r["clip_id"] not in BANNED and r["license_family"] != "by-sa"),
                  key=lambda r: r["clip_id"])
    assert len(rows) >= 5, "the aligned demo workdir has too few clean clips to test exports"
    return rows


# -- exports of a release ----------------------------------------------------------------------

def test_release_exports_load_after_the_workdir_and_export_move(workdir, release, tmp_path):
    """The issue's test: hf, nemo and lhotse exports of the release's clean config, moved
    with the workdir to somewhere else, load with datasets, NeMo's reader and lhotse; ids,
    texts, splits and audio bytes are the release's; the dropped duplicate is absent."""
    import datasets
    import lhotse
    from lhotse.qa import validate

    want = release_rows(release, "clean")
    assert len(want) >= 2 and all(want.values())
    exports = tmp_path / "exports"
    for fmt in ("hf", "nemo", "lhotse"):
        result = cli(fmt, "--release", release, "--out", exports / fmt)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"export {fmt} of release {release}: clean ")
        assert "not a release" not in result.stdout
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(workdir, moved / "work")
    try:
        shutil.move(exports, moved / "exports")
        out = moved / "exports"
        assert not workdir.exists() and not exports.exists()

        ds = datasets.load_dataset("parquet", data_dir=str(out / "hf"),
                                   cache_dir=str(tmp_path / "cache"))
        assert list(ds) == list(want)
        for split, rows in want.items():
            got = ds[split]
            assert isinstance(got.features["audio"], datasets.Audio)
            assert got["id"] == [r["id"] for r in rows] and DUP not in got["id"]
            assert got["text"] == [r["text"] for r in rows]
            raw = got.cast_column("audio", datasets.Audio(decode=False))["audio"]
            assert [a["bytes"] for a in raw] == [r["audio"]["bytes"] for r in rows]
            samples = got[0]["audio"].get_all_samples()
            assert samples.sample_rate == 16_000
            assert abs(samples.data.shape[-1] / 16 - rows[0]["duration_ms"]) <= 1

        for split, rows in want.items():
            entries = nemo_entries(out / "nemo" / f"{split}_manifest.json")
            assert [e["id"] for e in entries] == [r["id"] for r in rows]
            assert [e["text"] for e in entries] == [r["text"] for r in rows]
            for e, r in zip(entries, rows, strict=True):
                assert e["resolved"].read_bytes() == r["audio"]["bytes"]
                audio, rate = sf.read(e["resolved"])
                assert rate == 16_000 and e["duration"] == pytest.approx(len(audio) / rate)
        assert not list((out / "nemo").glob("*.parquet"))

        for split, rows in want.items():
            cuts = lhotse.load_manifest(out / "lhotse" / f"cuts_{split}.jsonl.gz")
            recs = lhotse.load_manifest(out / "lhotse" / f"recordings_{split}.jsonl.gz")
            cuts = cuts.with_recording_path_prefix(str(out / "lhotse"))
            recs = recs.with_path_prefix(str(out / "lhotse"))
            validate(recs, read_data=True)
            validate(cuts)
            assert list(cuts.ids) == [r["id"] for r in rows]
            for cut, r in zip(cuts, rows, strict=True):
                assert cut.supervisions[0].text == r["text"]
                assert cut.load_audio().shape == (1, cut.num_samples)
                (source,) = cut.recording.sources
                assert Path(source.source).read_bytes() == r["audio"]["bytes"]
    finally:
        shutil.move(moved / "work", workdir)  # the module's other tests use it


def test_export_json_counts_what_its_files_hold_and_what_the_release_says(release, tmp_path):
    meta = json.loads((release / "release.json").read_text())["configs"]["clean"]
    for fmt in ("hf", "nemo", "lhotse"):
        out = tmp_path / fmt
        summary = export(fmt, out, release=release)
        record = json.loads((out / "export.json").read_text())
        assert record["from"] == "release" and record["release"]["version"] == "v1"
        assert record["release"]["sha256sums_sha256"] == hashlib.sha256(
            (release / "SHA256SUMS").read_bytes()).hexdigest()
        part = record["parts"]["clean"]
        assert part["dir"] == "." and part["share_alike"] is False
        # What the files hold, counted from the files.
        per: dict[tuple[str, str], list[int]] = {}
        if fmt == "hf":
            for f in (out / "data").glob("*.parquet"):
                for r in pq.read_table(f, columns=["duration_ms", "license_spdx"]).to_pylist():
                    per.setdefault((f.name.split("-")[0], r["license_spdx"]), []).append(
                        r["duration_ms"])
        elif fmt == "nemo":
            for f in out.glob("*_manifest.json"):
                for e in nemo_entries(f):
                    per.setdefault((f.name.removesuffix("_manifest.json"), e["license_spdx"]),
                                   []).append(round(e["duration"] * 1000))
        else:
            import lhotse

            for f in out.glob("cuts_*.jsonl.gz"):
                for cut in lhotse.load_manifest(f):
                    per.setdefault((f.name[5:].split(".")[0],
                                    cut.supervisions[0].custom["license_spdx"]), []).append(
                        round(cut.num_samples / 16))
        ms = [m for v in per.values() for m in v]
        assert record["clips"] == summary.clips == len(ms) == meta["rows"]
        assert record["hours"] == part["hours"] == round(sum(ms) / 3.6e6, 4) == meta["hours"]
        for split, entry in meta["splits"].items():
            here = [m for (s, _), v in per.items() if s == split for m in v]
            assert len(here) == entry["rows"]
            assert part["splits"][split] == record["splits"][split] == {
                "clips": len(here), "hours": round(sum(here) / 3.6e6, 4)}
        for spdx, entry in part["licenses"].items():
            here = [m for (_, x), v in per.items() if x == spdx for m in v]
            assert entry == {"clips": len(here), "hours": round(sum(here) / 3.6e6, 4)}
        assert sum(e["clips"] for e in part["licenses"].values()) == record["clips"]


def test_several_configs_never_share_a_file_and_sa_stays_apart(release, tmp_path):
    out = tmp_path / "both"
    result = cli("nemo", "--release", release, "--config", "clean", "--config", "other_sa",
                 "--out", out)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "export.json").read_text())
    assert {n: (p["dir"], p["share_alike"]) for n, p in record["parts"].items()} == {
        "clean": ("clean", False), "other_sa": ("other_sa", True)}
    for config in ("clean", "other_sa"):
        want = release_rows(release, config)
        families = {e["license_family"] for f in (out / config).glob("*_manifest.json")
                    for e in nemo_entries(f)}
        assert families == {r["license_family"] for rows in want.values() for r in rows}
        assert ("by-sa" in families) == config.endswith("_sa")
        for split, rows in want.items():
            got = nemo_entries(out / config / f"{split}_manifest.json")
            assert [e["id"] for e in got] == [r["id"] for r in rows]
    assert not list(out.glob("*_manifest.json"))  # nothing at the top to mix them in


def test_totals_count_each_clip_once_when_a_sample_config_rides_along(release, tmp_path):
    """microset is a sample of clean: exported together, export.json's totals count each clip
    once (by clip id), each config keeps its own counts, and the sample says what it is —
    whichever order the configs are named in."""
    meta = json.loads((release / "release.json").read_text())["configs"]
    sample = next(n for n, c in meta.items() if c.get("sample") and c["rows"])
    rows = {c: [r for split in release_rows(release, c).values() for r in split]
            for c in ("clean", sample)}
    assert {r["id"] for r in rows[sample]} < {r["id"] for r in rows["clean"]}
    distinct = {r["id"]: r["duration_ms"] for c in rows.values() for r in c}
    for order in (["clean", sample], [sample, "clean"]):
        out = tmp_path / "-".join(order)
        result = cli("hf", "--release", release, *[a for c in order for a in ("--config", c)],
                     "--out", out)
        assert result.returncode == 0, result.stderr
        record = json.loads((out / "export.json").read_text())
        assert record["clips"] == len(distinct) == meta["clean"]["rows"]
        assert record["clips"] < meta["clean"]["rows"] + meta[sample]["rows"]
        assert record["hours"] == round(sum(distinct.values()) / 3.6e6, 4) == meta["clean"][
            "hours"]
        assert sum(e["clips"] for e in record["splits"].values()) == record["clips"]
        assert sum(e["clips"] for e in record["licenses"].values()) == record["clips"]
        for config in order:
            part = record["parts"][config]
            assert (part["clips"], part["hours"]) == (meta[config]["rows"],
                                                      meta[config]["hours"])
        assert (record["parts"][sample]["sample"], record["parts"][sample]["sample_of"]) == (
            True, ["clean"])
        assert (record["parts"]["clean"]["sample"], record["parts"]["clean"]["sample_of"]) == (
            False, None)
    # Alone, a sample is all there is: its own clips are the totals.
    alone = export("nemo", tmp_path / "alone", release=release, configs=[sample])
    assert (alone.clips, alone.hours) == (meta[sample]["rows"], meta[sample]["hours"])
    # Configs that share no clip add up.
    both = export("nemo", tmp_path / "apart", release=release, configs=["clean", "other_sa"])
    assert both.clips == meta["clean"]["rows"] + meta["other_sa"]["rows"]


def test_hf_export_of_a_release_keeps_exactly_the_release_columns(release, tmp_path):
    """Same columns, same types, same values (audio bytes included): nothing dropped (creator,
    audio_hash), nothing added that a release does not hold (empty speech_start_s...)."""
    out = tmp_path / "hf"
    export("hf", out, release=release, configs=["clean", "other_sa"])
    for config in ("clean", "other_sa"):
        shards = sorted((release / "data" / config).glob("*.parquet"))
        want = pq.read_schema(shards[0])
        got_files = sorted((out / config / "data").glob("*.parquet"))
        assert [f.name for f in got_files] == [f.name for f in shards]
        for f in got_files:
            schema = pq.read_schema(f)
            assert schema.names == want.names
            assert schema.equals(want, check_metadata=False)
            assert b"huggingface" in schema.metadata
        for split, rows in release_rows(release, config).items():
            got = [r for f in got_files if f.name.startswith(f"{split}-")
                   for r in pq.read_table(f).to_pylist()]
            assert got == rows


def test_the_card_lists_every_column_of_the_rows(release):
    """The data card's row list is the shard's schema, in its order: it cannot drift."""
    import re

    card = (release / "README.md").read_text()
    (line,) = [x for x in card.splitlines() if x.startswith("Rows: ")]
    listed = re.findall(r"`([a-z_]+)`", re.sub(r"\([^()]*\)", "", line))
    shard = next((release / "data" / "clean").glob("*.parquet"))
    assert listed == pq.read_schema(shard).names
    assert {"audio_file", "start_s", "end_s", "language", "creator", "audio_hash"} <= set(listed)


def test_a_release_that_is_not_what_its_files_say_is_refused(release, tmp_path):
    """An altered, truncated or incomplete release, or one whose rows break its own promises
    (with SHA256SUMS rewritten to match), exports nothing."""
    def copy(name: str) -> Path:
        return Path(shutil.copytree(release, tmp_path / name))

    def reseal(rel: Path) -> None:
        lines = [f"{hashlib.sha256((rel / p).read_bytes()).hexdigest()}  {p}\n"
                 for p in sorted(p.relative_to(rel).as_posix() for p in rel.rglob("*")
                                 if p.is_file() and p.name != "SHA256SUMS")]
        (rel / "SHA256SUMS").write_text("".join(lines))

    def refused(rel: Path, match: str, **kw) -> None:
        out = tmp_path / f"out-{rel.name}"
        with pytest.raises(ExportError, match=match):
            export("nemo", out, release=rel, **kw)
        assert not out.exists()

    shard = next((release / "data" / "clean").glob("train-*.parquet")).relative_to(release)
    rel = copy("altered")
    data = bytearray((rel / shard).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (rel / shard).write_bytes(bytes(data))
    refused(rel, "differs from its SHA256SUMS")
    rel = copy("missing")
    (rel / shard).unlink()
    refused(rel, "missing: data/clean/train")
    rel = copy("extra")
    shutil.copy(rel / shard, rel / "data" / "clean" / "train-00009-of-00009.parquet")
    refused(rel, "not listed: data/clean/train-00009")

    t = pq.read_table(release / shard)
    for name, column, value, match in (
            ("nc", "license_spdx", "CC-BY-NC-4.0", "may not hold"),
            ("sa", "license_spdx", "CC-BY-SA-4.0", "may not hold"),
            ("traversal", "id", "../../escaped", "not a plain clip id")):
        rel = copy(name)
        col = t.column(column).to_pylist()
        col[0] = value
        pq.write_table(t.set_column(t.schema.get_field_index(column), column,
                                    pa.array(col, t.schema.field(column).type)), rel / shard)
        reseal(rel)
        refused(rel, match)
        assert not (tmp_path / "escaped.flac").exists()
    rel = copy("count")
    meta = json.loads((rel / "release.json").read_text())
    meta["configs"]["clean"]["splits"]["train"]["rows"] += 1
    (rel / "release.json").write_text(json.dumps(meta))
    reseal(rel)
    refused(rel, "release.json says")

    refused(tmp_path / "nowhere", "is not a directory")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "no release.json")
    refused(release, "no config '../clean'", configs=["../clean"])
    refused(release, "no config 'nope'", configs=["nope"])
    refused(release, "nemo export of a workdir only", against_recordings=True)
    refused(release, "--link is for exports of a workdir", link=True)
    result = cli("hf", "--release", release, "--tier", "all", "--out", tmp_path / "x")
    assert result.returncode == 2 and "--tier" in result.stderr
    result = cli("hf", "--workdir", release.parent.parent, "--config", "clean",
                 "--out", tmp_path / "x")
    assert result.returncode == 2 and "--config names a release config" in result.stderr


# -- exports of a workdir ----------------------------------------------------------------------

def test_a_workdir_export_says_it_is_not_a_release(workdir, tmp_path):
    out = tmp_path / "look"
    result = cli("nemo", "--workdir", workdir, "--out", out, "--tier", "all",
                 "--include-asr-captions")
    assert result.returncode == 0, result.stderr
    assert "not a release" in result.stdout
    record = json.loads((out / "export.json").read_text())
    assert record["from"] == "workdir" and record["release"] is None
    assert "not from a release" in record["note"]
    assert record["left_out"]["license_not_accepted"] == len(BANNED)
    rows = {r["clip_id"]: r for r in manifest_rows(workdir)
            if r["tier"] != "rejected" and r["clip_id"] not in BANNED}
    got = nemo_entries(out / "permissive" / "train_manifest.json")
    sa = nemo_entries(out / "share_alike" / "train_manifest.json")
    assert [e["id"] for e in got] == sorted(i for i, r in rows.items()
                                            if r["license_family"] != "by-sa")
    assert [e["id"] for e in sa] == sorted(i for i, r in rows.items()
                                           if r["license_family"] == "by-sa")
    assert DUP in {e["id"] for e in got}  # a workdir keeps what a release drops
    assert sa and {e["license_family"] for e in sa} == {"by-sa"}
    assert {e["license_family"] for e in got} <= {"public-domain", "by"}
    assert record["parts"]["share_alike"]["share_alike"] is True
    assert record["clips"] == len(got) + len(sa) == record["splits"]["train"]["clips"]
    for e in got + sa:
        assert e["resolved"].read_bytes() == (workdir / rows[e["id"]]["clip_path"]).read_bytes()


@pytest.mark.parametrize("fmt", ["hf", "nemo", "lhotse"])
def test_no_export_holds_a_license_the_gate_refuses(workdir, tmp_path, fmt):
    out = tmp_path / fmt
    export(fmt, out, workdir=workdir, tiers=["all"], include_asr_captions=True)
    text = b"".join(gzip.decompress(v) if k.endswith(".gz") else v
                    for k, v in tree(out).items() if not k.endswith(".flac"))
    for clip_id in BANNED:
        assert clip_id.encode() not in text
    assert not list(out.rglob("nc-00000*"))


def test_link_hard_links_the_clip_files(workdir, clean, tmp_path):
    export("lhotse", tmp_path / "l", workdir=workdir, link=True)
    export("lhotse", tmp_path / "c", workdir=workdir)
    first = clean[0]
    linked = tmp_path / "l" / "permissive" / "audio" / "train" / f"{first['clip_id']}.flac"
    copied = tmp_path / "c" / "permissive" / "audio" / "train" / f"{first['clip_id']}.flac"
    assert linked.stat().st_ino == (workdir / first["clip_path"]).stat().st_ino
    assert copied.stat().st_ino != linked.stat().st_ino
    assert copied.read_bytes() == linked.read_bytes()
    assert tree(tmp_path / "l") == tree(tmp_path / "c")


# -- HuggingFace (workdir) ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def hf_out(workdir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "export"
    result = cli("hf", "--workdir", workdir, "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("export hf from workdir ")
    return out


def test_hf_export_loads_with_datasets_and_decodes_audio(hf_out, clean, workdir, tmp_path):
    import datasets

    files = sorted(str(p) for p in (hf_out / "permissive" / "data").glob("*.parquet"))
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
        clip, _ = sf.read(workdir / want["clip_path"], dtype="float32")
        np.testing.assert_allclose(samples.data[0].numpy(), clip, atol=1e-4)
        assert {k: row[k] for k in PROVENANCE} == {k: want[k] for k in PROVENANCE}
        assert_words_in_clip([(w["word"], w["start_s"], w["end_s"]) for w in row["words"]],
                             want, samples.data.shape[-1] / 16_000)


def test_hf_audio_bytes_are_stored_uncompressed(hf_out, clean, workdir):
    (path,) = (hf_out / "permissive" / "data").glob("*.parquet")
    meta = pq.ParquetFile(path).metadata
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    for g in range(meta.num_row_groups):
        codecs = {n: meta.row_group(g).column(i).compression for i, n in enumerate(names)}
        assert codecs["audio.bytes"] == "UNCOMPRESSED"
        assert codecs["text"] == "ZSTD"
    audio = pq.read_table(path, columns=["audio"]).column("audio").to_pylist()
    assert [a["bytes"] for a in audio] == [(workdir / r["clip_path"]).read_bytes()
                                           for r in clean]
    assert b"huggingface" in pq.read_schema(path).metadata


def test_duckdb_queries_the_hf_export(hf_out, clean):
    glob = str(hf_out / "permissive" / "data" / "*.parquet")
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


def test_hf_shards_are_named_and_read_in_order(release, tmp_path):
    import datasets

    out = tmp_path / "sharded"
    export("hf", out, release=release, max_shard_bytes=100_000)
    want = release_rows(release, "clean")
    files = sorted((out / "data").glob("train-*.parquet"))
    n = len(files)
    assert n > 2
    assert [f.name for f in files] == [f"train-{k:05d}-of-{n:05d}.parquet" for k in range(n)]
    ds = datasets.load_dataset("parquet", data_dir=str(out), cache_dir=str(tmp_path / "c"))
    for split, rows in want.items():
        assert ds[split]["id"] == [r["id"] for r in rows]


# -- NeMo (workdir) ----------------------------------------------------------------------------

def test_nemo_against_recordings_cuts_the_same_audio(aligned, tmp_path):
    workdir = aligned  # untouched: every clip's recording is in its catalog
    out = tmp_path / "nemo"
    export("nemo", out, workdir=workdir, tiers=["all"], against_recordings=True)
    entries = nemo_entries(out / "permissive" / "train_manifest.json")
    rows = {r["clip_id"]: r for r in manifest_rows(workdir)}
    assert {e["tier"] for e in entries} == {"clean", "other"}
    decoded: dict[Path, np.ndarray] = {}
    for e in entries:
        r = rows[e["id"]]
        assert e["offset"] == r["start_s"]
        assert e["duration"] == pytest.approx(r["end_s"] - r["start_s"], abs=1e-6)
        path = e["resolved"]
        assert path.is_relative_to(out / "permissive" / "recordings")
        assert path.name == safe_name(r["audio_file"])
        if path not in decoded:
            decoded[path] = decode(path)  # as align decoded it
        recording = decoded[path]
        first = int(e["offset"] * 16_000)
        clip, _ = sf.read(workdir / r["clip_path"], dtype="int16")
        assert abs(len(clip) - e["duration"] * 16_000) <= 1
        # The same samples, to the half millisecond start_s is rounded to in the manifest.
        assert any(np.array_equal(recording[first + d: first + d + len(clip)], clip)
                   for d in range(-8, 9))
    assert len(decoded) > 1


# -- Lhotse (workdir) --------------------------------------------------------------------------

def test_lhotse_manifests_load_with_word_alignments(workdir, clean, tmp_path):
    import lhotse
    from lhotse.qa import validate

    out = tmp_path / "lhotse"
    export("lhotse", out, workdir=workdir)
    part = out / "permissive"
    recordings = lhotse.load_manifest(part / "recordings_train.jsonl.gz")
    supervisions = lhotse.load_manifest(part / "supervisions_train.jsonl.gz")
    cuts = lhotse.load_manifest(part / "cuts_train.jsonl.gz")
    assert isinstance(recordings, lhotse.RecordingSet)
    assert isinstance(supervisions, lhotse.SupervisionSet)
    assert isinstance(cuts, lhotse.CutSet)
    ids = [r["clip_id"] for r in clean]
    assert list(recordings.ids) == list(supervisions.ids) == list(cuts.ids) == ids
    validate(recordings.with_path_prefix(str(part)), read_data=True)
    cuts = cuts.with_recording_path_prefix(str(part))
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


# -- what every format shares ------------------------------------------------------------------

def test_tiers_and_machine_captions(workdir, tmp_path):
    rows = [r for r in manifest_rows(workdir) if r["clip_id"] not in BANNED]
    out = tmp_path / "nemo"

    def ids(**kw) -> set[str]:
        export("nemo", out, workdir=workdir, **kw)
        return {e["id"] for f in out.glob("*/train_manifest.json") for e in nemo_entries(f)}

    def want(tiers, asr=False) -> set[str]:
        return {r["clip_id"] for r in rows if r["tier"] in tiers and (asr or not r["asr_caption"])}

    assert ids() == want({"clean"})
    assert ids(tiers=["other"]) == want({"other"})
    assert ids(tiers=["other", "clean"]) == ids(tiers=["all"]) == want({"clean", "other"})
    assert ids(tiers=["all"], include_asr_captions=True) == want({"clean", "other"}, asr=True)
    assert not any(r["asr_caption"] for r in rows if r["tier"] == "clean")
    assert json.loads((out / "export.json").read_text())["tiers"] == ["clean", "other"]


@pytest.mark.parametrize("fmt", ["hf", "nemo", "lhotse"])
def test_exporting_twice_gives_identical_bytes(workdir, release, tmp_path, fmt):
    for name, source in (("w", {"workdir": workdir}), ("r", {"release": release})):
        export(fmt, tmp_path / f"{name}a", **source)
        export(fmt, tmp_path / f"{name}b", **source)
        a, b = tree(tmp_path / f"{name}a"), tree(tmp_path / f"{name}b")
        assert a == b and len(a) >= 2
        if fmt == "lhotse":  # gzip headers carry no time stamp or name
            for key, data in a.items():
                if key.endswith(".gz"):
                    assert data[4:8] == b"\0\0\0\0" and gzip.decompress(data)


def test_cli_rerun_replaces_the_export_whole(workdir, hf_out, tmp_path):
    out = tmp_path / "export"
    assert cli("hf", "--workdir", workdir, "--out", out).returncode == 0
    first = tree(out)
    assert first == tree(hf_out)
    # A file the export did not make is someone else's: the rerun refuses, deleting nothing.
    (out / "stale.txt").write_text("someone's notes")
    (out / "permissive" / "data" / "train-00000-of-00009.parquet").write_bytes(b"not ours")
    result = cli("hf", "--workdir", workdir, "--out", out)
    assert result.returncode != 0 and "did not make" in result.stderr
    assert (out / "stale.txt").read_text() == "someone's notes"
    (out / "stale.txt").unlink()
    (out / "permissive" / "data" / "train-00000-of-00009.parquet").unlink()
    # A file it made, altered since, is replaced with the rest.
    (out / "permissive" / "data" / "train-00000-of-00001.parquet").write_bytes(b"old shard")
    result = cli("hf", "--workdir", workdir, "--out", out)
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
    result = cli("nemo", "--workdir", workdir, "--out", out, "--tier", "all")
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
        export("hf", out, workdir=workdir)
    with pytest.raises(ExportError, match="no clip manifests"):
        export("hf", out, workdir=tmp_path / "nowhere")
    result = cli("hf", "--out", out)
    assert result.returncode == 2 and "--release DIR" in result.stderr


def test_never_replaces_a_directory_that_is_not_an_export(aligned, release, tmp_path):
    precious = tmp_path / "mine" / "thesis.tex"
    precious.parent.mkdir()
    precious.write_text("years of work")
    with pytest.raises(ExportError, match="speechcrawl export did not make"):
        export("nemo", precious.parent, workdir=aligned)
    assert precious.read_text() == "years of work"
    with pytest.raises(ExportError, match="is the workdir"):
        export("nemo", aligned, workdir=aligned)
    with pytest.raises(ExportError, match="inside the workdir's clips/"):
        export("nemo", aligned / "clips" / "nemo", workdir=aligned)
    assert not (aligned / "clips" / "nemo").exists()
    before = tree(release)
    with pytest.raises(ExportError, match="output of speechcrawl release"):
        export("nemo", release, release=release)
    with pytest.raises(ExportError, match="inside .*an output of speechcrawl release"):
        export("nemo", release / "data" / "x", release=release)
    assert tree(release) == before
    with pytest.raises(ExportError, match="nemo export of a workdir only"):
        export("hf", tmp_path / "x", workdir=aligned, against_recordings=True)
    with pytest.raises(ExportError, match="cannot export tier 'rejected'"):
        export("nemo", tmp_path / "x", workdir=aligned, tiers=["rejected"])
