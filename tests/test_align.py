"""The align stage on the crawled sample archive: tiers on the planted defects, clip files and
manifests, failure paths, resumption after a kill, and worker-count independence."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import soundfile as sf
from helpers import ALIGN, align
from test_crawl import db, run_crawl
from test_server import write_item

from crawler.sample_archive.server import serving
from manifests.schema import CLIPS

ROOT = Path(__file__).resolve().parents[1]


def clips(workdir: Path) -> list[dict]:
    return [r for p in sorted((workdir / "manifests" / "clips").glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()]


def test_tiers_on_the_planted_defects(aligned, defects, archive):
    rows = clips(aligned)
    by_file = {}
    for r in rows:
        by_file.setdefault((r["item_id"], r["audio_file"]), []).append(r)
    kinds = {d["kind"]: d for d in defects["defects"]}
    mismatch = kinds["mismatched_transcript"]
    audio = mismatch["file"].rsplit(".", 1)[0] + ".mp3"
    assert by_file[(mismatch["item_id"], audio)]
    assert not [r for r in by_file[(mismatch["item_id"], audio)] if r["tier"] == "clean"]
    foreign = kinds["other_language"]
    german = by_file[(foreign["item_id"], foreign["file"].rsplit(".", 1)[0] + ".mp3")]
    assert german and all(r["tier"] == "rejected" for r in german)
    assert all(any(x.startswith("language") for x in r["reasons"]) for r in german)
    asr = kinds["asr_caption"]
    machine = [r for r in rows if r["transcript_file"] == asr["file"]]
    assert machine and all(r["asr_caption"] and r["tier"] != "clean" for r in machine)
    intro = kinds["intro_outro"]
    truth = json.loads((archive / "truth" / intro["item_id"] / f"{intro['file']}.json")
                       .read_text())
    kept = [r for r in by_file[(intro["item_id"], intro["file"])] if r["tier"] != "rejected"]
    assert kept
    for a, b in truth["unspoken"]:
        assert not [r for r in kept if r["start_s"] < b and r["end_s"] > a]
    clean = [r for r in rows if r["tier"] == "clean"]
    assert len(clean) >= 0.6 * len([r for r in rows if not r["asr_caption"]]) - len(german) \
        - len(by_file[(mismatch["item_id"], audio)])


def test_failed_recordings_have_reasons_and_the_batch_goes_on(aligned, defects):
    truncated = next(d for d in defects["defects"] if d["kind"] == "truncated_audio")
    with db(aligned) as conn:
        rows = {r["audio"]: r for r in conn.execute("SELECT * FROM alignments")}
    failed = rows[truncated["file"]]
    assert failed["status"] == "failed" and "truncated audio" in failed["reason"]
    assert sum(1 for r in rows.values() if r["status"] == "done") >= 6


def test_clip_files_and_manifest(aligned):
    rows = clips(aligned)
    table = pq.read_table(next((aligned / "manifests" / "clips").glob("*.parquet")))
    assert table.schema.remove_metadata() == CLIPS.remove_metadata()
    assert len({r["clip_id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["start_s"] < r["end_s"] and r["speech_start_s"] < r["speech_end_s"]
        if not any(x.startswith("no pause") for x in r["reasons"]):  # a clause cut shares it
            assert r["start_s"] <= r["speech_start_s"] + 1e-3
            assert r["speech_end_s"] <= r["end_s"] + 1e-3
        if r["tier"] == "rejected":
            assert r["clip_path"] is None and r["reasons"]
            continue
        info = sf.info(aligned / r["clip_path"])
        assert info.samplerate == 16000 and info.channels == 1 and info.format == "FLAC"
        assert abs(info.frames - (r["end_s"] - r["start_s"]) * 16000) <= 16
        assert r["words"] and r["words"][0]["start_s"] >= r["start_s"]
        assert r["words"][-1]["end_s"] <= r["end_s"]
        assert " ".join(w["word"] for w in r["words"]) == r["text"]
        assert r["license_spdx"] and r["attribution"] and r["model_id"].startswith("demo@")


def test_a_second_run_does_nothing(aligned, tmp_path):
    workdir = Path(shutil.copytree(aligned, tmp_path / "w"))
    before = {p.name: p.stat().st_mtime_ns for p in (workdir / "manifests" / "clips").iterdir()}
    result = align(workdir)
    assert "nothing to do" in result.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (workdir / "manifests" / "clips").iterdir()}
    assert before == after


def test_kill_then_resume_and_worker_count_does_not_change_the_result(aligned, tmp_path,
                                                                      base_url):
    workdir = tmp_path / "w"
    run_crawl(workdir, base_url)
    proc = subprocess.Popen(ALIGN + ["--workdir", str(workdir), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    manifests = workdir / "manifests" / "clips"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if manifests.exists() and len(list(manifests.glob("*.parquet"))) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    align(workdir, "--workers", "2")
    assert not list(manifests.glob(".*"))  # no half-written manifest
    mine = {r["clip_id"]: r for r in clips(workdir)}
    reference = {r["clip_id"]: r for r in clips(aligned)}
    assert mine.keys() == reference.keys()
    assert all(mine[k]["text"] == reference[k]["text"] for k in mine)
    # Float sums differ with thread counts, so a clip on a threshold may flip; few may.
    same_tier = sum(mine[k]["tier"] == reference[k]["tier"] for k in mine)
    assert same_tier >= 0.95 * len(mine)


def test_failure_paths(tmp_path):
    """Corrupt audio, an empty transcript and a text longer than its audio: each recorded."""
    root = tmp_path / "archive"
    lic = "https://creativecommons.org/licenses/by/4.0/"
    tone = subprocess.run(["espeak-ng", "--stdout", "hello"], capture_output=True,
                          check=True).stdout
    long_text = ("This sentence is far too long for the audio it belongs to. " * 40).encode()
    write_item(root, "corrupt", {"a.mp3": b"ID3" + os.urandom(5000), "a.txt": b"Hello there."},
               licenseurl=lic, title="t", creator="c")
    write_item(root, "empty", {"b.wav": tone, "b.srt": b"1\n00:00:00,000 --> 00:00:01,000\n"
                                                       b"[music]\n"},
               licenseurl=lic, title="t", creator="c")
    # not a duplicate of the other file, and longer than the shortest clip (a recording
    # shorter than that fails as too short, whatever its text)
    other = subprocess.run(["espeak-ng", "--stdout", "goodbye, and thank you for listening"],
                           capture_output=True, check=True).stdout
    write_item(root, "toolong", {"c.wav": other, "c.txt": long_text}, licenseurl=lic,
               title="t", creator="c")
    for item in ("corrupt", "empty", "toolong"):  # the helper labels every file "Text"
        meta_path = root / "items" / item / "_meta.json"
        meta = json.loads(meta_path.read_text())
        for f in meta["files"]:
            f["format"] = {"mp3": "VBR MP3", "wav": "WAVE", "srt": "SubRip", "txt": "Text"}[
                f["name"].rsplit(".", 1)[1]]
        meta_path.write_text(json.dumps(meta))
    workdir = tmp_path / "w"
    with serving(root) as url:
        run_crawl(workdir, url)
    align(workdir)
    with db(workdir) as conn:
        reasons = {r["item_id"]: r["reason"] for r in conn.execute("SELECT * FROM alignments")}
    assert reasons["corrupt"].startswith("decode failed")
    assert reasons["empty"].startswith("empty transcript")
    assert reasons["toolong"].startswith("text longer than audio")


def test_each_manifest_records_the_filter_settings_that_made_it(aligned, tmp_path):
    """The model's calibration (align/demo_model/filters.toml) over the defaults, a user's
    --filters file over both; a change of settings re-tiers every recording."""
    from align.filters import FilterConfig
    from align.models import load_model

    demo = load_model("demo").info
    assert dict(demo.filter_defaults)["clean_max_cer"] > FilterConfig().clean_max_cer
    want = FilterConfig().updated(dict(demo.filter_defaults)).as_dict()
    for path in (aligned / "manifests" / "clips").glob("*.parquet"):
        meta = pq.read_schema(path).metadata
        assert json.loads(meta[b"speechcrawl.filters"]) == want
    workdir = tmp_path / "w"
    shutil.copytree(aligned, workdir)
    (tmp_path / "filters.toml").write_text("[filters]\nclean_max_cer = 0.0\npad_s = 0.05\n")
    result = align(workdir, "--filters", str(tmp_path / "filters.toml"))
    assert "nothing to do" not in result.stdout + result.stderr
    rows = clips(workdir)
    assert rows and not [r for r in rows if r["tier"] == "clean" and r["cer"] > 0]
    for path in (workdir / "manifests" / "clips").glob("*.parquet"):
        meta = json.loads(pq.read_schema(path).metadata[b"speechcrawl.filters"])
        assert meta == {**want, "clean_max_cer": 0.0, "pad_s": 0.05}
    (tmp_path / "bad.toml").write_text("[filters]\nclean_max_cre = 0.1\n")
    bad = subprocess.run(ALIGN + ["--workdir", str(workdir), "--filters",
                                  str(tmp_path / "bad.toml")], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and ("filters clean_max_cre: unknown filter setting (did you "
                                    "mean clean_max_cer?)") in bad.stderr


# -- hostile input: stated lengths, text budgets, permanent failures against retries ---------

DECODE_PROBE = """
import json, sys, tracemalloc
from align.audio import DecodeError, decode
out = {}
for stated in json.loads(sys.argv[2]):
    tracemalloc.start()
    try:
        got = f"{decode(sys.argv[1], stated).size / 16000:.1f} s"
    except DecodeError as exc:
        got = str(exc)
    out[repr(stated)] = [got, tracemalloc.get_traced_memory()[1] / 1e6]
    tracemalloc.stop()
