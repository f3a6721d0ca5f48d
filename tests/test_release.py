"""Releases from the aligned sample archive: per-config loading with HF datasets, licenses,
exclusions, dedup, frozen splits, byte-for-byte reproducibility, crash safety, and a second
crawl whose added and removed items the diff must list exactly."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml
from helpers import align
from test_crawl import run_crawl

from crawler.sample_archive.build import build
from crawler.sample_archive.server import serving
from manifests.release import ReleaseConfig, SubsetSpec, build_release, plan_release
from manifests.release.build import DELAY_ENV
from manifests.release.splits import Assignment, assign, draw, group_of, item_order

SPEECHCRAWL = [sys.executable, "-m", "speechcrawl.cli"]
SEED = 1234


def clips(workdir: Path) -> list[dict]:
    return [r for p in sorted((workdir / "manifests" / "clips").glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()]


def items(workdir: Path) -> dict[str, dict]:
    return {r["item_id"]: r for r in pq.read_table(workdir / "manifests" / "items.parquet")
            .to_pylist()}


def rows(release: Path, config: str | None = None) -> list[dict]:
    """Every release row but its audio, with the config and split its file says."""
    out = []
    for shard in sorted((release / "data").glob(f"{config or '*'}/*.parquet")):
        t = pq.read_table(shard)
        for r in t.drop_columns(["audio"]).to_pylist():
            out.append({**r, "config": shard.parent.name, "split": shard.name.split("-")[0]})
    return out


def expected_members(workdir: Path, tiers: set[str], families: set[str],
                     asr: bool = False) -> set[str]:
    """A config's clips worked out from the manifests by hand (no duplicates in the fixture)."""
    its = items(workdir)
    return {c["clip_id"] for c in clips(workdir)
            if c["tier"] in tiers and c["clip_path"] and (asr or not c["asr_caption"])
            and its[c["item_id"]]["decision"] == "accepted"
            and its[c["item_id"]]["license_family"] in families
            and its[c["item_id"]]["gone_at"] is None}


