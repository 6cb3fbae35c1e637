"""Shared steps of the chapter-3 counting data scripts: fetch, verify the zip, extract safely, check the images.

Each script (``vgg_cells.py``, ``bbbc005.py``, ``bone_marrow.py``, ``adipocyte.py``) names its archives and which
members go where; everything else lives here so the four behave the same:

* downloads go through :func:`course_lib.data.download.download` (``.part`` file, HTTP resume, progress bar);
  none of these sets publishes a checksum, so the script prints the archive's SHA-256 for your records and checks
  the *contents* instead: every member's CRC, the expected set of files, and that every image decodes;
* extraction checks every member name first and refuses the whole archive when one is absolute, contains ``..``
  or a drive letter, or is a symbolic link; nothing is written then;
* members are selected by file name and written flat into the layout the readers in
  :mod:`course_lib.counting.datasets` expect, whatever folders the archive wraps them in.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from tqdm.auto import tqdm

from course_lib.counting.datasets import read_image
from course_lib.data.archives import safe_extract, verify_archive
from course_lib.data.download import download, file_hash

Select = Callable[[PurePosixPath], "str | None"]  # archive member -> path relative to dest, or None to skip


class Archive(NamedTuple):
    url: str
    filename: str  # name of the downloaded file in the download folder
    size: str  # what the user should expect, for the dry run ("about 1.8 GB", "not published")


def parser(description: str, default_dest: Path) -> argparse.ArgumentParser:
    """The options every counting script shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dest", type=Path, default=default_dest, help="dataset folder (default: %(default)s)")
    p.add_argument("--archive", type=Path, action="append",
                   help="use this already downloaded zip instead of downloading (repeat for several)")
    p.add_argument("--download-dir", type=Path, help="where archives are downloaded (default: <dest>/downloads)")
    p.add_argument("--dry-run", action="store_true", help="print what would be fetched and prepared, do nothing")
    p.add_argument("--skip-crc", action="store_true", help="skip the CRC check of every zip member (faster)")
    p.add_argument("--skip-decode", action="store_true", help="do not decode every image after extraction")
    p.add_argument("--delete-archive", action="store_true", help="delete downloaded archives after extraction")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def fetch(archives: Iterable[Archive], folder: Path, *, progress: bool = True) -> list[Path]:
    """Download every archive into ``folder`` (resuming a ``.part`` file) and return the paths."""
    paths = []
    for archive in archives:
        path = download(archive.url, folder / archive.filename, progress=progress)
        print(f"{path}: sha256 {file_hash(path)} (no published checksum: contents are verified instead)")
        paths.append(path)
    return paths


def dry_run(archives: Iterable[Archive], folder: Path, dest: Path, layout: str) -> None:
    """What a real run would do, one line per step; touches neither the network nor the disk."""
    for archive in archives:
        print(f"would fetch {archive.url} -> {folder / archive.filename} ({archive.size})")
    print(f"would extract {layout} into {dest}")



def corrupt_images(paths: Iterable[Path], *, progress: bool = True) -> list[str]:
    """Decode every image; return ``"<name>: <why>"`` for each that does not decode."""
    bad = []
    for path in tqdm(list(paths), desc="decoding", unit="image", disable=not progress):
        try:
            read_image(path)
        except (ValueError, FileNotFoundError) as error:
            bad.append(f"{path.name}: {error}")
    return bad


def name_missing(expected: Iterable[str], present: Iterable[str], what: str, limit: int = 10) -> list[str]:
    """A problem line naming the expected files that are not there (empty list when none is missing)."""
    missing = sorted(set(expected) - set(present))
    if not missing:
        return []
    more = f" and {len(missing) - limit} more" if len(missing) > limit else ""
    return [f"{len(missing)} {what} missing: {', '.join(missing[:limit])}{more}"]


def run(args: argparse.Namespace, archives: list[Archive], select: Select, layout: str,
        check: Callable[[Path, bool, bool], tuple[list[str], str]]) -> int:
    """The main flow shared by the scripts: dry run, or (download and) verify, extract, check; exit status."""
    folder = args.download_dir or args.dest / "downloads"
    if args.dry_run:
        if args.archive:
            for path in args.archive:
                print(f"would verify {path}")
            print(f"would extract {layout} into {args.dest}")
        else:
            dry_run(archives, folder, args.dest, layout)
        return 0
    progress = not args.no_progress
    try:
        paths = args.archive or fetch(archives, folder, progress=progress)
        for path in paths:
            if args.skip_crc:
                print(f"{path}: CRC check skipped")
            else:
                n = verify_archive(path, progress=progress)
                print(f"{path}: {n} files, all CRCs OK")
            written = safe_extract(path, args.dest, select=select, progress=progress)
            print(f"extracted {written} files from {path.name} to {args.dest}")
        problems, summary = check(args.dest, not args.skip_decode, progress)
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.delete_archive and not args.archive:
        for path in paths:
            path.unlink(missing_ok=True)  # only what this run downloaded; never a copy the user passed in
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return 1
    print(summary)
    return 0
