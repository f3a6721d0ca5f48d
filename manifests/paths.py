"""The workdir boundary: where a name that came from the network may live on disk.

Item identifiers, file names and clip ids arrive from a remote archive and are hostile until
checked: ``../../x``, ``/etc/passwd``, ``evil/victim`` beside ``victim``, ``Victim`` beside
``victim`` (one directory on a case-insensitive disk), a NUL, ``C:\\x``, 300 bytes of emoji.
Everything written under a name like that goes through ``remote_path``, which maps each name to
exactly one path component, deterministically (a resumed crawl finds its files again), so that:

- the path stays inside its root, whatever the name holds and whatever symlinks are already
  under the root;
- distinct names never share a path, on case-sensitive and case-insensitive disks alike;
- each component fits every common file system (with room for the ``.name.part`` and
  ``.name.tmp`` files written beside it).

An ordinary name (lower-case ASCII letters, digits, ``-_.`` and inner spaces) maps to itself;
any other name keeps a readable, sanitised prefix followed by ``~`` and a hash of the original.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import unicodedata
from pathlib import Path

# 255 bytes is the usual limit for one component; what is left covers the ``.`` + ``.part``
# and ``.tmp`` of the temporary files written beside a final name.
MAX_COMPONENT_BYTES = 200
MAX_PATH_BYTES = 3072  # well under PATH_MAX (4096) with a long workdir in front
# 128 bits of the original name's sha256, base32: two names that sanitise alike never share a
# path unless someone finds a 128-bit collision (40 bits fell to a birthday search in seconds).
HASH_BYTES = 16
# Plain names: nothing to sanitise and nothing case-insensitive or Windows-special about them.
# No capitals (``Victim`` and ``victim`` are one name to macOS and Windows), no ``~`` (so a
# plain name can never look like a sanitised one), no leading dot or space (hidden files and
# the temporaries beside a download), no trailing dot or space (Windows drops them).
PLAIN = re.compile(r"[a-z0-9_-](?:[a-z0-9._ -]*[a-z0-9_-])?")
# Names Windows reserves for devices, with any extension.
RESERVED = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?", re.IGNORECASE)
EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}$")


class UnsafePath(ValueError):
    """A remote name that cannot be given a path (not text, or the path would be too long)."""


class NotAWorkdir(FileNotFoundError):
    """The directory given as a workdir is missing or was never crawled into."""


def safe_name(name: str) -> str:
    """One remote name as one path component; the same name always gives the same component.

    A plain name is kept as it is. Any other name becomes a sanitised prefix (NFKC, every
    character that is not a letter, digit, ``-``, ``_``, ``.`` or space replaced with ``_``),
    ``~`` and a hash of the original, then the original's extension, so a recording keeps
    its ``.mp3``. Two different names never share a component: plain names are distinct as
    they are, and a sanitised name carries the hash of its original and a ``~`` no plain name
    has.
    """
    if not isinstance(name, str):
        raise UnsafePath(f"a remote name must be text, not {type(name).__name__}: {name!r}")
    if (PLAIN.fullmatch(name) and not RESERVED.fullmatch(name)
            and len(name) <= MAX_COMPONENT_BYTES):
        return name
    raw = name.encode("utf-8", "surrogatepass")
    tag = base64.b32encode(hashlib.sha256(raw).digest()[:HASH_BYTES]).decode().rstrip("=").lower()
    text = "".join(c if c.isalnum() or c in "-_. " else "_"
                   for c in unicodedata.normalize("NFKC", name))
    ext = m.group(0) if (m := EXTENSION.search(text)) else ""
    stem = text[: len(text) - len(ext)].strip(". ") or "_"
    room = MAX_COMPONENT_BYTES - len(f"~{tag}{ext}")
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore")  # cut at a character boundary
    return f"{stem}~{tag}{ext}"


def remote_path(root: Path, *names: str) -> Path:
    """``root`` joined with each remote name as one component (``safe_name``), proved inside
    ``root``: resolving any symlink already under it must not lead out of it.

    ``root`` itself is the caller's (the workdir's ``raw``, ``clips``, ...): if the user made
    it a symlink to another disk, that is where the files go. Raises ``UnsafePath``.
    """
    root = Path(root)
    path = root.joinpath(*(safe_name(n) for n in names))
    if len(os.fsencode(path.absolute())) > MAX_PATH_BYTES:
        raise UnsafePath(f"path for {names!r} would be longer than {MAX_PATH_BYTES} bytes")
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise UnsafePath(f"{path} leads outside {real_root} (a symlink under it points out)")
    return path


def existing_workdir(workdir: Path) -> Path:
    """``workdir`` if it holds a crawl's catalog; otherwise a one-line reason, and nothing is
    created (a mistyped path must not become a new, empty workdir)."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise NotAWorkdir(f"workdir {workdir} does not exist (run `speechcrawl crawl "
                                f"--workdir {workdir}` first, or check the path)")
    if not (workdir / "catalog.sqlite").is_file():
        raise NotAWorkdir(f"{workdir} is not a speechcrawl workdir: it has no "
                                "catalog.sqlite (run `speechcrawl crawl` into it first)")
    return workdir