def release_cli(*args, env=None, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(SPEECHCRAWL + ["release", *map(str, args)], capture_output=True,
                            text=True, timeout=600, env=env)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def microset_of(release: Path, clean: set[str]) -> set[str]:
    """The microset's clips, checked against the rule the card states: a strict, non-empty
    subset of ``clean`` made of whole items, within 10 % of clean's hours (or one item)."""
    micro = rows(release, "microset")
    ids = {r["id"] for r in micro}
    assert ids and ids < clean
    by_item: dict[str, set[str]] = {}
    for r in rows(release, "clean"):
        by_item.setdefault(r["item_id"], set()).add(r["id"])
    chosen = {r["item_id"] for r in micro}
    assert ids == set().union(*(by_item[i] for i in chosen))  # whole items, never clips
    clean_ms = sum(r["duration_ms"] for r in rows(release, "clean"))
    assert len(chosen) == 1 or sum(r["duration_ms"] for r in micro) <= 0.1 * clean_ms
    assert "salted SHA-256" in (release / "README.md").read_text()
    return ids


def card_header(release: Path) -> dict:
    text = (release / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def config_toml(aligned, tmp_path_factory) -> Path:
    """Shares and a salt that put the fixture's two usable items in different splits, so
    every config has more than one split to load."""
    its = items(aligned)
    usable = sorted({c["item_id"] for c in clips(aligned) if c["tier"] == "clean"})
    assert len(usable) >= 2
    for n in range(1000):
        cfg = ReleaseConfig(salt=f"test-{n}", splits={"train": 0.5, "validation": 0.25,
                                                      "test": 0.25})
        got = {draw(group_of(f"archive_org/{i}", its[i]["creator"], cfg), cfg) for i in usable}
        if len(got) >= 2:
            break
    path = tmp_path_factory.mktemp("cfg") / "release.toml"
    path.write_text(f'[release]\nsalt = "{cfg.salt}"\n\n[release.splits]\ntrain = 0.5\n'
                    "validation = 0.25\ntest = 0.25\n")
    return path


@pytest.fixture(scope="module")
def built(aligned, config_toml, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rel-a") / "v1"
    return build_release(aligned, "v1", config=ReleaseConfig.from_toml(config_toml), out=out,
                         workers=1)


# -- what goes in ------------------------------------------------------------------------------

def test_each_config_loads_alone_with_exactly_its_rows(built, aligned, tmp_path):
    import datasets

    meta = json.loads((built / "release.json").read_text())
    splits = json.loads((built / "splits.json").read_text())["items"]
    want = {"clean": expected_members(aligned, {"clean"}, {"public-domain", "by"}),
            "other": expected_members(aligned, {"other"}, {"public-domain", "by"})}
    want["microset"] = microset_of(built, want["clean"])  # checked on its own below
    by_id = {c["clip_id"]: c for c in clips(aligned)}
    header = card_header(built)
    assert header["task_categories"] == ["automatic-speech-recognition"]
    configs = {c["config_name"]: c for c in header["configs"]}
    assert set(configs) == {n for n, c in meta["configs"].items() if c["rows"]} == set(want)
    for name, c in configs.items():
        files = {d["split"]: str(built / d["path"]) for d in c["data_files"]}
        assert all(d["path"].startswith(f"data/{name}/") for d in c["data_files"])
        ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf"))
        got: set[str] = set()
        for split, d in ds.items():
            ids = list(d["id"])
            assert len(ids) == meta["configs"][name]["splits"][split]["rows"]
            for i in ids:  # every row in its item's split
                assert splits[f"archive_org/{by_id[i]['item_id']}"]["split"] == split
            got |= set(ids)
            row = d[0]
            samples = row["audio"].get_all_samples()
            assert samples.sample_rate == 16000
            assert abs(samples.data.shape[-1] - row["duration_ms"] * 16) <= 32
        assert got == want[name], name
        assert ds[next(iter(ds))].features["text_raw"].dtype == "string"
        # The fixture's salt spreads its items over splits (the microset may be one item).
        assert len(ds) >= 2 or name == "microset"
        # The release directory by config name: the card's header is what picks the files.
        named = datasets.load_dataset(str(built), name, cache_dir=str(tmp_path / "hf"))
        assert {k: sorted(v["id"]) for k, v in named.items()} == {
            k: sorted(v["id"]) for k, v in ds.items()}


def test_audio_is_the_clip_file_as_cut_and_rows_carry_provenance(built, aligned):
    by_id = {c["clip_id"]: c for c in clips(aligned)}
    for shard in sorted((built / "data").glob("*/*.parquet")):
        for r in pq.read_table(shard).to_pylist():
            c = by_id[r["id"]]
            assert r["audio"]["bytes"] == (aligned / c["clip_path"]).read_bytes()
            assert r["audio"]["path"] == f"{r['id']}.flac"
            assert r["text"] == c["text"] and r["item_id"] == c["item_id"]
            assert r["text_raw"] == c["text_raw"] and r["text_raw"]  # as written: "1967."
            assert r["duration_ms"] == round(c["duration_s"] * 1000)
            assert r["attribution"] == c["attribution"] and r["words"] == c["words"]
            info = sf.info(aligned / c["clip_path"])
            assert r["audio_hash"].startswith("md5:") and info.format == "FLAC"


def test_public_domain_keeps_its_own_label_and_the_audit_passes(built, aligned, tmp_path):
    its = items(aligned)
    seen = set()
    for r in rows(built):
        item = its[r["item_id"]]
        assert (r["license_spdx"], r["license_family"]) == (item["license_spdx"],
                                                            item["license_family"])
        seen.add(r["license_spdx"])
    assert "CC0-1.0" in seen  # the fixture's public-domain item
    assert "cc0-1.0" in card_header(built)["license"]
    attribution = (built / "ATTRIBUTION.csv").read_text()
    assert ",CC0-1.0," in attribution and "public domain" in (built / "ATTRIBUTION.md").read_text()
    result = subprocess.run(SPEECHCRAWL + ["audit", "--workdir", str(aligned), "--release",
                                           str(built), "--out", str(tmp_path / "audit")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert audit["gate"]["passed"]
    assert {s["name"] for s in audit["subsets"]} == {"clean", "other", "microset"}
    # Each clip once, however many configs hold it (the microset is a sample of clean).
    assert sum(i["clips_used"] for i in audit["items"]) == len({r["id"] for r in rows(built)})


def test_machine_captions_and_rejected_clips_stay_out(built, aligned):
    released = {r["id"] for r in rows(built)}
    all_clips = clips(aligned)
    asr = {c["clip_id"] for c in all_clips if c["asr_caption"]}
    rejected = {c["clip_id"] for c in all_clips if c["tier"] == "rejected"}
    assert asr and rejected and not released & (asr | rejected)
    excluded = json.loads((built / "release.json").read_text())["excluded"]
    assert excluded["rejected"] == len(rejected)
    assert excluded["asr_caption"] == len(asr - rejected)


def test_share_alike_only_in_sa_configs_and_only_by_choice(aligned, tmp_path):
    cfg = tmp_path / "sa.toml"
    cfg.write_text("[release]\ninclude_asr_captions = true\n")
    release_cli("--workdir", aligned, "--version", "sa", "--out", tmp_path / "sa", "--config",
                cfg)
    rel = tmp_path / "sa"
    got = rows(rel)
    sa = [r for r in got if r["license_family"] == "by-sa"]
    assert sa and all(r["config"].endswith("_sa") for r in sa)
    assert all(r["license_family"] == "by-sa" for r in got if r["config"].endswith("_sa"))
    assert {r["id"] for r in rows(rel, "other_sa")} == expected_members(
        aligned, {"other"}, {"by-sa"}, asr=True)
    result = subprocess.run(SPEECHCRAWL + ["audit", "--workdir", str(aligned), "--release",
                                           str(rel), "--out", str(tmp_path / "audit")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[release.subsets.everything]\ntiers = ["clean"]\n'
                   'families = ["by", "by-sa"]\n')
    result = release_cli("--workdir", aligned, "--version", "bad", "--out", tmp_path / "bad",
                         "--config", bad, check=False)
    assert result.returncode == 2 and "must end in _sa" in result.stderr
    assert not (tmp_path / "bad").exists()


def test_duplicates_are_resolved_deterministically_and_reported(aligned, tmp_path):
    workdir = Path(shutil.copytree(aligned, tmp_path / "w"))
    its = items(workdir)
    pd_items = sorted(i for i, r in its.items() if r["license_family"] == "public-domain"
                      and r["decision"] == "accepted")
    keeper, other = pd_items[0], pd_items[1]  # same family rank: the lower item id wins
    mine = [c for c in clips(workdir) if c["item_id"] == keeper and c["tier"] == "clean"
            and len(c["text"]) >= 20]
    a, b = mine[0], mine[1]
    copy_audio = {**a, "clip_id": "dup-audio-00000", "item_id": other}
    # Same text as b, different audio (the same passage read again in another item).
    samples, rate = sf.read(workdir / b["clip_path"])
    path = Path("clips") / "archive_org" / other / "dup-text-00000.flac"
    (workdir / path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(workdir / path, samples * 0.5, rate, format="FLAC", subtype="PCM_16")
    copy_text = {**b, "clip_id": "dup-text-00000", "item_id": other, "clip_path": str(path)}
    extra = []
    for c in (copy_audio, copy_text):
        extra.append({**c, "license_spdx": its[other]["license_spdx"],
                      "license_family": its[other]["license_family"]})
    schema = pq.read_schema(next((workdir / "manifests" / "clips").glob("*.parquet")))
    settings = {"clean_max_cer": 0.05, "language": "en"}  # as the align stage records them
    schema = schema.with_metadata({"speechcrawl.filters": json.dumps(settings)})
    pq.write_table(pa.Table.from_pylist(extra, schema=schema),
                   workdir / "manifests" / "clips" / "zz-duplicates.parquet")
    rel = build_release(workdir, "d1", out=tmp_path / "d1")
    dedup = json.loads((rel / "dedup.json").read_text())
    assert [(d["dropped"], d["kept"]) for d in dedup["duplicate_audio"]] == [
        ("dup-audio-00000", a["clip_id"])]
    assert [(d["dropped"], d["kept"]) for d in dedup["duplicate_text"]] == [
        ("dup-text-00000", b["clip_id"])]
    assert dedup["duplicate_downloads"]  # the sample archive's recording under two ids
    released = {r["id"] for r in rows(rel)}
    assert {a["clip_id"], b["clip_id"]} <= released
    assert not {"dup-audio-00000", "dup-text-00000"} & released
    meta = json.loads((rel / "release.json").read_text())
    assert meta["excluded"]["duplicate_audio"] == 1 == meta["excluded"]["duplicate_text"]
    assert {"settings": settings, "clips": 2} in meta["filter_config"]["recorded"]
    # The same manifests in another file order resolve the same way.
    (workdir / "manifests" / "clips" / "zz-duplicates.parquet").rename(
        workdir / "manifests" / "clips" / "00-duplicates.parquet")
    again = build_release(workdir, "d1", out=tmp_path / "d1b")
    assert (again / "dedup.json").read_bytes() == (rel / "dedup.json").read_bytes()


# -- splits ------------------------------------------------------------------------------------

def test_splits_are_frozen_when_the_salt_and_shares_change(built, aligned, tmp_path):
    cfg = ReleaseConfig(salt="another salt", splits={"train": 0.1, "validation": 0.1,
                                                     "test": 0.8})
    v2 = build_release(aligned, "v2", previous=built, config=cfg, out=tmp_path / "v2")
    before = json.loads((built / "splits.json").read_text())["items"]
    after = json.loads((v2 / "splits.json").read_text())["items"]
    assert before and all(after[k] == v for k, v in before.items())
    assert {r["id"]: r["split"] for r in rows(v2)} == {r["id"]: r["split"] for r in rows(built)}
    changes = json.loads((v2 / "changes.json").read_text())
    assert changes["previous"] == "v1"
    assert all(v == 0 for v in changes["summary"].values())  # same manifests, nothing changed
    assert "Items added (0)" in (v2 / "CHANGES.md").read_text()


def test_a_creator_keeps_its_split_and_new_items_join_it():
    cfg = ReleaseConfig()
    prev = {"archive_org/a": Assignment("test", "creator:jane doe")}
    got = assign([("archive_org/b", " Jane  DOE "), ("archive_org/c", "Unknown"),
                  ("archive_org/d", None)], cfg, prev)
    assert got["archive_org/b"] == Assignment("test", "creator:jane doe")
    assert got["archive_org/c"].group == "item:archive_org/c"  # nobody in particular
    assert got["archive_org/a"] == prev["archive_org/a"]
    with pytest.raises(ValueError, match="cannot be renamed"):
        assign([], cfg, {"archive_org/x": Assignment("dev", "item:archive_org/x")})


def test_plan_on_a_synthetic_manifest(tmp_path):
    """Public-domain labels, share-alike placement, the microset cap and shard sizes, on a
    manifest with every license family and many items."""
    lic = [("CC0-1.0", "public-domain"), ("CC-PDM-1.0", "public-domain"),
           ("LicenseRef-US-Government-Work", "public-domain"), ("CC-BY-4.0", "by"),
           ("CC-BY-SA-4.0", "by-sa")]
    item_rows, clip_rows = [], []
    for i in range(60):
        spdx, family = lic[i % len(lic)]
        item_rows.append({"source": "s", "item_id": f"i{i:03d}", "creator": f"c{i % 17}",
                          "license_spdx": spdx, "license_family": family,
                          "decision": "accepted", "gone_at": None})
        for k in range(10):
            clip_rows.append({
                "clip_id": f"i{i:03d}-{k}", "source": "s", "item_id": f"i{i:03d}",
                "audio_file": "a", "start_s": float(k), "duration_s": 1.5,
                "text": f"sentence {i} {k} of a synthetic item", "tier": ["clean", "other"][k % 2],
                "asr_caption": False, "clip_path": "x", "license_spdx": spdx,
                "audio_hash": f"md5:{i}-{k}", "audio_bytes": 40_000})
    cfg = ReleaseConfig(max_shard_bytes=100_000, subsets={
        **ReleaseConfig().subsets,
        "microset": SubsetSpec(("clean",), ("public-domain", "by"), max_clips=23)})
    plan = plan_release(pa.Table.from_pylist(clip_rows), pa.Table.from_pylist(item_rows), cfg)
    out = plan.rows.to_pylist()
    labels = {(r["item_id"], r["license_spdx"], r["license_family"]) for r in out}
    want = {(r["item_id"], r["license_spdx"], r["license_family"]) for r in item_rows}
    assert labels == want
    assert all(r["config"].endswith("_sa") == (r["license_family"] == "by-sa") for r in out)
    micro = [r for r in out if r["config"] == "microset"]
    clean = [r for r in out if r["config"] == "clean"]
    assert 0 < len(micro) <= 23  # whole items of 5 clean clips each: 20
    assert {r["item_id"] for r in micro} == {r["item_id"] for r in clean if r["clip_id"] in
                                             {m["clip_id"] for m in micro}}
    for item in {r["item_id"] for r in micro}:
        assert {r["clip_id"] for r in micro if r["item_id"] == item} == {
            r["clip_id"] for r in clean if r["item_id"] == item}
    for _, _, _, _, rows_ in plan.shards():  # ~100 kB each: two 40 kB rows, a third may spill
        assert 1 <= len(rows_) <= 3
    creator_split = {}
    for r in out:
        c = next(x["creator"] for x in item_rows if x["item_id"] == r["item_id"])
        assert creator_split.setdefault(c, r["split"]) == r["split"]


def _micro(plan) -> set[str]:
    return {r["clip_id"] for r in plan.rows.to_pylist() if r["config"] == "microset"}


def test_the_microset_is_a_fixed_sample_of_whole_items_on_the_small_archive(aligned):
    """Drawn by item hash: the same whatever order the manifests list the clips in, a strict
    non-empty part of clean, and an item's clips all in or all out."""
    from manifests.release.inputs import read_manifests

    clip_table, item_table, _, _ = read_manifests(aligned)
    plan = plan_release(clip_table, item_table)
    micro = _micro(plan)
    clean = {r["clip_id"] for r in plan.rows.to_pylist() if r["config"] == "clean"}
    assert micro and micro < clean
    backwards = clip_table.take(pa.array(np.arange(clip_table.num_rows)[::-1]))
    assert _micro(plan_release(backwards, item_table.take(
        pa.array(np.arange(item_table.num_rows)[::-1])))) == micro
    item_of = {r["clip_id"]: r["item_id"] for r in plan.rows.to_pylist()}
    chosen = {item_of[c] for c in micro}
    assert {c for c in clean if item_of[c] in chosen} == micro
    # Another salt draws another order; it is still a sample of whole items.
    other = _micro(plan_release(clip_table, item_table, ReleaseConfig(salt="another")))
    assert other and other < clean


def _synthetic(n_items: int, start: int = 0) -> tuple[list[dict], list[dict]]:
    item_rows, clip_rows = [], []
    for i in range(start, start + n_items):
        item_rows.append({"source": "s", "item_id": f"i{i:03d}", "creator": None,
                          "license_spdx": "CC-BY-4.0", "license_family": "by",
                          "decision": "accepted", "gone_at": None})
        for k in range(1 + i % 4):
            clip_rows.append({
                "clip_id": f"i{i:03d}-{k}", "source": "s", "item_id": f"i{i:03d}",
                "audio_file": "a", "start_s": float(k), "duration_s": 2.0 + i % 3,
                "text": f"sentence {i} {k} of a synthetic item", "tier": "clean",
                "asr_caption": False, "clip_path": "x", "license_spdx": "CC-BY-4.0",
                "audio_hash": f"md5:{i}-{k}", "audio_bytes": 1000})
    return item_rows, clip_rows


def test_the_microset_keeps_its_items_when_the_corpus_grows():
    """10 % of clean's hours, capped at 10 hours, by item hash: items added later change
    nothing ranked before them, and the cap in hours binds on a large corpus."""
    items_a, clips_a = _synthetic(200)
    plan = plan_release(pa.Table.from_pylist(clips_a), pa.Table.from_pylist(items_a))
    before = _micro(plan)
    rows_ = plan.rows.to_pylist()
    ms = {r["clip_id"]: r["duration_ms"] for r in rows_}
    clean_ms = sum(ms[r["clip_id"]] for r in rows_ if r["config"] == "clean")
    assert 0 < sum(ms[c] for c in before) <= 0.1 * clean_ms
    items_b, clips_b = _synthetic(40, start=200)
    grown = _micro(plan_release(pa.Table.from_pylist(clips_a + clips_b),
                                pa.Table.from_pylist(items_a + items_b)))
    rank = dict(zip([f"s/i{i:03d}" for i in range(240)],
                    item_order([f"s/i{i:03d}" for i in range(240)],
                                      ReleaseConfig().salt).tolist(), strict=True))
    first_new = min(rank[f"s/i{i:03d}"] for i in range(200, 240))
    kept = {c for c in before if rank["s/" + c.split("-")[0]] < first_new}
    assert kept and kept <= grown
    # Hours cap: 0.01 h allows a handful of clips, whatever the fraction says.
    tiny = ReleaseConfig(subsets={**ReleaseConfig().subsets, "microset": SubsetSpec(
        ("clean",), ("public-domain", "by"), max_hours=0.01, fraction=0.5)})
    small = _micro(plan_release(pa.Table.from_pylist(clips_a), pa.Table.from_pylist(items_a),
                                tiny))
    assert small and sum(ms[c] for c in small) <= 36_000
    # One item alone over every fraction: the sample is that item, not nothing.
    one = _micro(plan_release(pa.Table.from_pylist(clips_a[:1]),
                              pa.Table.from_pylist(items_a[:1])))
    assert one == {clips_a[0]["clip_id"]}


def test_card_licenses_are_hub_identifiers(built):
    """The Hub knows a fixed list of ids; everything else is ``other`` with a name and link."""
    from manifests.release.card import HUB_LICENSES, license_fields

    assert {"cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-3.0", "pddl", "other"} <= HUB_LICENSES
    assert not {"cc-by-sa-2.5", "cc-pdm-1.0", "cc-by-1.0", "cc-by-sa-2.0"} & HUB_LICENSES

    def check(header: dict) -> None:
        lic = header["license"]
        assert isinstance(lic, list) and lic and all(x in HUB_LICENSES for x in lic)
        if "other" in lic:
            assert header["license_name"] and re.fullmatch(r"[a-z0-9.-]+",
                                                            header["license_name"])
            assert header["license_link"]
        else:
            assert "license_name" not in header and "license_link" not in header

    check(card_header(built))
    es = "LicenseRef-CC-BY-SA-2.5-ES"
    url = "https://creativecommons.org/licenses/by-sa/2.5/es/"
    got = license_fields(["CC0-1.0", "CC-BY-4.0", es, "CC0-1.0"],
                         [{"license": es, "license_url": url}])
    assert got == {"license": ["cc-by-4.0", "cc0-1.0", "other"],
                   "license_name": "cc-by-sa-2.5-es", "license_link": url}
    several = license_fields(["CC-PDM-1.0", "LicenseRef-US-Government-Work", "CC-BY-3.0-US",
                              "CC-BY-SA-2.0", "CC-BY-1.0", "CC-BY-SA-3.0"], [])
    assert several["license"] == ["cc-by-sa-3.0", "other"]
    assert several["license_link"] == "ATTRIBUTION.md"
    assert all(x in several["license_name"] for x in ("cc-pdm-1.0", "us-government-work",
                                                      "cc-by-3.0-us"))
    many = license_fields([f"LicenseRef-CC-BY-3.0-{p}" for p in ("AM", "AZ", "CR", "EC", "GT",
                                                                 "HK", "IE", "LU", "NO")], [])
    assert many["license_name"] == "9-licenses-see-attribution"
    for fields_ in (got, several, many):  # what the card writes parses back the same
        header = yaml.safe_load("\n".join(
            ["license:", *[f"- {x}" for x in fields_["license"]],
             *[f"{k}: {json.dumps(fields_[k])}" for k in ("license_name", "license_link")]]))
        check(header)


def test_release_config_from_toml(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text("[release]\nsalt = \"s\"\n[release.subsets.clean]\ntiers = [\"clean\"]\n"
                 "families = [\"public-domain\"]\n")
    cfg = ReleaseConfig.from_toml(p)
    assert list(cfg.subsets) == ["clean"] and cfg.salt == "s"
    assert ReleaseConfig().include_asr_captions is False
    for text, why in [("[release]\nsalt_ = 1\n", "unknown release settings"),
                      ("[other]\n", "unknown tables"),
                      ('[release.subsets.x]\ntiers = ["rejected"]\nfamilies = ["by"]\n',
                       "no audio"),
                      ('[release.subsets.x]\ntiers = ["clean"]\nfamilies = ["nc"]\n',
                       "families must be among"),
                      ('[release.subsets.x]\ntiers = ["clean"]\nfamilies = ["by"]\n'
                       'fraction = 1.5\n', "fraction must be positive and at most 1"),
                      ('[release.subsets.x]\ntiers = ["clean"]\nfamilies = ["by"]\n'
                       'fraction = "10 %"\n', "fraction must be a number"),
                      ('[release.subsets.x]\ntiers = ["clean"]\nfamilies = ["by"]\n'
                       'max_hours = -1\n', "max_hours must be positive"),
                      ('[release.subsets.x]\ntiers = ["clean"]\nfamilies = ["by"]\n'
                       'max_hours = nan\n', "max_hours must be positive"),
                      ('[release.subsets.x]\ntiers = ["clean"]\nfamilies = ["by"]\n'
                       'max_clips = 2.5\n', "max_clips must be a whole number"),
                      ('[release.subsets.x]\ntiers = ["clean"]\nfamilies = ["by"]\n'
                       'max_clips = true\n', "max_clips must be a whole number")]:
        p.write_text(text)
        with pytest.raises(ValueError, match=why):
            ReleaseConfig.from_toml(p)


# -- bytes -------------------------------------------------------------------------------------

def test_same_inputs_same_bytes_across_directories_and_worker_counts(built, aligned,
                                                                     config_toml, tmp_path):
    out = tmp_path / "elsewhere" / "v1"
    result = release_cli("--workdir", aligned, "--version", "v1", "--out", out, "--config",
                         config_toml, "--workers", "3")
    assert "clean" in result.stdout
    assert (out / "SHA256SUMS").read_bytes() == (built / "SHA256SUMS").read_bytes()
    files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for f in files:
        data = (out / f).read_bytes()
        assert data == (built / f).read_bytes(), f
        for leak in (str(aligned), str(out), str(built), str(tmp_path)):
            assert leak.encode() not in data, (f, leak)
    listed = [line.split("  ", 1)[1] for line in (built / "SHA256SUMS").read_text().splitlines()]
    assert listed == sorted(str(f) for f in files if f.name != "SHA256SUMS")
    check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=built,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_rebuild_is_a_no_op_and_different_content_needs_force(built, aligned, config_toml,
                                                               tmp_path):
    rel = Path(shutil.copytree(built, tmp_path / "v1"))
    stamp = (rel / "SHA256SUMS").stat().st_mtime_ns
    cfg = ReleaseConfig.from_toml(config_toml)
    assert build_release(aligned, "v1", config=cfg, out=rel) == rel
    assert (rel / "SHA256SUMS").stat().st_mtime_ns == stamp
    other = ReleaseConfig(salt=cfg.salt, splits=cfg.splits, max_shard_bytes=200_000)
    with pytest.raises(FileExistsError, match="--force"):
        build_release(aligned, "v1", config=other, out=rel)
    assert (rel / "SHA256SUMS").stat().st_mtime_ns == stamp
    build_release(aligned, "v1", config=other, out=rel, force=True)
    assert (rel / "SHA256SUMS").read_bytes() != (built / "SHA256SUMS").read_bytes()
    assert len(list((rel / "data" / "other").glob("*.parquet"))) > 1  # smaller shards
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1"]


def test_a_killed_build_leaves_no_release_and_a_rerun_succeeds(built, aligned, config_toml,
                                                               tmp_path):
    out = tmp_path / "releases" / "v1"
    argv = SPEECHCRAWL + ["release", "--workdir", str(aligned), "--version", "v1", "--out",
                          str(out), "--config", str(config_toml), "--workers", "1"]
    proc = subprocess.Popen(argv, env={**os.environ, DELAY_ENV: "60"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if list(out.parent.glob(".v1.tmp-*/data/*/*.parquet")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the build ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()
    assert list(out.parent.glob(".v1.tmp-*"))  # what the kill left
    release_cli("--workdir", aligned, "--version", "v1", "--out", out, "--config", config_toml)
    assert [p.name for p in out.parent.iterdir()] == ["v1"]
    assert (out / "SHA256SUMS").read_bytes() == (built / "SHA256SUMS").read_bytes()


# -- the acceptance run ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(1800)  # two crawls and aligns of a 12-item archive: minutes on 2 cores
def test_a_second_crawl_with_items_added_and_removed(tmp_path):
    """Release v1 of a crawled archive; at the source two items appear and one goes; crawl
    and align again, release v2 against v1: the diff lists exactly that, no split moves."""
    root = build(tmp_path / "archive", items=12, seed=SEED)
    defects = json.loads((root / "defects.json").read_text())
    later = ["lecture-the-election-0006", "library-podcast-episode-73-0011"]
    assert all(defects["licenses"][i]["decision"] == "accepted" for i in later)
    held = tmp_path / "held"
    held.mkdir()
    for d in sorted((root / "items").iterdir()):
        if int(d.name.rsplit("-", 1)[1]) >= 6:  # v1 sees the first six items only
            d.rename(held / d.name)
    workdir = tmp_path / "w"
    gone = "lecture-the-election-0000"
    with serving(root) as url:  # one server: the same URLs (and attributions) both times
        run_crawl(workdir, url)
        align(workdir)
        release_cli("--workdir", workdir, "--version", "v1")
        v1 = workdir / "releases" / "v1"
        for i in later:
            (held / i).rename(root / "items" / i)
        shutil.rmtree(root / "items" / gone)
        run_crawl(workdir, url)
        align(workdir)
        release_cli("--workdir", workdir, "--version", "v2", "--previous", v1)
    v2 = workdir / "releases" / "v2"
    changes = json.loads((v2 / "changes.json").read_text())
    assert [e["item"] for e in changes["items"]["added"]] == [f"archive_org/{i}" for i in later]
    assert [e["item"] for e in changes["items"]["removed"]] == [f"archive_org/{gone}"]
    assert "gone from the source" in changes["items"]["removed"][0]["why"]
    assert changes["items"]["changed"] == [] and changes["clips"]["changed"] == []
    old, new = rows(v1), rows(v2)
    assert {(c["id"], c["item"]) for c in changes["clips"]["added"]} == {
        (r["id"], f"archive_org/{r['item_id']}") for r in new} - {
        (r["id"], f"archive_org/{r['item_id']}") for r in old}
    assert {c["id"] for c in changes["clips"]["removed"]} == {r["id"] for r in old
                                                               if r["item_id"] == gone}
    assert {r["item_id"] for r in new} - {r["item_id"] for r in old} == set(later)
    split_then = {r["id"]: r["split"] for r in old}
    assert all(split_then[r["id"]] == r["split"] for r in new if r["id"] in split_then)
    s1 = json.loads((v1 / "splits.json").read_text())["items"]
    s2 = json.loads((v2 / "splits.json").read_text())["items"]
    assert all(s2[k] == v for k, v in s1.items())  # the gone item's split is kept too
    text = (v2 / "CHANGES.md").read_text()
    assert all(i in text for i in [*later, gone])
    pdm = [r for r in new if r["item_id"] == later[0]]
    assert pdm and {r["license_spdx"] for r in pdm} == {"CC-PDM-1.0"}
    hours = changes["hours"]["clean"]
    assert hours["delta"] == pytest.approx(hours["current"] - hours["previous"], abs=1e-3)
    result = subprocess.run(SPEECHCRAWL + ["audit", "--workdir", str(workdir), "--release",
                                           str(v2)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert np.isclose(json.loads((v2 / "release.json").read_text())["totals"]["hours"],
                      sum(r["duration_ms"] for r in {r["id"]: r for r in new}.values())
                      / 3.6e6, atol=1e-3)


# -- the license gate's word is checked again: SPDX ids, and the audit's gate ------------------

def _victim(workdir: Path) -> str:
    """An accepted CC BY item whose clean clips a default release takes."""
    its = items(workdir)
    return next(c["item_id"] for c in clips(workdir)
                if c["tier"] == "clean" and c["clip_path"] and not c["asr_caption"]
                and its[c["item_id"]]["decision"] == "accepted"
                and its[c["item_id"]]["license_family"] == "by")


def _relabel(workdir: Path, item_id: str, spdx: str, *, manifests: bool, catalog: bool) -> None:
    """Make ``item_id`` read as an older (or tampered) gate would have written it: accepted,
    family ``by``, SPDX id ``spdx`` — in the manifests (items and clips), the catalog, or both."""
    import sqlite3

    import pyarrow.compute as pc

    def relabel(path: Path) -> None:
        t = pq.read_table(path)
        mine = pc.equal(t["item_id"].cast(pa.string()), item_id)
        for name, value in (("license_spdx", spdx), ("license_family", "by")):
            if name in t.column_names:
                col = t[name].cast(pa.string())
                t = t.set_column(t.column_names.index(name), name,
                                 pc.if_else(mine, pa.scalar(value), col))
        pq.write_table(t, path)

    if manifests:
        relabel(workdir / "manifests" / "items.parquet")
        for p in sorted((workdir / "manifests" / "clips").glob("*.parquet")):
            relabel(p)
    if catalog:
        conn = sqlite3.connect(workdir / "catalog.sqlite")
        with conn:
            conn.execute("UPDATE items SET license_spdx = ?, license_family = 'by', "
                         "decision = 'accepted', reason = NULL WHERE item_id = ?",
                         (spdx, item_id))
        conn.close()


@pytest.fixture
def own_aligned(aligned, tmp_path) -> Path:
    return Path(shutil.copytree(aligned, tmp_path / "w"))


@pytest.mark.parametrize("spdx", ["LicenseRef-CC-BY-4.0-NC", "CC-BY-NC-4.0", "CC-BY-ND-3.0",
                                  "LicenseRef-CC-BY-3.0-ND", "CC-BY-4.0-US", "cc-by-4.0",
                                  "LicenseRef-Unknown"])
def test_a_by_family_column_does_not_release_an_nc_or_unknown_spdx_id(own_aligned, tmp_path,
                                                                       spdx):
    victim = _victim(own_aligned)
    _relabel(own_aligned, victim, spdx, manifests=True, catalog=True)
    rel = build_release(own_aligned, "t1", out=tmp_path / "t1", workers=1)
    released = rows(rel)
    assert released and victim not in {r["item_id"] for r in released}
    assert all(r["license_spdx"] != spdx for r in released)
    meta = json.loads((rel / "release.json").read_text())
    assert meta["excluded"]["license_not_permitted"] == sum(
        1 for c in clips(own_aligned) if c["item_id"] == victim)
    result = subprocess.run(SPEECHCRAWL + ["audit", "--workdir", str(own_aligned), "--release",
                                           str(rel), "--out", str(tmp_path / "audit")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    warned = [f for f in audit["findings"] if f["kind"] == "license_not_permitted"]
    assert [(f["severity"], f["item_id"]) for f in warned] == [("warning", victim)]


def test_the_audit_gate_runs_inside_release_and_nothing_final_is_built(own_aligned, tmp_path):
    """The manifests say CC BY, the catalog (what the audit reads) says non-commercial: the
    plan alone would release it; the audit's gate inside ``release`` stops it."""
    victim = _victim(own_aligned)
    _relabel(own_aligned, victim, "CC-BY-NC-4.0", manifests=False, catalog=True)
    out = tmp_path / "rel" / "t2"
    with pytest.raises(ValueError, match="license audit's gate fails") as err:
        build_release(own_aligned, "t2", out=out, workers=1)
    assert "not_permitted_in_release" in str(err.value) and victim in str(err.value)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary left either
    result = release_cli("--workdir", own_aligned, "--version", "t3", check=False)
    assert result.returncode != 0
    assert "license audit's gate fails" in result.stderr.strip().splitlines()[-1]
    assert not (own_aligned / "releases" / "t3").exists()
