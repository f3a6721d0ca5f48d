"""The workdir boundary: remote names (item ids, file names, clip ids) on disk.

Unit tests of ``manifests.paths`` with every hostile form we know, then an end-to-end crawl and
align of a served archive whose identifiers and file names are hostile, and the align stage fed
identifiers no archive directory can hold (``evil/victim``, ``../../../x``, absolute paths),
each asserting that nothing at all is written outside the workdir.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shutil
import unicodedata
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import align
from test_crawl import run_crawl

from crawler.pipelines import DownloadPipeline
from crawler.sample_archive.server import serving
from manifests.catalog import Catalog
from manifests.paths import (
    MAX_COMPONENT_BYTES,
    UnsafePath,
    existing_workdir,
    remote_path,
    safe_name,
)

HOSTILE = ["../../../x", "/etc/passwd", "..", ".", "a/../../b", "evil/victim", "victim/",
           "..\\..\\win.txt", "C:\\x", "C:x", "\\\\server\\share\\f.mp3", "a\x00b.mp3",
           "tab\there", "new\nline.srt", "\x7f", "", " ", " lead", "trail ", "trail.",
           ".hidden", ".talk.mp3.part", "~", "a~0123456789", "CON", "con", "nul.txt",
           "com1.mp3", "Victim", "VICTIM", "\u202eevil.mp3", "\uff0e\uff0e\uff0fx",
           "caf\u00e9", "cafe\u0301", "\ud800.mp3", "x" * 300, "é" * 200 + ".mp3",
           "日本語の音声" * 20 + ".srt", "🎙" * 100]


def tree(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every entry under ``root`` (except ``skip``'s subtree): size and mtime, by path."""
    out = {}
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or p.is_relative_to(skip)):
            continue
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


# -- the function --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["talk.mp3", "lecture-the-election-0000", "archive_org",
                                  "session 1 - opening remarks.mp3", "a_b.srt", "x.y.z",
                                  "0a1b2c3d4e5f-00001.flac", "9" * MAX_COMPONENT_BYTES])