print(json.dumps(out))
"""


def test_stated_lengths_are_hints_not_allocations(tmp_path):
    """A 130 s recording stated as 1e12 s, NaN, -5, inf or 20,000 s: decoded, or refused with
    a reason, in memory bounded by the file (it took 690 MB for 20,000 s, MemoryError for 1e12)."""
    import numpy as np

    path = tmp_path / "a.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (rng.standard_normal(130 * 16000) * 3000).astype(np.int16), 16000)
    stated = [1e12, "NaN", -5, "inf", 20000, "1e12", None, 130]
    result = subprocess.run([sys.executable, "-c", DECODE_PROBE, str(path), json.dumps(stated)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    for value in stated:
        got, peak_mb = out[repr(value)]
        assert peak_mb < 100, (value, peak_mb)  # 4 MB of samples; was 690 MB for 20,000 s
        if value == 20000:
            assert got.startswith("decode failed: truncated audio (130.0 s of a stated 20000.0")
        else:  # not a believable length: no hint at all
            assert got == "130.0 s", value
    assert out["130"][1] < 10  # a true stated length: one buffer of the samples' size


def test_decoded_duration_is_capped(tmp_path):
    import numpy as np

    from align.audio import DecodeError, decode

    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(16000 * 30, np.int16), 16000)
    assert decode(path, max_s=60).size == 16000 * 30
    with pytest.raises(DecodeError, match="longer than the"):
        decode(path, max_s=10)


def _speech(text: str, pad_s: float = 0.0) -> bytes:
    """espeak-ng's WAV of ``text``, padded with silence: distinct texts, distinct files."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True,
                         check=True).stdout
    if not pad_s:
        return wav
    return subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-af", f"apad=pad_dur={pad_s}",
                           "-f", "wav", "pipe:1"], input=wav, capture_output=True,
                          check=True).stdout


