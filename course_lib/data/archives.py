"""Verify and extract downloaded archives safely: one implementation for every data script.

An archive from the internet can try to write outside the folder it is extracted into (a member named
``../../.bashrc`` or ``/etc/passwd``, a symbolic link followed by a file written through it) — the "zip slip"
family. :func:`safe_extract` checks *every* member before it writes *anything*, and refuses the whole archive when
one member has an absolute path, ``..``, a drive letter, or is a link, device or FIFO. Each file is written to a
temporary ``.part`` name and renamed into place only when complete, so an interrupted extraction never leaves a
truncated file that looks valid; a re-run skips the files already there with the right size.

:func:`verify_archive` reads a zip's or tar's every member to its end (CRC for zip members, the gzip CRC for a
``.tar.gz``), so a truncated or corrupt download fails with the archive's name before anything is extracted.

Both handle zip and tar (plain, gzip, bzip2, xz), told apart by their bytes, not their names.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from tqdm.auto import tqdm

__all__ = ["Member", "verify_archive", "safe_extract", "member_path"]

Select = Callable[[PurePosixPath], "str | PurePosixPath | None"]  # member path -> path under dest, or None: skip
CHUNK = 1 << 20  # 1 MiB


@dataclass(frozen=True)
class Member:
    """One archive member, the same for zip and tar."""

    name: str  # as stored in the archive
    size: int  # bytes of the file (0 for folders)
    kind: str  # "file", "dir" or "special" (link, device, FIFO)
    open: Callable[[], IO[bytes]]  # a reader of the member's bytes (files only)
    special: str = ""  # what a special member is: "symbolic link", "hard link", "device or FIFO"


def _check_path(archive: str | os.PathLike, label: str = "archive") -> Path:
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{label} {archive} not found")
    return archive


@contextmanager
def _members(archive: Path) -> Iterator[list[Member]]:
    """The members of a zip or tar archive; ValueError naming the archive when it is neither or is corrupt."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = []
            for info in zf.infolist():
                mode = info.external_attr >> 16
                # zip writers often store permission bits only (no file type): that is a plain file
                special = stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR)
                kind = "dir" if info.is_dir() else "special" if special else "file"
                what = "symbolic link" if stat.S_ISLNK(mode) else "device or FIFO" if special else ""
                members.append(Member(info.filename, info.file_size, kind, lambda info=info: zf.open(info), what))
            yield members
        return
    try:
        is_tar = tarfile.is_tarfile(archive)
    except OSError:
        is_tar = False
    if not is_tar:
        raise ValueError(f"{archive} is neither a zip nor a tar archive (truncated or corrupt download?); "
                         "download it again")
    try:
        with tarfile.open(archive) as tar:
            infos = tar.getmembers()  # reads the whole index: a truncated archive fails here
            yield [Member(i.name, i.size if i.isfile() else 0,
                          "file" if i.isfile() else "dir" if i.isdir() else "special",
                          lambda i=i: tar.extractfile(i),
                          "symbolic link" if i.issym() else "hard link" if i.islnk() else "device or FIFO")
                   for i in infos]
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise ValueError(f"{archive}: corrupt or truncated archive ({error}); download it again") from error


def member_path(name: str) -> PurePosixPath:
    """The member's relative path, or ValueError when it is absolute, climbs out with ``..`` or has a drive.

    Examples
    --------
    >>> member_path("cells/001cell.png")
    PurePosixPath('cells/001cell.png')
    >>> member_path("../../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: unsafe member '../../etc/passwd' in archive: absolute path, '..' or a drive (path traversal); refusing
    """
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ValueError(f"unsafe member {name!r} in archive: absolute path, '..' or a drive (path traversal); "
                         "refusing")
    return path


