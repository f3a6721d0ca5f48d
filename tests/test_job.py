"""Job files: checked in full before anything runs (types, ranges, filter names, formats, models,
devices, sources, Scrapy settings, what this machine lacks), every stage they name run in
order, resumable, ending with the summary table; a source that cannot be reached fails in
seconds with one line; SIGTERM and SIGINT stop the crawl child; the shipped example files are
valid jobs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from manifests.summary import format_summary, summarize
from speechcrawl.cli import build_parser
from speechcrawl.job import CHILD_PID, Job, JobError, crawl_command
from speechcrawl.specs import AlignSpec, CrawlSpec, ReleaseSpec, SpecError, parse_setting

SPEECHCRAWL = [sys.executable, "-m", "speechcrawl.cli"]
JOBS = Path(__file__).resolve().parents[1] / "scripts" / "jobs"


def free_port() -> int:
    with socket.socket() as s:  # a port of this test's own: another suite may hold 8765
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_contact() -> dict:
    return {k: v for k, v in os.environ.items() if k != "SPEECHCRAWL_CONTACT"}


def run(job: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(SPEECHCRAWL + ["run", str(job)], capture_output=True, text=True,
                          timeout=timeout, cwd=job.parent, env=env)


@pytest.mark.parametrize("path", sorted(JOBS.glob("*.toml")), ids=lambda p: p.name)
def test_the_example_job_files_are_valid(path):
    job = Job.load(path)
    assert job.crawl and job.align and job.release and job.export is not None


def test_the_sample_archive_job_is_ready_to_run_here():
    assert Job.load(JOBS / "sample_archive.toml").environment_problems() == []


# A job that would build and serve the sample archive, crawl it and align it: a mistake must be
# found before any of that (no workdir, so no archive built, no server started, no catalog).
SAMPLE = '[sample_archive]\nitems = 2\nport = {port}\n'
GOOD = {"crawl": '[[crawl]]\nsource = "archive_org"\n', "align": '[align]\nmodel = "demo"\n',
        "export": '[export]\nformats = ["hf"]\n'}


def job_text(port: int, **tables: str) -> str:
    texts = {**GOOD, **tables}.values()
    bare = [t for t in texts if not t.startswith("[")]  # top-level keys before any table
    return ('workdir = "w"\n' + "".join(bare) + SAMPLE.format(port=port)
            + "".join(t for t in texts if t.startswith("[")))


# The mistakes the issue lists: each names the field and what is accepted.
ISSUE_MISTAKES = {
    "filter typo": ({"align": '[align]\nmodel = "demo"\n[align.filters]\nclean_max_cre = 0.1\n'},
                    ["[align.filters] clean_max_cre: unknown filter setting (did you mean "
                     "clean_max_cer?)", "known: min_duration_s, max_duration_s, clean_max_cer"]),
    "export format": ({"export": '[export]\nformats = ["hf", "kaldi"]\n'},
                      ['[export] formats: "kaldi" is not one of hf, nemo, lhotse']),
    "model name": ({"align": '[align]\nmodel = "wav2vec2-base-96h"\n'},
                   ['[align] model: "wav2vec2-base-96h" is neither a known model '
                    "(wav2vec2-base-960h, mms-fa, demo) nor an existing path (did you mean "
                    "wav2vec2-base-960h?)"]),
    "device": ({"align": '[align]\nmodel = "demo"\ndevice = "gpu"\n'},
               ['[align] device: "gpu" is not one of cpu, cuda']),
    "workers as text": ({"align": '[align]\nmodel = "demo"\nworkers = "2"\n'},
                        ['[align] workers: "2" is a string, not an integer (write 2 without '
                         "quotes)"]),
    "max_items as text": ({"crawl": '[[crawl]]\nsource = "archive_org"\nmax_items = "five"\n'},
                          ['[[crawl]] max_items: "five" is a string, not an integer']),
    "scrapy setting": ({"crawl": '[[crawl]]\nsource = "archive_org"\n'
                                 '[crawl.settings]\nDOWNLOAD_DELAYS = 2\n'},
                       ["[[crawl]] settings.DOWNLOAD_DELAYS: unknown setting (did you mean "
                        "DOWNLOAD_DELAY?)", "Scrapy's", "crawler/settings.py"]),
    "source": ({"crawl": '[[crawl]]\nsource = "archiveorg"\n'},
               ['[[crawl]] source: "archiveorg" is not one of archive_org (the spiders in '
                "crawler/spiders/) (did you mean archive_org?)"]),
}


@pytest.mark.parametrize("mistake", list(ISSUE_MISTAKES))
def test_each_mistake_the_issue_lists_fails_before_any_stage_runs(tmp_path, mistake):
    tables, messages = ISSUE_MISTAKES[mistake]
    port = free_port()
    job = tmp_path / "job.toml"
    job.write_text(job_text(port, **tables))
    with pytest.raises(JobError) as err:
        Job.load(job)
    for message in messages:
        assert message in str(err.value)
    started = time.monotonic()
    result = run(job)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert all(m in result.stderr for m in messages), result.stderr
    # nothing ran: no workdir (so no sample archive built or served, no catalog, no log)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.toml"]
    assert time.monotonic() - started < 60


# Variants: other types, ranges and shapes; each names the field and what it accepts.
VARIANTS = [
    ({"align": '[align]\nmodel = "demo"\nworkers = -1\n'},
     "[align] workers: -1 is out of range (1..1024)"),
    ({"align": '[align]\nmodel = "demo"\nworkers = 0\n'},
     "[align] workers: 0 is out of range (1..1024)"),
    ({"align": '[align]\nmodel = "demo"\nworkers = 2.5\n'},
     "[align] workers: 2.5 is a float, not an integer"),
    ({"align": '[align]\nmodel = "demo"\nworkers = true\n'},
     "[align] workers: true is a boolean, not an integer"),
    ({"crawl": '[[crawl]]\nsource = "archive_org"\nmax_items = 3.0\n'},
     "[[crawl]] max_items: 3.0 is a float, not an integer"),
    ({"crawl": '[[crawl]]\nsource = "archive_org"\nmax_items = 0\n'},
     "[[crawl]] max_items: 0 is out of range (at least 1)"),
    ({"align": '[align]\nmodel = "demo"\nfilters = [0.1]\n'},
     "[align] filters: must be a table, not a list"),
    ({"align": 'align = ["demo"]\n'}, "[align]: must be a table, not a list"),
    ({"align": '[align]\nmodel = "demo"\n[align.filters]\nclean_max_cer = "0.1"\n'},
     '[align.filters] clean_max_cer: "0.1" is a string, not a number (write 0.1 without quotes)'),
    ({"align": '[align]\nmodel = "demo"\n[align.filters]\nedge_chars = 2.5\n'},
     "[align.filters] edge_chars: 2.5 is a float, not an integer"),
    ({"align": '[align]\nmodel = "demo"\n[align.filters]\nlanguage = 1\n'},
     "[align.filters] language: 1 is an integer, not a string"),
    ({"align": '[align]\nmodel = ""\n'}, '[align] model: "" is empty, not a non-empty string'),
    ({"crawl": '[[crawl]]\nsource = "archive_org"\n[crawl.settings]\nDOWNLOAD_DELAY = "fast"\n'},
     '[[crawl]] settings.DOWNLOAD_DELAY: "fast" is a string, not a number'),
    ({"crawl": '[[crawl]]\nsource = "archive_org"\n[crawl.settings]\nRETRY_TIMES = "2"\n'},
     '[[crawl]] settings.RETRY_TIMES: "2" is a string, not a number (write 2 without quotes)'),
    ({"crawl": '[[crawl]]\nsource = "archive_org"\n'
               '[crawl.settings]\nSPEECHCRAWL_ALLOWED_HOSTS = "archive.org"\n'},
     '[[crawl]] settings.SPEECHCRAWL_ALLOWED_HOSTS: "archive.org" is a string, not a list'),
    ({"crawl": '[[crawl]]\nsource = "archive_org"\n[crawl.settings]\nROBOTSTXT_OBEY = 0\n'},
     "[[crawl]] settings.ROBOTSTXT_OBEY: 0 is an integer, not true or false"),
    ({"crawl": '[[crawl]]\nsource = "archive_org"\nsettings = ["DOWNLOAD_DELAY"]\n'},
     "[[crawl]] settings: must be a table, not a list"),
    ({"crawl": 'crawl = "archive_org"\n'}, "[[crawl]]: must be a table or tables, not a string"),
    ({"crawl": '[[crawl]]\nquery = "x"\n'}, "[[crawl]] source: missing (it is required)"),
    ({"crawl": '[[crawl]]\nsource = "archive_org"\nbase_url = "ftp://127.0.0.1/"\n'},
     '[[crawl]] base_url: "ftp://127.0.0.1/" is refused: scheme \'ftp\' is not http or https'),
    ({"crawl": '[[crawl]]\nsource = "archive_org"\n[[crawl]]\nsource = "archive"\n'},
     '[[crawl]] 2 source: "archive" is not one of archive_org'),
    ({"export": '[export]\nformats = "hf"\n'},
     '[export] formats: "hf" is a string, not a non-empty list of hf, nemo, lhotse'),
    ({"export": '[export]\nformats = []\n'}, "[export] formats: [] is a list, not a non-empty"),
    ({"export": '[export]\ntiers = ["gold"]\n'},
     '[export] tiers: "gold" is not one of clean, other, all'),
    ({"export": '[export]\nconfigs = ["clen"]\n[release]\nversion = "1"\n'},
     '[export] configs: "clen" is not one of the release\'s configs (clean, other, clean_sa, '
     "other_sa, microset) (did you mean clean?)"),
    ({"export": '[export]\ntiers = ["clean"]\n[release]\nversion = "1"\n'},
     "[export] tiers: is for an export of a workdir; this job exports its release"),
    ({"export": '[export]\nlink = true\n[release]\nversion = "1"\n'},
     "[export] link: is for an export of a workdir; this job exports its release"),
    ({"export": '[export]\nconfigs = ["clean"]\n'},
     '[export] configs: ["clean"] needs a [release] in the job'),
    ({"export": '[release]\nversion = "a/b"\n'}, '[release] version: "a/b" must match'),
    ({"export": '[release]\nversion = 2026\n'},
     "[release] version: 2026 is an integer, not a non-empty string"),
    ({"export": '[release]\nversion = "1"\nforce = "yes"\n'},
     '[release] force: "yes" is a string, not true or false'),
    ({"export": '[release]\nversion = "1"\nprevious = "no/such/release"\n'},
     '[release] previous: "no/such/release": no such release directory'),
    ({"export": '[release]\nversion = "1"\n[release.config]\nsalt_ = "x"\n'},
     "[release] config: unknown release settings: ['salt_']"),
    ({"export": '[aling]\nmodel = "demo"\n'},
     "[aling]: unknown table (did you mean align?); known: workdir, sample_archive, crawl"),
    ({"export": '[audit]\nout = 3\n'}, "[audit] out: 3 is an integer, not a non-empty string"),
]


@pytest.mark.parametrize("tables, message", VARIANTS, ids=[m[:40] for _, m in VARIANTS])
def test_other_mistakes_are_named_with_what_is_accepted(tmp_path, tables, message):
    job = tmp_path / "job.toml"
    job.write_text(job_text(free_port(), **tables))
    with pytest.raises(JobError) as err:
        Job.load(job)
    assert message in str(err.value)
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("text, message", [
    ('items = 0', "[sample_archive] items: 0 is out of range (1..100000)"),
    ('port = 70000', "[sample_archive] port: 70000 is out of range (0..65535)"),
    ('seed = "1"', '[sample_archive] seed: "1" is a string, not an integer (write 1 without'),
    ('itmes = 3', "[sample_archive] itmes: unknown key (did you mean items?); known: items, "
                  "seed, port"),
])
def test_sample_archive_mistakes(tmp_path, text, message):
    job = tmp_path / "job.toml"
    job.write_text(f'workdir = "w"\n[sample_archive]\n{text}\n')
    with pytest.raises(JobError) as err:
        Job.load(job)
    assert message in str(err.value)


def test_every_mistake_is_named_at_once(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('workdir = "w"\n[[crawl]]\nsource = "archive_org"\nmax_items = "five"\n'
                   '[align]\ndevice = "gpu"\nworkers = "2"\n[export]\nformats = ["kaldi"]\n')
    result = run(job)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    for field in ("max_items", "device", "workers", "formats"):
        assert f" {field}: " in result.stderr
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("text, message", [
    ('[align]\nmodel = "demo"', "workdir: missing (it is required)"),
    ('workdir = "w"\n[aling]\nmodel = "demo"', "[aling]: unknown table"),
    ('workdir = "w"\n[align]\nmodle = "demo"',
     "[align] modle: unknown key (did you mean model?); known: model, device, workers, filters"),
    ('workdir = "w"\n[[crawl]]\nquery = "x"', "[[crawl]] source: missing"),
    ('workdir = "w"\n[release]\nprevious = "p"', "[release] version: missing"),
    ('workdir = "w"\nalign = 3', "[align]: must be a table, not an integer"),
    ('workdir = "w"\n[align\n', "not valid TOML"),
])
def test_a_bad_job_file_is_refused_before_anything_runs(tmp_path, text, message):
    path = tmp_path / "job.toml"
    path.write_text(text)
    with pytest.raises(JobError) as err:
        Job.load(path)
    assert message in str(err.value)
    result = run(path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "w").exists()


def workdir(root: Path) -> Path:
    """An existing workdir (a catalog file is what marks one) for jobs that do not crawl."""
    (root / "w").mkdir(exist_ok=True)
    (root / "w" / "catalog.sqlite").touch()
    return root / "w"


def load_error(path: Path, text: str) -> str:
    path.write_text(text)
    with pytest.raises(JobError) as err:
        Job.load(path)
    return str(err.value)


# Every path a job names is judged when it loads: outputs as `check_out` judges --out (and an
# export's parent never /, ~ or the workdir's data), `previous` an existing release.
PATHS = [
    ('[export]\nout = "/"\n', '[export] out: "/" is the root or the home directory'),
    ('[export]\nout = "~"\n', '[export] out: "{home}" is the root or the home directory'),
    ('[export]\nout = "/tmp/.."\n', "is the root or the home directory"),
    ('[export]\nout = "w/clips"\n', "inside the workdir's own data (raw, clips, manifests)"),
    ('[export]\nout = "w/raw/../manifests/x"\n', "inside the workdir's own data"),
    ('[export]\nout = "mine"\n', "[export] out: --out {tmp}/mine/hf exists and holds files "
                                  "speechcrawl export did not make"),
    ('[audit]\nout = "/"\n', "[audit] out: --out / is the root or the home directory"),
    ('[audit]\nout = "~/"\n', "[audit] out: --out {home} is the root or the home directory"),
    ('[audit]\nout = "w"\n', "[audit] out: --out {tmp}/w is the workdir"),
    ('[audit]\nout = "."\n', "holds the workdir"),
    ('[audit]\nout = "w/manifests/audit"\n', "is inside the workdir's manifests/"),
    ('[release]\nversion = "v1"\nprevious = "{tmp}"\n',
     '[release] previous: "{tmp}" is not a release directory (it has no release.json)'),
    ('[release]\nversion = "v1"\nprevious = "nope/v0"\n',
     '[release] previous: "nope/v0": no such release directory'),
    ('[release]\nversion = "v1"\nprevious = "w/releases/v1"\n',
     '[release] previous: "w/releases/v1" is the release this job builds'),
]


@pytest.mark.parametrize("table, message", PATHS, ids=[t.split("\n")[1] for t, _ in PATHS])
def test_every_path_a_job_names_is_checked_when_it_loads(tmp_path, monkeypatch, table,
                                                         message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine" / "hf").mkdir(parents=True)
    (tmp_path / "mine" / "hf" / "notes.txt").write_text("someone's")
    table = table.format(tmp=tmp_path)
    text = job_text(free_port(), **{"export": '[export]\nformats = ["hf"]\n', "z": table}
                    if not table.startswith("[export]") else {"export": table.replace(
                        "[export]\n", '[export]\nformats = ["hf"]\n')})
    error = load_error(tmp_path / "job.toml", text)
    assert message.format(tmp=tmp_path.resolve(), home=Path.home()) in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.toml", "mine"]  # none written


def test_a_previous_release_that_exists_and_harmless_outputs_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old" / "v0").mkdir(parents=True)
    (tmp_path / "old" / "v0" / "release.json").write_text("{}")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("someone's, beside the formats' directories")
    (tmp_path / "job.toml").write_text(job_text(
        free_port(), export='[export]\nout = "mine"\n', release='[release]\nversion = "v1"\n'
        'previous = "old/v0"\n', audit='[audit]\nout = "reports/a"\n'))
    job = Job.load(tmp_path / "job.toml")
    assert job.release.previous == Path("old/v0") and job.export.out == Path("mine")


@pytest.mark.parametrize("text, message", [
    ('workdir = "w"\n[align]\nmodel = "demo"\n', "workdir: workdir w does not exist"),
    ('workdir = "~/no-such-w"\n[audit]\n', "workdir: workdir {home}/no-such-w does not exist"),
    ('workdir = "empty"\n[release]\nversion = "1"\n',
     "workdir: empty is not a speechcrawl workdir: it has no catalog.sqlite"),
    ('workdir = "w"\n[export]\n', "workdir: workdir w does not exist"),
    ('workdir = "w"\n', "workdir: workdir w does not exist"),
])
def test_a_job_that_does_not_crawl_needs_an_existing_workdir(tmp_path, monkeypatch, text,
                                                            message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "empty").mkdir()
    error = load_error(tmp_path / "job.toml", text)
    assert message.format(home=tmp_path / "home") in error
    assert not (tmp_path / "w").exists() and not (tmp_path / "home").exists()


def test_a_workdir_under_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    workdir(tmp_path)
    (tmp_path / "job.toml").write_text('workdir = "~/w"\n[audit]\nout = "~/a"\n')
    job = Job.load(tmp_path / "job.toml")
    assert job.workdir == tmp_path / "w" and job.audit.out == tmp_path / "a"


# [release] config values: typed, every mistake named with its field (the CLI's --config TOML
# goes through the same ReleaseConfig.from_dict).
RELEASE_CONFIGS = [
    ({"include_asr_captions": "yes"}, 'include_asr_captions: "yes" is a string, not true or '
                                      "false"),
    ({"dedup_audio": "no"}, 'dedup_audio: "no" is a string, not true or false'),
    ({"group_by_creator": 1}, "group_by_creator: 1 is an integer, not true or false"),
    ({"salt": 5}, "salt: 5 is an integer, not a non-empty string"),
    ({"name": ""}, 'name: "" is a string, not a non-empty string'),
    ({"anonymous_creators": "unknown"}, 'anonymous_creators: "unknown" is a string, not a list'),
    ({"anonymous_creators": ["x", 3]}, "anonymous_creators: [\"x\", 3] is a list, not a list "
                                       "of strings"),
    ({"splits": ["train", "test"]}, 'splits: ["train", "test"] is a list, not a table of split'),
    ({"splits": {"train": True}}, "splits.train: true is a boolean, not a positive number"),
    ({"splits": {"train": "0.9", "test": 0.1}}, 'splits.train: "0.9" is a string, not a '
                                                "positive number"),
    ({"splits": {"train": float("nan")}}, "splits.train: NaN is a float, not a positive"),
    ({"splits": {"train": 0.9, "test": 0.2}}, "splits: the shares sum to 1.1, not 1"),
    ({"subsets": "clean"}, 'subsets: "clean" is a string, not a table of subset tables'),
    ({"subsets": {"clean": "all"}}, 'subsets.clean: "all" is a string, not a table'),
    ({"subsets": {"clean": {"tiers": "clean", "families": ["by"]}}},
     'subsets.clean.tiers: "clean" is a string, not a list of strings'),
    ({"dedup_text_min_chars": "20"}, 'dedup_text_min_chars: "20" is a string, not an integer'),
    ({"dedup_text_min_chars": 2.5}, "dedup_text_min_chars: 2.5 is a float, not an integer"),
    ({"max_shard_bytes": True}, "max_shard_bytes: true is a boolean, not an integer"),
]


@pytest.mark.parametrize("config, message", RELEASE_CONFIGS,
                         ids=[m.split(":")[0] + str(i) for i, (_, m) in
                              enumerate(RELEASE_CONFIGS)])
def test_release_config_values_are_typed_and_named(tmp_path, config, message):
    from manifests.release.config import ReleaseConfig

    with pytest.raises(ValueError) as err:
        ReleaseConfig.from_dict(config)
    assert message in str(err.value)
    with pytest.raises(SpecError) as err:
        Job.from_dict({"workdir": str(workdir(tmp_path)),
                       "release": {"version": "1", "config": config}})
    assert f"[release] config: {message}" in str(err.value)


def test_a_release_config_toml_with_a_non_table_release_is_named(tmp_path):
    from manifests.release.config import ReleaseConfig

    (tmp_path / "c.toml").write_text('release = "v1"\n')
    with pytest.raises(ValueError, match="release must be a \\[release\\] table, not a str"):
        ReleaseConfig.from_toml(tmp_path / "c.toml")


# Values of the right type that still cannot work: named with the field and the range.
RANGES = [
    ("[align.filters]\nmin_duration_s = -3", "[align.filters] min_duration_s: -3 is negative"),
    ("[align.filters]\npad_s = -0.1", "[align.filters] pad_s: -0.1 is negative"),
    ("[align.filters]\nedge_chars = -1", "[align.filters] edge_chars: -1 is negative"),
    ("[align.filters]\nmax_duration_s = inf", "max_duration_s: inf is not a finite number"),
    ("[align.filters]\nclean_max_cer = nan", "clean_max_cer: nan is not a finite number"),
    ("[align.filters]\nclean_min_score = -inf", "clean_min_score: -inf is not a finite"),
    ("[align.filters]\nmin_duration_s = 30", "min_duration_s: 30 is above max_duration_s (20.0)"),
    ("[align.filters]\nmin_chars_per_s = 9\nmax_chars_per_s = 5",
     "min_chars_per_s: 9 is above max_chars_per_s (5)"),
    ("[align.filters]\nclean_max_cer = 0.5", "clean_max_cer: 0.5 is above other_max_cer (0.3)"),
    ("[align.filters]\nmax_silence_share = 1.5", "max_silence_share: 1.5 is not a share"),
    ("[align.filters]\nlanguage = \"english\"",
     "[align.filters] language: 'english' is not a language code"),
    ("[align.filters]\nlanguage = \"xx\"", "language: 'xx' is not a language code"),
    ("[crawl.settings]\nDOWNLOAD_DELAY = -5", "settings.DOWNLOAD_DELAY: -5 is negative"),
    ("[crawl.settings]\nCONCURRENT_REQUESTS = 0",
     "settings.CONCURRENT_REQUESTS: 0 is out of range (at least 1)"),
    ("[crawl.settings]\nCONCURRENT_REQUESTS_PER_DOMAIN = 2.7",
     "settings.CONCURRENT_REQUESTS_PER_DOMAIN: 2.7 is a float, not an integer"),
    ("[crawl.settings]\nCONCURRENT_ITEMS = -1", "settings.CONCURRENT_ITEMS: -1 is out of range"),
    ("[crawl.settings]\nRETRY_TIMES = 2.5", "settings.RETRY_TIMES: 2.5 is a float"),
    ("[crawl.settings]\nSPEECHCRAWL_DOWNLOADS_TOTAL = 0",
     "settings.SPEECHCRAWL_DOWNLOADS_TOTAL: 0 is out of range (at least 1)"),
    ("[crawl.settings]\nDOWNLOAD_TIMEOUT = inf", "settings.DOWNLOAD_TIMEOUT: inf is not a finite"),
    ("[crawl.settings]\nDOWNLOAD_TIMEOUT = 0", "settings.DOWNLOAD_TIMEOUT: 0 is out of range"),
    ("[crawl.settings]\nSPEECHCRAWL_MAX_GONE_FRACTION = 7",
     "settings.SPEECHCRAWL_MAX_GONE_FRACTION: 7 is not a fraction between 0 and 1"),
    ("[crawl.settings]\nSPEECHCRAWL_MAX_GONE_FRACTION = -0.1", "is not a fraction"),
    ("[crawl.settings]\nLOG_LEVEL = \"LOUD\"",
     'settings.LOG_LEVEL: "LOUD" is not one of CRITICAL, ERROR, WARNING, INFO, DEBUG'),
    ("[crawl.settings]\nLOG_LEVEL = \"info\"", 'settings.LOG_LEVEL: "info" is not one of'),
]


@pytest.mark.parametrize("table, message", RANGES, ids=[t.split("\n")[1] for t, _ in RANGES])
def test_values_out_of_range_are_named_with_their_field(tmp_path, table, message):
    head = ('[align]\nmodel = "demo"\n' if table.startswith("[align")
            else '[[crawl]]\nsource = "archive_org"\n')
    key = "align" if table.startswith("[align") else "crawl"
    error = load_error(tmp_path / "job.toml", job_text(free_port(), **{key: head + table + "\n"}))
    assert message in error
    assert not (tmp_path / "w").exists()


def test_values_in_range_load_and_filters_from_the_cli_are_checked_too():
    from align.filters import FilterConfig

    spec = AlignSpec.from_table({"filters": {"language": "es", "pad_s": 0.0,
                                             "min_duration_s": 0.5, "clean_max_cer": 0.3}})
    assert spec.filters["language"] == "es"
    CrawlSpec.from_table({"source": "archive_org", "settings": {
        "DOWNLOAD_DELAY": 0.5, "DOWNLOAD_TIMEOUT": 30.5, "CONCURRENT_REQUESTS": 1,
        "SPEECHCRAWL_MAX_GONE_FRACTION": 1, "LOG_LEVEL": "DEBUG", "RETRY_TIMES": 0}})
    with pytest.raises(ValueError, match="pad_s: -1 is negative"):
        FilterConfig().updated({"pad_s": -1})  # what the CLI's --filters file goes through


@pytest.mark.parametrize("crawls, message", [
    ('[[crawl]]\nsource = "archive_org"\n' * 2,
     "[[crawl]] 2: the same source, base_url and query as [[crawl]] 1"),
    ('[[crawl]]\nsource = "archive_org"\nquery = "q"\n[[crawl]]\nsource = "archive_org"\n'
     '[[crawl]]\nquery = "q"\nsource = "archive_org"\nmax_items = 3\n',
     "[[crawl]] 3: the same source, base_url and query as [[crawl]] 1"),
])
def test_two_identical_crawls_are_refused(tmp_path, crawls, message):
    error = load_error(tmp_path / "job.toml", job_text(free_port(), crawl=crawls))
    assert message in error
    assert error.count("the same source") == 1  # the second table of the second case differs


def test_crawls_of_the_same_source_elsewhere_load(tmp_path):
    (tmp_path / "job.toml").write_text(job_text(free_port(), crawl=(
        '[[crawl]]\nsource = "archive_org"\n[[crawl]]\nsource = "archive_org"\nquery = "q"\n'
        '[[crawl]]\nsource = "archive_org"\nbase_url = "http://127.0.0.1:9"\n')))
    assert len(Job.load(tmp_path / "job.toml").crawl) == 3


@pytest.mark.parametrize("device", ["gpu", "GPU", "Gpu "])
def test_gpu_suggests_cuda(device):
    with pytest.raises(SpecError, match=f'device: "{device}" is not one of cpu, cuda \\(for a '
                                        'GPU, write "cuda"\\)'):
        AlignSpec.from_table({"model": "demo", "device": device})


def test_checking_a_model_name_does_not_import_torch(tmp_path):
    (tmp_path / "job.toml").write_text(job_text(free_port(), align='[align]\nmodel = "mms-fa"\n'
                                                '[align.filters]\nlanguage = "de"\n'))
    code = ("import sys; from speechcrawl.job import Job; from speechcrawl.specs import "
            "AlignSpec, SpecError\n"
            f"Job.load({str(tmp_path / 'job.toml')!r})\n"
            "try:\n    AlignSpec.from_table({'model': 'wav2vec2-base-96h'})\n"
            "except SpecError as e:\n    print(e)\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.endswith("did you mean wav2vec2-base-960h?)\nFalse\n"), result.stdout


def test_the_cli_builds_the_same_specs_with_the_same_defaults(tmp_path):
    align = build_parser().parse_args(["align", "--workdir", "w"])
    assert AlignSpec.from_table({k: v for k, v in vars(align).items()
                                 if k in AlignSpec.KEYS and v is not None}) == AlignSpec()
    assert AlignSpec().model == "wav2vec2-base-960h"
    release = build_parser().parse_args(["release", "--workdir", "w", "--version", "1"])
    assert release.workers is None  # the spec's default, the same in a job file
    assert ReleaseSpec.from_table({"version": "1"}).workers == \
        Job.from_dict({"workdir": str(workdir(tmp_path)),
                       "release": {"version": "1"}}).release.workers
    with pytest.raises(SpecError, match="workers: 0 is out of range"):
        ReleaseSpec.from_table({"version": "1", "workers": 0})


def test_crawl_settings_reach_the_child_as_json_so_lists_survive(tmp_path):
    spec = CrawlSpec.from_table({"source": "archive_org", "settings": {
        "SPEECHCRAWL_ALLOWED_HOSTS": ["127.0.0.1", "*.example.org"],
        "RETRY_HTTP_CODES": [429, 503], "DOWNLOAD_DELAY": 0.5}})
    cmd = crawl_command(spec, tmp_path, "http://127.0.0.1:9")
    args = build_parser().parse_args(cmd[3:])
    assert json.loads(args.settings) == spec.settings
    # and the command line's --set reads lists and booleans as Scrapy's -s does
    assert parse_setting("SPEECHCRAWL_ALLOWED_HOSTS", "a.org, b.org") == ["a.org", "b.org"]
    assert parse_setting("RETRY_HTTP_CODES", "[429, 503]") == [429, 503]
    assert parse_setting("ROBOTSTXT_OBEY", "0") is False
    assert parse_setting("SPEECHCRAWL_CONTACT", "me@example.org") == "me@example.org"


# -- what this machine lacks: found before the first stage ---------------------------------------
def test_missing_weights_say_where_and_how_before_anything_runs(tmp_path):
    empty = tmp_path / "torch-home"
    empty.mkdir()
    job = tmp_path / "job.toml"
    job.write_text(f'workdir = "w"\n[sample_archive]\nitems = 2\nport = {free_port()}\n'
                   '[[crawl]]\nsource = "archive_org"\n[align]\n')  # the default model
    started = time.monotonic()
    result = run(job, env={**os.environ, "TORCH_HOME": str(empty)})
    assert time.monotonic() - started < 60  # no download tried, no network waited for
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    line = result.stderr
    assert "urlopen" not in line and "weights of wav2vec2-base-960h" in line
    where = empty / "hub" / "checkpoints" / "wav2vec2_fairseq_base_ls960_asr_ls960.pth"
    assert f"looked for {where}" in line  # where it looked
    assert (f"curl -fL --create-dirs -o '{where}' 'https://download.pytorch.org/torchaudio/"
            "models/wav2vec2_fairseq_base_ls960_asr_ls960.pth'") in line  # how to fetch them
    assert "--model PATH" in line  # how to pass a local model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.toml", "torch-home"]
    assert list(empty.iterdir()) == []


def test_loading_a_model_without_weights_fails_at_once_with_the_same_message(tmp_path):
    from align.models import load_model

    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        started = time.monotonic()
        with pytest.raises(FileNotFoundError) as err:
            load_model("mms-fa")
        assert time.monotonic() - started < 10
    finally:
        torch.hub.set_dir(before)
    assert f"looked for {tmp_path / 'hub' / 'checkpoints' / 'model.pt'}" in str(err.value)
    assert "https://dl.fbaipublicfiles.com/mms/torchaudio/" in str(err.value)
    assert not (tmp_path / "hub").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_before_anything_runs(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(job_text(free_port(), align='[align]\nmodel = "demo"\ndevice = "cuda"\n'))
    result = run(job)
    assert result.returncode == 2 and "[align] device: \"cuda\", but torch sees no GPU" in \
        result.stderr
    assert not (tmp_path / "w").exists()


def test_a_real_crawl_without_a_contact_is_refused_before_anything_runs(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('workdir = "w"\n[[crawl]]\nsource = "archive_org"\n[align]\nmodel = "demo"\n')
    result = run(job, env=no_contact())
    assert result.returncode == 2 and "set SPEECHCRAWL_CONTACT" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "w").exists()


# -- a source that cannot be reached: seconds, one line ------------------------------------------
@pytest.mark.parametrize("where", ["closed port", "unresolvable name"])
def test_an_unreachable_source_stops_the_job_at_once_with_one_line(tmp_path, where):
    port = free_port()  # nothing listens there once the probe socket is closed
    base, host, why = {
        "closed port": (f"http://127.0.0.1:{port}", "127.0.0.1",
                        f"connection refused on port {port}"),
        "unresolvable name": ("http://nonexistent.invalid", "nonexistent.invalid",
                              "DNS lookup"),  # .invalid never resolves (RFC 6761)
    }[where]
    job = tmp_path / "job.toml"
    job.write_text(f'workdir = "w"\n[[crawl]]\nsource = "archive_org"\nbase_url = "{base}"\n'
                   '[align]\nmodel = "demo"\n')
    started = time.monotonic()
    result = run(job, env={**os.environ, "SPEECHCRAWL_CONTACT": "tests@example.org"},
                 timeout=90)
    assert time.monotonic() - started < 60
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"speechcrawl run: crawl failed: cannot reach {host}: {why}" in result.stderr
    assert "align" not in result.stdout  # the job stopped at its crawl
    # and the crawl command alone says the same, creating nothing
    alone = subprocess.run(SPEECHCRAWL + ["crawl", "archive_org", "--workdir",
                                          str(tmp_path / "alone"), "--base-url", base],
                           capture_output=True, text=True, timeout=90,
                           env={**os.environ, "SPEECHCRAWL_CONTACT": "tests@example.org"})
    assert alone.returncode == 2 and alone.stderr.count("\n") == 1
    assert f"speechcrawl crawl: crawl failed: cannot reach {host}: {why}" in alone.stderr
    assert not (tmp_path / "alone").exists()


# -- signals stop every child --------------------------------------------------------------------
def alive(pid: int) -> bool:
    """Running (not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_run_stops_the_crawl_child(tmp_path, signum):
    job = tmp_path / "job.toml"
    # A slow crawl (5 s between requests) that is still running when the signal comes, and
    # silent (no progress lines): a child whose parent died must not be stopped by a broken pipe.
    job.write_text(f'workdir = "work"\n[sample_archive]\nitems = 2\nport = {free_port()}\n'
                   '[[crawl]]\nsource = "archive_org"\n[crawl.settings]\nDOWNLOAD_DELAY = 5\n'
                   'SPEECHCRAWL_PROGRESS_INTERVAL = 0\n[align]\nmodel = "demo"\n')
    proc = subprocess.Popen(SPEECHCRAWL + ["run", str(job)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid_file = tmp_path / "work" / CHILD_PID
    try:
        deadline = time.monotonic() + 300
        while not pid_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pid_file.exists(), proc.communicate(timeout=60)
        time.sleep(2)  # well into the crawl
        child = int(pid_file.read_text())
        assert alive(child) and proc.poll() is None
        proc.send_signal(signum)  # to `run` alone, as `kill` or a scheduler sends it
        stopped = time.monotonic()
        out, err = proc.communicate(timeout=30)
        while alive(child) and time.monotonic() - stopped < 15:
            time.sleep(0.1)
        took = time.monotonic() - stopped
        assert not alive(child), "the crawl child outlived `speechcrawl run`"
        assert took < 15
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted" in err
    assert not pid_file.exists()
    assert "align" not in out  # no stage after the crawl ran


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_job_runs_its_stages_and_a_second_run_does_no_work(tmp_path):
    """The sample archive job on three items: crawl and align, then the same job again."""
    with socket.socket() as s:  # a port of this test's own: another suite may hold 8765
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    job = tmp_path / "job.toml"
    job.write_text(f'workdir = "work"\n[sample_archive]\nitems = 3\nport = {port}\n'
                   '[[crawl]]\nsource = "archive_org"\n[align]\nmodel = "demo"\n')
    first = subprocess.run(SPEECHCRAWL + ["run", str(job)], capture_output=True, text=True,
                           timeout=900, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    workdir = tmp_path / "work"
    summary = summarize(workdir)
    assert first.stdout.rstrip().endswith(format_summary(summary))
    items = pq.read_table(workdir / "manifests" / "items.parquet").to_pylist()
    assert summary["items"] == len(items) == 3
    assert summary["accepted"] == sum(r["decision"] == "accepted" for r in items)
    clips = [r for p in (workdir / "manifests" / "clips").glob("*.parquet")
             for r in pq.read_table(p, columns=["tier", "duration_s"]).to_pylist()]
    for tier, v in summary["tiers"].items():
        mine = [c for c in clips if c["tier"] == tier]
        assert v["clips"] == len(mine)
        assert v["hours"] == pytest.approx(sum(c["duration_s"] for c in mine) / 3600)
    assert sum(v["clips"] for v in summary["tiers"].values()) > 0
    assert summary["hours_aligned"] > 0 and summary["hours_downloaded"] >= \
        summary["hours_aligned"]

    second = subprocess.run(SPEECHCRAWL + ["run", str(job)], capture_output=True, text=True,
                            timeout=900, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "align: nothing to do" in second.stdout + second.stderr
    assert "0 downloaded" in second.stderr  # the crawl's progress line: nothing fetched again
    assert summarize(workdir) == summary


@pytest.mark.slow
def test_sigterm_during_align_stops_its_worker_pool_at_once(tmp_path):
    """align's workers are children of `run` too: they stop with it, not after finishing their
    recordings, and no recording is charged a failure for being interrupted."""
    from manifests.catalog import AlignmentStatus, Catalog
    from speechcrawl.job import child_pids

    job = tmp_path / "job.toml"
    job.write_text(f'workdir = "work"\n[sample_archive]\nitems = 6\nport = {free_port()}\n'
                   '[[crawl]]\nsource = "archive_org"\n[align]\nmodel = "demo"\nworkers = 2\n')
    proc = subprocess.Popen(SPEECHCRAWL + ["run", str(job)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline, workers = time.monotonic() + 600, []
        while not workers and proc.poll() is None and time.monotonic() < deadline:
            workers = [pid for pid in child_pids(proc.pid)
                       if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            time.sleep(0.05)
        assert workers, "align's worker pool never started"
        time.sleep(1)  # the workers load the model and start aligning
        children = child_pids(proc.pid)
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        while any(alive(pid) for pid in children) and time.monotonic() - stopped < 10:
            time.sleep(0.05)
        took = time.monotonic() - stopped
        assert not any(alive(pid) for pid in children), "a child outlived `speechcrawl run`"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 5 and proc.returncode == 130  # unpatched: 7.5 s (the workers finish first)
    assert "release:" not in out  # no stage after align ran
    with Catalog.reader(tmp_path / "work" / "catalog.sqlite") as catalog:
        assert all(a.status == AlignmentStatus.DONE for a in catalog.alignments())