def test_ordinary_names_map_to_themselves(name):
    assert safe_name(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_one_safe_component_inside_the_root(name, tmp_path):
    root = tmp_path / "root"
    got = safe_name(name)
    assert got not in ("", ".", "..") and "/" not in got and "\\" not in got
    assert not any(ord(c) < 32 or ord(c) == 127 for c in got) and ":" not in got
    assert not got.startswith((".", " ")) and not got.endswith((".", " "))
    assert len(got.encode("utf-8")) <= MAX_COMPONENT_BYTES
    assert got == safe_name(name)  # deterministic
    path = remote_path(root, "archive_org", name, name)
    assert path.parent.parent == root / "archive_org"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")  # the file system takes it, temporaries beside it included
    path.with_name(f".{path.name}.part").write_bytes(b"x")
    assert path.resolve().is_relative_to(root.resolve())
    assert {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")} == {"root"}


def test_a_changed_name_keeps_its_extension_and_a_readable_prefix():
    assert safe_name("What?.mp3").startswith("What_~") and safe_name("What?.mp3").endswith(".mp3")
    assert safe_name("evil/victim").startswith("evil_victim~")
    assert safe_name("x" * 300 + ".mp3").endswith(".mp3")
    long = safe_name("é" * 200 + ".mp3")
    assert long.startswith("é" * 10) and long.encode("utf-8").decode("utf-8") == long


def test_the_mapping_is_the_same_in_every_run():
    """Resume depends on it: a fixed hash of the original name, not Python's hash()."""
    tag = base64.b32encode(hashlib.sha256(b"Victim").digest()[:16]).decode().rstrip("=").lower()
    assert safe_name("Victim") == f"Victim~{tag}" == "Victim~24wo4lvrhmzgfqkvy6izru525y"


def test_distinct_names_never_share_a_path_even_on_case_insensitive_disks():
    names = HOSTILE + ["victim", "evil_victim", "Evil/Victim", "a?b.mp3", "a_b.mp3",
                       "a*b.mp3", "a/b.mp3", "a\\b.mp3", "A?B.mp3", "x" * 301,
                       "x" * 300 + "y", safe_name("Victim"), safe_name("evil/victim"),
                       "talk.mp3", "Talk.mp3", "TALK.MP3", "talk.MP3", "_", "__"]
    names = list(dict.fromkeys(names))
    mapped = [safe_name(n) for n in names]
    assert len(set(mapped)) == len(names)
    # macOS folds case and normalises to NFD; Windows folds case
    folded = {unicodedata.normalize("NFD", m).casefold() for m in mapped}
    assert len(folded) == len(names)


def test_an_item_id_with_a_slash_gets_its_own_directory(tmp_path):
    victim = remote_path(tmp_path, "archive_org", "victim", "talk.mp3")
    evil = remote_path(tmp_path, "archive_org", "evil/victim", "talk.mp3")
    assert victim.parent != evil.parent and victim.parent.parent == evil.parent.parent


def test_a_symlink_under_the_root_that_points_out_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "archive_org").mkdir(parents=True)
    outside.mkdir()
    (root / "archive_org" / "victim").symlink_to(outside)
    (root / "archive_org" / "dangling").symlink_to(tmp_path / "nowhere" / "x")
    (root / "archive_org" / "inner").symlink_to(root / "archive_org" / "victim2")
    with pytest.raises(UnsafePath, match="outside"):
        remote_path(root, "archive_org", "victim", "talk.mp3")
    with pytest.raises(UnsafePath, match="outside"):
        remote_path(root, "archive_org", "dangling", "talk.mp3")
    assert remote_path(root, "archive_org", "inner", "t.mp3").parent.name == "inner"
    assert not any(outside.iterdir())


def test_names_that_are_not_text_or_paths_too_long_are_refused(tmp_path):
    for bad in (None, 7, b"talk.mp3", ["a"]):
        with pytest.raises(UnsafePath, match="text"):
            safe_name(bad)
    with pytest.raises(UnsafePath, match="longer"):
        remote_path(tmp_path, *["d" * MAX_COMPONENT_BYTES] * 20)


def test_a_workdir_must_exist_and_hold_a_catalog(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        existing_workdir(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no catalog.sqlite"):
        existing_workdir(tmp_path / "empty")
    assert not any((tmp_path / "empty").iterdir())


# -- end to end ----------------------------------------------------------------------------------

# Identifiers the sample server can serve (one item per directory, the identifier raw in its
# redirects), each given to a real item with real audio; file names changed too.
RENAMES = {"-0001": ("Victim", {"broadcast.mp3": "..\\..\\Broadcast.mp3",
                                "broadcast.srt": "..\\..\\Broadcast.srt"}),
           "-0004": ("victim", {}),
           "-0005": ("...", {"gespraech.mp3": "C:\\gespraech.mp3",
                                            "gespraech.srt": "C:\\gespraech.srt"})}


@pytest.fixture(scope="module")
def hostile(archive, tmp_path_factory):
    """A served archive of hostile names, crawled and aligned with the CLI; the tree around
    the workdir is recorded before and compared after."""
    top = tmp_path_factory.mktemp("hostile")
    root = top / "archive"
    for suffix, (identifier, files) in RENAMES.items():
        src = next((archive / "items").glob(f"*{suffix}"))
        dst = root / "items" / identifier
        shutil.copytree(src, dst)
        meta = json.loads((dst / "_meta.json").read_text())
        meta["metadata"]["identifier"] = identifier
        for f in meta["files"]:
            if f["name"] in files:
                (dst / f["name"]).rename(dst / files[f["name"]])
                f["name"] = files[f["name"]]
        (dst / "_meta.json").write_text(json.dumps(meta))
    workdir = top / "parent" / "work"
    workdir.mkdir(parents=True)  # made before, so its parent's mtime is part of the record
    before = tree(top)
    with serving(root) as url:
        run_crawl(workdir, url)
    align(workdir)
    return top, workdir, before


def test_hostile_names_are_crawled_and_aligned_inside_the_workdir(hostile):
    top, workdir, before = hostile
    assert tree(top, skip=workdir) == {k: v for k, v in before.items()
                                       if not k.startswith("parent/work")}
    catalog = Catalog(workdir / "catalog.sqlite")
    files = [r for r in catalog.file_records() if r["local_path"]]
    assert {r["item_id"] for r in files} == {"Victim", "victim", "..."}
    for r in files:
        path = workdir / r["local_path"]
        assert path.is_file() and path.resolve().is_relative_to((workdir / "raw").resolve())
    item_dirs = {r["item_id"]: Path(r["local_path"]).parent for r in files
                 if r["status"] == "downloaded"}  # a duplicate points at the kept copy
    assert len({str(d).casefold() for d in item_dirs.values()}) == 3  # Victim ≠ victim
    assert all(d.parent == Path("raw/archive_org") for d in item_dirs.values())
    clips = [r for p in (workdir / "manifests" / "clips").glob("*.parquet")
             for r in pq.read_table(p).to_pylist()]
    kept = [r for r in clips if r["clip_path"]]
    assert {r["item_id"] for r in kept} >= {"Victim"}
    for r in kept:
        path = workdir / r["clip_path"]
        assert path.is_file()
        assert path.parent.parent == workdir / "clips" / "archive_org"
        assert path.resolve().is_relative_to((workdir / "clips").resolve())


ESCAPE = "../" * 10 + "tmp/speechcrawl-escape"  # from clips/archive_org/<id>: /tmp
IDS_NOT_SERVED = ["../../../x", "a/../../b", "evil/victim", "..", ".", "/", "victim/",
                  "..\\..\\..\\escape", "C:\\x", ESCAPE]
ALIGNED = ["../../../x", "evil/victim", "..", ESCAPE]


def test_align_of_ids_with_slashes_writes_nothing_outside_the_workdir(hostile, tmp_path):
    """The align stage and the download pipeline given identifiers the sample server cannot
    serve (no directory holds a ``/``): the real function, the real model, a real recording
    from the crawl, the identifier swapped."""
    from align.models import load_model
    from align.recording import align_recording
    from speechcrawl.align_stage import _job, filter_config

    top, crawled, _ = hostile
    workdir = tmp_path / "parent" / "work"
    shutil.copytree(crawled, workdir)
    absolute = str(tmp_path / "parent" / "abs-target")
    before = tree(tmp_path, skip=workdir)
    model = load_model("demo")
    config = filter_config(model.info)
    row = next(r for r in Catalog(workdir / "catalog.sqlite").alignable()
               if r["item_id"] == "Victim")
    job = _job(row, workdir)
    pipeline = DownloadPipeline.__new__(DownloadPipeline)
    pipeline.raw = workdir / "raw"
    dirs = set()
    for identifier in IDS_NOT_SERVED + [absolute]:
        dest = pipeline._dest(_source_item(identifier), "../../../../talk.mp3")
        assert dest.resolve().is_relative_to((workdir / "raw").resolve())
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"x")
        dirs.add(dest.parent)
    assert len(dirs) == len(IDS_NOT_SERVED) + 1  # one directory per identifier
    dirs = set()
    for identifier in ALIGNED + [absolute]:  # 8 s each: the worst forms
        rows = align_recording(dataclasses.replace(job, item_id=identifier), model, config,
                               workdir / "clips", workdir)
        kept = [r["clip_path"] for r in rows if r["clip_path"]]
        assert kept, identifier
        for clip in kept:
            path = (workdir / clip).resolve()
            assert path.is_file() and path.is_relative_to((workdir / "clips").resolve())
        dirs.add(Path(kept[0]).parent)
    assert len(dirs) == len(ALIGNED) + 1
    assert tree(tmp_path, skip=workdir) == before
    assert not Path("/tmp/speechcrawl-escape").exists()


def _source_item(identifier: str):
    from crawler.items import SourceItem

    fields = {f.name: None for f in dataclasses.fields(SourceItem)}
    return SourceItem(**{**fields, "source": "archive_org", "item_id": identifier})


def test_names_whose_short_hashes_collide_still_get_distinct_paths():
    """These two sanitise alike and share the first 40 bits of their sha256 (found by a
    birthday search in about a million tries): the tag must be long enough to keep them apart."""
    a, b = "v%$$'(!.mp3", "v)@%$+%.mp3"
    assert hashlib.sha256(a.encode()).digest()[:5] == hashlib.sha256(b.encode()).digest()[:5]
    assert safe_name(a) != safe_name(b)