FORMATS = {"wav": "WAVE", "srt": "SubRip", "vtt": "Web Video Text Tracks", "txt": "Text"}


def _hostile_archive(root: Path) -> None:
    import io

    import numpy as np

    lic = "https://creativecommons.org/licenses/by/4.0/"
    one = io.BytesIO()
    sf.write(one, np.array([1000], np.int16), 16000, format="WAV", subtype="PCM_16")
    cue = "1\n00:00:00,000 --> 00:00:02,000\n"
    huge_line = " ".join(f"Word number {i} goes on." for i in range(9000))  # ~200 KB
    items = {
        "onesample": {"a.wav": one.getvalue(), "a.txt": b"Hello there."},
        "noheader": {"a.wav": _speech("A caption file without its header."),
                     "a.vtt": b"00:00:00.000 --> 00:00:02.000\nA caption file without "
                              b"its header.\n"},
        "srtoverflow": {"a.wav": _speech("Cue times beyond any clock."),
                        "a.srt": b"1\n99999999999999:00:00,000 --> 99999999999999:00:01,000\n"
                                 b"Cue times beyond any clock.\n"},
        "srtgarbage": {"a.wav": _speech("Not a subtitle file at all."),
                       "a.srt": b"this is not a subtitle file\n\n--> --> 00:00\n"},
        "markup": {"a.wav": _speech("Only markup in its subtitles."),
                   "a.srt": (cue + "<i></i> {\\an8} [music] (applause) \u266a\n").encode()},
        "bignumber": {"a.wav": _speech("The number is very long indeed.", pad_s=8),
                      "a.txt": b"The number is " + b"7" * 400 + b"."},
        "hugesrt": {"a.wav": _speech("A two hundred kilobyte caption."),
                    "a.srt": (cue + huge_line + "\n").encode()},
        "densetext": {"a.wav": _speech("Far more text than speech."),
                      "a.srt": (cue + huge_line[:60_000] + "\n").encode()},
        "vanished": {"a.wav": _speech("This transcript will be deleted."),
                     "a.txt": b"This transcript will be deleted."},
    }
    for item, files in items.items():
        write_item(root, item, files, licenseurl=lic, title="t", creator="c")
        meta_path = root / "items" / item / "_meta.json"
        meta = json.loads(meta_path.read_text())
        for f in meta["files"]:
            f["format"] = FORMATS[f["name"].rsplit(".", 1)[1]]
        meta_path.write_text(json.dumps(meta))