def verify_archive(archive: str | os.PathLike, *, progress: bool = True) -> int:
    """Read every member of a zip or tar archive to its end; return the number of files.

    Parameters
    ----------
    archive : path
        A ``.zip`` or a (compressed) tar.
    progress : bool
        Show a progress bar.

    Returns
    -------
    int
        Number of files (folders and links not counted).

    Raises
    ------
    FileNotFoundError
        No file at ``archive``.
    ValueError
        Not an archive, truncated, or a member fails its CRC; names the archive (and the member for zip).
    """
    archive = _check_path(archive)
    files = 0
    try:
        with _members(archive) as members:
            for member in tqdm(members, desc=f"checking {archive.name}", unit="member", disable=not progress):
                if member.kind != "file":
                    continue
                try:
                    with member.open() as src:
                        while src.read(CHUNK):
                            pass
                except zipfile.BadZipFile as error:
                    raise ValueError(f"{archive}: member {member.name!r} is corrupt ({error}); "
                                     "download the archive again") from error
                files += 1
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{archive}: corrupt or truncated archive ({error}); download it again") from error
    return files


def _plan(members: list[Member], dest: Path, select: Select | None, duplicates: str) -> list[tuple[Member, Path]]:
    """Check every member, then list (member, target) for the files to write."""
    plan, seen = [], {}
    resolved_dest = dest.resolve()
    for member in members:
        path = member_path(member.name)  # raises on any unsafe name, selected or not
        if member.kind == "special":
            raise ValueError(f"unsafe member {member.name!r} in archive: {member.special}; refusing the archive")
        if member.kind == "dir":
            continue
        relative = path if select is None else select(path)
        if relative is None:
            continue
        target = dest.joinpath(*member_path(str(relative)).parts)
        if not target.resolve().is_relative_to(resolved_dest):
            raise ValueError(f"unsafe member {member.name!r}: it would be written outside {dest}")
        if target in seen:
            if duplicates == "first":
                continue
            raise ValueError(f"members {seen[target]!r} and {member.name!r} would both be written to {target}")
        seen[target] = member.name
        plan.append((member, target))
    return plan


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, *, select: Select | None = None,
                 duplicates: str = "error", progress: bool = True) -> int:
    """Extract a zip or tar archive into ``dest`` after checking every member; return the files written.

    Parameters
    ----------
    archive : path
        A ``.zip`` or a (compressed) tar.
    dest : path
        Folder to extract into (created).
    select : callable, optional
        ``select(member_path) -> relative target or None``: where a member goes under ``dest``, or None to skip it
        (to keep only some files, or to flatten the folders an archive wraps them in). Default: its own path.
    duplicates : {"error", "first"}
        Two members sent to the same file: an error, or keep the first (archives that ship a folder twice).
    progress : bool
        Show a progress bar.

    Returns
    -------
    int
        Files written; a file already at its target with the member's size is kept and not counted.

    Raises
    ------
    FileNotFoundError
        No file at ``archive``.
    ValueError
        A member with an absolute path, ``..`` or a drive letter, or a link, device or FIFO (nothing is written
        then); two members sent to one file with ``duplicates="error"``; a corrupt or truncated archive.

    Examples
    --------
    >>> import io, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(folder / "a.zip", "w") as zf:
    ...     zf.writestr("wrapped/cells/001.png", b"png bytes")
    >>> safe_extract(folder / "a.zip", folder / "out", select=lambda p: p.name, progress=False)
    1
    >>> (folder / "out" / "001.png").read_bytes()
    b'png bytes'
    """
    if duplicates not in ("error", "first"):
        raise ValueError(f"`duplicates` must be 'error' or 'first', got {duplicates!r}")
    archive, dest = _check_path(archive), Path(dest)
    try:
        with _members(archive) as members:
            plan = _plan(members, dest, select, duplicates)
            dest.mkdir(parents=True, exist_ok=True)
            written = 0
            for member, target in tqdm(plan, desc=f"extracting {archive.name}", unit="file", disable=not progress):
                if target.is_file() and target.stat().st_size == member.size:
                    continue  # a previous run wrote it
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".part")
                with member.open() as src, open(partial, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                os.replace(partial, target)  # complete files only ever appear under their real name
                written += 1
    except (tarfile.TarError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"{archive}: corrupt or truncated archive ({error}); download it again") from error
    return written
