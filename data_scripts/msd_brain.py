"""Medical Segmentation Decathlon Task01_BrainTumour: download, verify, extract safely, check against dataset.json.

Task01 holds 484 training cases of the BraTS 2016/2017 challenges (Simpson et al. 2019; CC BY-SA 4.0): one 4-D
NIfTI per case (240 x 240 x 155 x 4: FLAIR, T1w, T1gd, T2w) and a label volume (0 background, 1 oedema,
2 non-enhancing, 3 enhancing tumour). The archive (about 7.1 GB) is public on the MONAI mirror, whose MD5 is
published with MONAI's ``DecathlonDataset``. Usage::

    python -m data_scripts.msd_brain --dry-run                  # what would be fetched, no network
    python -m data_scripts.msd_brain                            # download to COURSE_DATA/msd_brain and prepare
    python -m data_scripts.msd_brain --archive Task01_BrainTumour.tar   # a copy you already have
    python -m data_scripts.msd_brain --check-cases 3            # also read 3 cases with the course's reader

The download resumes from a ``.part`` file and is renamed into place only after its MD5 matches. Extraction
(:func:`course_lib.data.archives.safe_extract`) checks every member first (no absolute paths, no ``..``, no links
or devices: the whole archive is refused, nothing written), skips the macOS ``._*`` resource files the archive
carries, and skips files already extracted with the right size (a re-run resumes). Prepared layout (what
:func:`course_lib.translation.real_data.read_msd_brain` reads)::

    COURSE_DATA/msd_brain/Task01_BrainTumour/dataset.json, imagesTr/BRATS_NNN.nii.gz, labelsTr/BRATS_NNN.nii.gz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path, PurePosixPath

from course_lib.config import data_dir
from course_lib.data.archives import safe_extract
from course_lib.data.download import download, file_hash

URL = "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task01_BrainTumour.tar"
MD5 = "240a19d752f0d9e9101544901065d872"  # as published in MONAI's DecathlonDataset (monai.apps.datasets)
TASK = "Task01_BrainTumour"
SIZE = "about 7.1 GB"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dest", type=Path, default=data_dir("msd_brain"), help="dataset folder (default: %(default)s)")
    p.add_argument("--archive", type=Path, help="use this already downloaded tar instead of downloading")
    p.add_argument("--url", default=URL, help="download from here instead (default: %(default)s)")
    p.add_argument("--md5", default=MD5, help="expected MD5 of the archive (default: the published one)")
    p.add_argument("--download-dir", type=Path, help="where the archive is downloaded (default: <dest>/downloads)")
    p.add_argument("--check-cases", type=int, default=0, help="read this many cases with the course's reader")
    p.add_argument("--delete-archive", action="store_true", help="delete the downloaded archive after extraction")
    p.add_argument("--dry-run", action="store_true", help="print what would be done, do nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def select(member: PurePosixPath) -> PurePosixPath | None:
    """Where a member goes under the dataset folder: ``Task01_BrainTumour/...``; None for anything else and for
    the macOS ``._*`` resource files the archive carries."""
    parts = [p for p in member.parts if p not in (".", "")]
    if TASK not in parts or member.name.startswith("._"):
        return None
    return PurePosixPath(*parts[parts.index(TASK):])


def extract(archive: Path, dest: Path, *, progress: bool = True) -> int:
    """Extract the Task01 members of ``archive`` under ``dest`` with :func:`course_lib.data.archives.safe_extract`
    (every member checked before anything is written; files already there with the right size kept)."""
    return safe_extract(archive, dest, select=select, progress=progress)


def check(task_dir: Path) -> tuple[list[str], str]:
    """Files named in dataset.json that are missing, and a one-line summary."""
    index = task_dir / "dataset.json"
    if not index.is_file():
        return [f"{index} missing"], "no dataset.json"
    meta = json.loads(index.read_text())
    missing = [str(task_dir / case[key]) for case in meta["training"] for key in ("image", "label")
               if not (task_dir / case[key]).is_file()]
    return missing, f"{len(meta['training'])} training cases, modalities {meta.get('modality')}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    progress = not args.no_progress
    folder = args.download_dir or args.dest / "downloads"
    archive = args.archive or folder / f"{TASK}.tar"
    if args.dry_run:
        if args.archive is None:
            print(f"would fetch {args.url} -> {archive} ({SIZE}), MD5 {args.md5}, resumable")
        print(f"would extract {TASK}/dataset.json, imagesTr/, labelsTr/ from {archive} into {args.dest / TASK}")
        return 0
    try:
        if args.archive is None:
            download(args.url, archive, checksum=args.md5, algorithm="md5", progress=progress)
        elif args.md5:
            actual = file_hash(archive, "md5")
            if actual != args.md5:
                raise ValueError(f"MD5 of {archive} is {actual}, expected {args.md5}: a different or damaged copy")
        written = extract(archive, args.dest, progress=progress)
        print(f"extracted {written} new files into {args.dest / TASK}")
        missing, summary = check(args.dest / TASK)
        if missing:
            print(f"error: {len(missing)} files listed in dataset.json are missing, e.g. {missing[:3]}",
                  file=sys.stderr)
            return 1
        print(summary)
        if args.check_cases:
            from course_lib.translation.real_data import read_msd_brain

            slices = read_msd_brain(args.dest / TASK, max_cases=args.check_cases, progress=progress)
            print(f"{args.check_cases} cases read: {len(slices)} slices, {int(slices.tumour.sum())} tumour slices")
        if args.delete_archive and args.archive is None:
            archive.unlink()
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
