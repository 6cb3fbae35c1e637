"""BraTS (Brain Tumor Segmentation challenge): the registration steps, then verify and prepare your copy.

BraTS data needs a registration and the challenge's data-use terms, so this script does not download. It prints the
steps, then checks a folder (or a ``.tar``/``.tar.gz``/``.zip`` archive you downloaded) in the challenge layout —
one folder per case with one NIfTI per modality and the segmentation::

    BraTS2021_00000/BraTS2021_00000_flair.nii.gz, _t1.nii.gz, _t1ce.nii.gz, _t2.nii.gz, _seg.nii.gz

and copies the complete cases to ``COURSE_DATA/brats`` (what :func:`course_lib.translation.real_data.read_brats`
reads). Usage::

    python -m data_scripts.brats                                # print the registration steps
    python -m data_scripts.brats --source ~/Downloads/BraTS2021_Training_Data
    python -m data_scripts.brats --archive ~/Downloads/BraTS2021_Training_Data.tar --check-cases 2

The Medical Segmentation Decathlon's Task01 (``data_scripts/msd_brain.py``) holds 484 BraTS 2016/2017 cases and is
public: use it when you cannot register.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from tqdm.auto import tqdm

from course_lib.config import data_dir
from course_lib.data.archives import safe_extract

MODALITIES = ("flair", "t1", "t1ce", "t2", "seg")
STEPS = """\
BraTS needs a registration; nothing is downloaded by this script. To get the data:
  1. BraTS 2021 (1,251 training cases): create a Synapse account (https://www.synapse.org), join the
     "RSNA-ASNR-MICCAI Brain Tumor Segmentation (BraTS) Challenge 2021" (Synapse ID syn25829067), accept its
     data-use terms, and download BraTS2021_Training_Data.tar from the challenge's Files tab.
     Older editions (BraTS 2018-2020) are distributed through the CBICA Image Processing Portal after a
     registration form (https://ipp.cbica.upenn.edu).
  2. Run this script again with --archive <the .tar> (or --source <the extracted folder>).
  3. Cite the BraTS papers named on the challenge page (Menze et al. 2015, Bakas et al. 2017, Baid et al. 2021).
No registration possible? `python -m data_scripts.msd_brain` fetches the public MSD Task01 (BraTS 2016/2017)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dest", type=Path, default=data_dir("brats"), help="prepared folder (default: %(default)s)")
    p.add_argument("--source", type=Path, help="a folder holding BraTS case folders (searched recursively)")
    p.add_argument("--archive", type=Path, help="a downloaded .tar, .tar.gz or .zip of the case folders")
    p.add_argument("--check-cases", type=int, default=0, help="read this many cases with the course's reader")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def case_files(case: Path) -> dict[str, Path | None]:
    """modality -> its file in a case folder (``.nii.gz`` or ``.nii``), None when missing."""
    found = {}
    for modality in MODALITIES:
        candidates = [case / f"{case.name}_{modality}{ext}" for ext in (".nii.gz", ".nii")]
        found[modality] = next((c for c in candidates if c.is_file()), None)
    return found


def find_cases(source: Path) -> list[Path]:
    """Folders under ``source`` that hold at least one ``<folder>_<modality>.nii[.gz]`` file."""
    return sorted({p.parent for p in source.rglob("*.nii*") if p.name.startswith(p.parent.name + "_")})


def prepare(source: Path, dest: Path, *, progress: bool = True) -> tuple[int, list[str]]:
    """Copy every complete case from ``source`` to ``dest``; return (cases copied or already there, problems)."""
    cases = find_cases(source)
    problems, done = [], 0
    for case in tqdm(cases, desc="cases", disable=not progress):
        files = case_files(case)
        missing = [m for m, f in files.items() if f is None]
        if missing:
            problems.append(f"{case.name}: missing {', '.join(f'{case.name}_{m}.nii.gz' for m in missing)}")
            continue
        for path in files.values():
            target = dest / case.name / path.name
            if not (target.is_file() and target.stat().st_size == path.stat().st_size):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        done += 1
    return done, problems


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.source is None and args.archive is None:
        print(STEPS)
        return 0
    progress = not args.no_progress
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = args.source
            if args.archive is not None:
                if not args.archive.is_file():
                    raise FileNotFoundError(f"archive {args.archive} not found")
                safe_extract(args.archive, Path(tmp), progress=progress)
                source = Path(tmp)
            if not source.is_dir():
                raise FileNotFoundError(f"source folder {source} not found")
            done, problems = prepare(source, args.dest, progress=progress)
        for problem in problems:
            print(f"incomplete case skipped: {problem}", file=sys.stderr)
        if done == 0:
            raise FileNotFoundError(f"no complete BraTS case (folders with {', '.join(MODALITIES)} files) found")
        print(f"{done} complete cases in {args.dest}")
        if args.check_cases:
            from course_lib.translation.real_data import read_brats

            cases = sorted(p.name for p in args.dest.iterdir() if p.is_dir())[: args.check_cases]
            slices = read_brats(args.dest, cases=cases, progress=progress)
            print(f"{len(cases)} cases read: {len(slices)} slices, {int(slices.tumour.sum())} tumour slices")
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