def _alignments(workdir: Path) -> dict[str, tuple[str, str | None]]:
    with db(workdir) as conn:
        return {r["item_id"]: (r["status"], r["reason"])
                for r in conn.execute("SELECT * FROM alignments")}


def test_input_failures_are_permanent_and_internal_errors_retried_three_times(tmp_path):
    """Failures caused by the input are recorded once and never aligned again; an error of
    ours (here a transcript deleted from the workdir) is retried by the next runs, three
    attempts in all, then recorded for good."""
    root = tmp_path / "archive"
    _hostile_archive(root)
    workdir = tmp_path / "w"
    with serving(root) as url:
        run_crawl(workdir, url)
    with db(workdir) as conn:
        local = conn.execute("SELECT local_path FROM files WHERE item_id = 'vanished' AND "
                             "name = 'a.txt'").fetchone()[0]
    (workdir / local).unlink()
    first = align(workdir).stderr
    reasons = _alignments(workdir)
    assert reasons["onesample"] == ("failed", "audio too short: 0.000 s, less than the shortest "
                                              "clip (1 s)")
    assert reasons["noheader"][1].startswith("malformed transcript (vtt)")
    assert reasons["srtoverflow"][1].startswith("malformed transcript (srt)")
    assert reasons["srtgarbage"][1] == "empty transcript: no spoken words in it"
    assert reasons["markup"][1] == "empty transcript: no spoken words in it"
    assert reasons["hugesrt"][1].startswith("transcript too large: ")
    assert reasons["densetext"][1].startswith("text longer than audio: 60000 characters")
    # 400 digits are read one by one: four times the tokens of 9 s of audio
    assert reasons["bignumber"][1].startswith("text longer than audio:")
    assert reasons["vanished"][0] == "failed"
    assert reasons["vanished"][1].startswith("internal error (attempt 1 of 3): FileNotFoundError")
    assert "internal error" not in first.replace(reasons["vanished"][1], "")

    for attempt in (2, 3):
        second = align(workdir).stderr
        assert "align [1/1] vanished/a.wav" in second  # nothing else is aligned again
        again = _alignments(workdir)
        assert again["vanished"][1].startswith(
            f"internal error (attempt {attempt} of 3)" if attempt < 3 else
            "internal error (3 attempts): FileNotFoundError")
        assert {k: v for k, v in again.items() if k != "vanished"} == {
            k: v for k, v in reasons.items() if k != "vanished"}
    assert "nothing to do" in align(workdir).stderr


def test_a_stated_length_beyond_belief_aligns_as_if_unstated(tmp_path):
    root = tmp_path / "archive"
    lic = "https://creativecommons.org/licenses/by/4.0/"
    for item, length in (("huge", "1e12"), ("nan", "NaN"), ("lying", "20000")):
        text = f"The stated length of this recording is {item}."
        write_item(root, item, {"a.wav": _speech(text), "a.txt": text.encode()},
                   licenseurl=lic, title="t", creator="c")
        meta_path = root / "items" / item / "_meta.json"
        meta = json.loads(meta_path.read_text())
        for f in meta["files"]:
            f["format"] = FORMATS[f["name"].rsplit(".", 1)[1]]
            if f["name"] == "a.wav":
                f["length"] = length
        meta_path.write_text(json.dumps(meta))
    workdir = tmp_path / "w"
    with serving(root) as url:
        run_crawl(workdir, url)
    align(workdir)
    reasons = _alignments(workdir)
    assert reasons["huge"] == ("done", None) and reasons["nan"] == ("done", None)
    assert reasons["lying"][1].startswith("decode failed: truncated audio")


def test_a_dead_worker_charges_one_recording_not_the_queue(tmp_path):
    """A worker killed (for memory, say) breaks the pool: the first unfinished recording, the
    likeliest cause, is charged an internal attempt; those queued behind it are not attempted
    this run, so one recording that kills its worker cannot use up everyone's attempts."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from align.recording import RecordingJob
    from speechcrawl.align_stage import INTERNAL, NOT_ATTEMPTED, _pooled

    jobs = [RecordingJob("s", f"item{i}", "a.wav", tmp_path / "a.wav", "a.txt",
                         tmp_path / "a.txt", None, False, "CC0-1.0", "public-domain", "t")
            for i in range(3)]
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=os._exit, initargs=(9,))  # the worker dies at once
    try:
        results = list(_pooled(pool, jobs, tmp_path))
    finally:
        pool.shutdown(cancel_futures=True)
    assert [r[0].item_id for r in results] == ["item0", "item1", "item2"]
    assert results[0][2].startswith(f"{INTERNAL}worker process died")
    assert [r[2] for r in results[1:]] == [NOT_ATTEMPTED, NOT_ATTEMPTED]
