"""Reading and copying a student's files without following a link.

A student controls every entry of their folder: a symlink to ``solutions/`` or ``gradebook.db``, a hard
link to a solution notebook, a fifo that blocks whoever opens it, a symlinked folder. The grader reads
a student's file only through :func:`read_regular` (``O_NOFOLLOW``, then ``fstat`` on the open file, so
nothing can be swapped in between) and copies only with :func:`copy_regular_tree`; anything else is
:class:`NotRegular`, with a reason the student and the instructor can read.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a fifo (named pipe)", stat.S_IFSOCK: "a socket",
         stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder"}


class NotRegular(Exception):
    """A path that is not a plain file of its own; ``str(error)`` says what it is."""


def kind(path: Path) -> str:
    """What ``path`` is, without following a link ("a symbolic link", "a fifo (named pipe)", ..., "a file")."""
    mode = os.lstat(path).st_mode
    return KINDS.get(stat.S_IFMT(mode), "a file" if stat.S_ISREG(mode) else "an unknown kind of file")


def _why_not(st: os.stat_result, name: str) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return f"{name} is {KINDS.get(stat.S_IFMT(st.st_mode), 'not a plain file')}, not a plain file"
    if st.st_nlink > 1:
        # a hard link shares its bytes with another file (a solution notebook, the gradebook): never read it
        return f"{name} is a hard link to another file ({st.st_nlink} names), not a file of its own"
    return None


def check(path: Path) -> None:
    """Raise :class:`NotRegular` unless ``path`` is a plain file with one name (no link is followed)."""
    path = Path(path)
    why = _why_not(os.lstat(path), path.name)
    if why:
        raise NotRegular(why)


def read_regular(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a plain file with one name, else :class:`NotRegular`.

    ``O_NOFOLLOW`` refuses a link, ``O_NONBLOCK`` keeps a fifo from blocking the open, and the checks run
    on the opened file itself, so a link swapped in after a check is never read.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        if os.path.islink(path):
            raise NotRegular(f"{path.name} is a symbolic link, not a plain file") from None
        raise NotRegular(f"{path.name} cannot be opened ({error.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        why = _why_not(st, path.name)
        if why:
            raise NotRegular(why)
        if max_bytes is not None and st.st_size > max_bytes:
            raise NotRegular(f"{path.name} is {st.st_size / 2**20:.0f} MB, over the {max_bytes // 2**20} MB limit")
        return f.read()


def odd_entries(folder: Path) -> list[str]:
    """Every entry under ``folder`` that is not a plain file or a real folder, as ``"name (what it is)"``.

    Nothing is followed: a link is reported, never entered.
    """
    reasons = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(root) / name
            what = kind(path)
            relative = path.relative_to(folder)
            if what not in ("a file", "a folder"):
                reasons.append(f"{relative} ({what})")
            elif what == "a file" and os.lstat(path).st_nlink > 1:
                reasons.append(f"{relative} (a hard link to another file)")
    return reasons


def copy_regular_tree(source: Path, target: Path) -> list[str]:
    """Copy the plain files and real folders of ``source`` into a fresh ``target``; return what was skipped.

    ``target`` is removed first (``shutil.rmtree`` unlinks a link, it never follows one). A link, a fifo,
    a device or a hard-linked file in ``source`` is skipped and named in the returned list.
    """
    source, target = Path(source), Path(target)
    shutil.rmtree(target, ignore_errors=True)
    if os.path.islink(source) or not source.is_dir():
        return [f"{source.name} is {kind(source)}, not a folder"] if os.path.lexists(source) else []
    skipped = []
    target.mkdir(parents=True)
    for root, dirs, files in os.walk(source, followlinks=False):
        here = Path(root)
        for name in sorted(dirs):
            if os.path.islink(here / name):
                skipped.append(f"{(here / name).relative_to(source)} is a symbolic link")
            else:
                (target / (here / name).relative_to(source)).mkdir()
        dirs[:] = [d for d in dirs if not os.path.islink(here / d)]
        for name in sorted(files):
            path = here / name
            try:
                data = read_regular(path)
            except NotRegular as error:
                skipped.append(str(error).replace(name, str(path.relative_to(source)), 1))
                continue
            (target / path.relative_to(source)).write_bytes(data)
    return skipped


def prune(folder: Path, keep: set[str]) -> list[str]:
    """Remove every entry of ``folder`` whose name is not in ``keep`` (links unlinked, never followed).

    Returns a note per removed entry: the grader wrote only the names in ``keep``, anything else came from
    student code, so it is neither merged into the course nor released to the student.
    """
    removed = []
    if not os.path.isdir(folder) or os.path.islink(folder):
        return removed
    for entry in sorted(Path(folder).iterdir()):
        if entry.name in keep and kind(entry) == "a file":
            continue
        removed.append(f"{entry.name} ({kind(entry)}) was not written by the grader: removed, never released")
        if kind(entry) == "a folder":
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink()
    return removed
