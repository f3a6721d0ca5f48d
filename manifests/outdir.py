"""Output directories (``audit``, ``release``, ``export``): built beside their final name,
swapped in whole, and replacing only what speechcrawl itself made there.

Every directory made here holds a marker file naming the command that made it. An existing
``--out`` is replaced only when it holds that command's marker (or is empty); never when it is
``/``, the home directory, the workdir, a directory holding the workdir, or a place inside the
workdir's own data (``raw``, ``clips``, ``manifests``) or inside another output. A mistyped
``--out`` therefore costs a one-line error, never someone's files.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MARKER = ".speechcrawl-output"
WORKDIR_DATA = ("raw", "clips", "manifests")  # the workdir's own records: never an output
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputRefused(ValueError):
    """``--out`` names a directory speechcrawl must not replace (the CLI prints this line)."""


def _marker(path: Path) -> dict:
    marker = Path(path) / MARKER
    if marker.is_symlink() or not marker.is_file():
        return {}
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def made_by(path: Path) -> str | None:
    """The command whose output ``path`` is (from its marker), or None."""
    made = _marker(path).get("made_by")
    return made if isinstance(made, str) else None


def _entries(directory: Path) -> set[str]:
    """Every file and directory under ``directory`` (the marker aside), relative, POSIX."""
    directory = Path(directory)
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*")} - {MARKER}


def foreign_entries(directory: Path) -> list[str]:
    """What is under an output directory that the command which made it did not list."""
    listed = _marker(directory).get("entries")
    if not isinstance(listed, list):
        return sorted(_entries(directory))
    return sorted(_entries(directory) - set(map(str, listed)))


def check_out(out: Path, kind: str, workdir: Path | None = None) -> Path:
    """``out`` as an absolute path if ``speechcrawl <kind>`` may (re)place it; else raise
    ``OutputRefused`` and touch nothing."""
    out = Path(out).absolute()
    real = out.resolve()

    def refuse(why: str) -> OutputRefused:
        return OutputRefused(f"--out {out} {why}; not writing there (choose another directory)")

    if real == Path(real.anchor) or real == Path.home().resolve():
        raise refuse("is the root or the home directory")
    if workdir is not None:
        w = Path(workdir).resolve()
        if real == w:
            raise refuse("is the workdir")
        if w.is_relative_to(real):
            raise refuse(f"holds the workdir {w}")
        for sub in WORKDIR_DATA:
            if real.is_relative_to(w / sub):
                raise refuse(f"is inside the workdir's {sub}/")
    for parent in real.parents:
        if (other := made_by(parent)) is not None:
            raise refuse(f"is inside {parent}, an output of {other}")
    if out.is_symlink():
        raise refuse("is a symbolic link")
    if out.exists():
        if not out.is_dir():
            raise refuse("exists and is not a directory")
        if any(out.iterdir()) and made_by(out) != f"speechcrawl {kind}":
            what = made_by(out)
            raise refuse(f"holds an output of {what}, not of speechcrawl {kind}" if what else
                         f"exists and holds files speechcrawl {kind} did not make "
                         f"(no {MARKER} file)")
        if made_by(out) and (extra := foreign_entries(out)):
            raise refuse(f"holds {len(extra)} file(s) speechcrawl {kind} did not make there "
                         f"(first: {extra[0]})")
    return out


def mark(directory: Path, kind: str, also: tuple[str, ...] = ()) -> None:
    """Write the marker that lets a later ``speechcrawl <kind>`` replace ``directory``: the
    command, and every entry it made there (``also``: names still to be written, such as a
    checksum file written after the marker it lists), so a file someone adds later keeps the
    directory from being replaced. Its content depends only on what was built, so a release
    stays byte-identical."""
    entries = sorted(_entries(directory) | set(also))
    (Path(directory) / MARKER).write_text(
        json.dumps({"made_by": f"speechcrawl {kind}", "entries": entries}) + "\n",
        encoding="utf-8")


def _covers(directory: Path, kind: str) -> bool:
    return made_by(directory) == f"speechcrawl {kind}" and not foreign_entries(directory)


def temp_beside(out: Path) -> Path:
    """A fresh, empty directory beside ``out`` (same file system, so the swap is a rename);
    leftovers of our builds that died are removed first (only directories holding a marker:
    an unmarked one of that name is someone else's, and is left alone)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists() or tmp.is_symlink():
        if made_by(tmp) is None or tmp.is_symlink():
            raise OutputRefused(f"{tmp} exists and was not made by speechcrawl; not "
                                "building there (remove it or choose another --out)")
        shutil.rmtree(tmp)
    tmp.mkdir()
    (tmp / MARKER).write_text(json.dumps({"made_by": "speechcrawl (building)"}) + "\n",
                              encoding="utf-8")
    return tmp


def swap_in(tmp: Path, out: Path, kind: str, workdir: Path | None = None) -> None:
    """Mark ``tmp``, make it durable, and put it at ``out`` in one step: a reader sees the old
    output or the new one, never neither nor half. ``out`` is checked again just before, in
    case someone put files there while this one was being built."""
    out = check_out(out, kind, workdir)
    if not _covers(tmp, kind):
        mark(tmp, kind)
    _fsync_tree(tmp)
    if out.exists():
        if not _exchange(tmp, out):  # no renameat2: two renames, the old kept until the end
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            tmp = old
        shutil.rmtree(tmp)  # the previous output, now under the temporary name
    else:
        os.replace(tmp, out)
    _fsync_dir(out.parent)


@contextmanager
def replacing(out: Path, kind: str, workdir: Path | None = None) -> Iterator[Path]:
    """Check ``out``, yield an empty directory to build in, then ``swap_in``; on any failure
    the temporary goes and ``out`` stays as it was."""
    out = check_out(out, kind, workdir)
    tmp = temp_beside(out)
    try:
        yield tmp
        swap_in(tmp, out, kind, workdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale(out: Path) -> None:
    """Temporary directories beside ``out`` of builds that died (their process is gone)."""
    out = Path(out)
    for p in out.parent.glob(f".{glob.escape(out.name)}.*-*"):
        kind, _, pid = p.name[len(out.name) + 2:].partition("-")
        if kind in ("tmp", "old") and pid.isdigit() and not _alive(int(pid)) \
                and not p.is_symlink() and made_by(p) is not None:
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours from an earlier call in this process, which has finished
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system cannot."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # libc, as linked into Python
    except (OSError, AttributeError, TypeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                   ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    for d in sorted({p.parent for p in root.rglob("*")} | {root}):
        _fsync_dir(d)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
