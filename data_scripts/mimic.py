"""MIMIC-CXR-JPG v2.0.0: print the PhysioNet access steps, or verify and resize a copy you downloaded.

MIMIC-CXR-JPG (Johnson et al. 2019; 377,110 JPEGs of 65,379 patients, 227,827 studies, with CheXpert-labeler
and NegBio labels per study) needs a credentialed PhysioNet account, human-subjects training and a signed data
use agreement, so this script never downloads. Usage::

    python -m data_scripts.mimic                                         # the access steps
    python -m data_scripts.mimic --root physionet.org/files/mimic-cxr-jpg/2.0.0 --partial --resize 224

Verification reads ``mimic-cxr-2.0.0-metadata.csv.gz`` joined with ``-chexpert.csv.gz`` (and ``-split.csv.gz``)
through :func:`course_lib.chest_xray.labels.read_mimic`, prints images, patients, views and PA + lateral pairs,
checks that a seeded sample of the referenced JPEGs exists and decodes, and, when PhysioNet's
``SHA256SUMS.txt`` is in the folder, that those files and the tables match their published SHA-256.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.chest_xray.datasets import MIMIC_PREFIX, find_table
from course_lib.chest_xray.labels import read_mimic
from course_lib.config import data_dir
from course_lib.data.download import file_hash
from data_scripts import cxr_common as common

PAGE = "https://physionet.org/content/mimic-cxr-jpg/2.0.0/"
FILES = "https://physionet.org/files/mimic-cxr-jpg/2.0.0/"
TABLES = ("metadata", "chexpert", "split")


def instructions(root: Path) -> str:
    """Step-by-step text for getting MIMIC-CXR-JPG."""
    tables = " ".join(f"{FILES}{MIMIC_PREFIX}{t}.csv.gz" for t in TABLES)
    return f"""MIMIC-CXR-JPG v2.0.0 (PhysioNet credentialed access): nothing is downloaded by this script.

1. Create a PhysioNet account (https://physionet.org/register/) and apply for credentialed access
   (https://physionet.org/settings/credentialing/); complete the CITI "Data or Specimens Only Research" course
   and upload its certificate (https://physionet.org/settings/training/).
2. Sign the data use agreement on {PAGE}
3. Download (about 570 GB for everything; resumable: run the same command again after an interruption):
       wget -r -N -c -np --user <you> --ask-password {FILES}
   or first only the tables and one of the ten patient folders (p10 ... p19, ~10 % each):
       wget -N -c --user <you> --ask-password {tables}
       wget -r -N -c -np --user <you> --ask-password {FILES}files/p10/
   wget writes into ./physionet.org/files/mimic-cxr-jpg/2.0.0/; move it to {root} or pass it as --root.
4. Verify (and optionally write 224 px copies); --partial when you took only some patient folders:
       python -m data_scripts.mimic --root {root} --partial --resize 224
   Layout the course reads: {root}/{MIMIC_PREFIX}metadata.csv.gz, {MIMIC_PREFIX}chexpert.csv.gz,
   {MIMIC_PREFIX}split.csv.gz and {root}/files/p10/p10000032/s50414267/<dicom_id>.jpg
"""


def read_checksums(root: Path) -> dict[str, str]:
    """PhysioNet's ``SHA256SUMS.txt`` (``<sha256> <path>`` per line) as {path: digest}; empty when absent."""
    sums = root / "SHA256SUMS.txt"
    if not sums.is_file():
        return {}
    table = {}
    for line in sums.read_text().splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            table[parts[1].lstrip("*").removeprefix("./")] = parts[0].lower()
    return table


def checksum_problems(root: Path, paths, published: dict[str, str]) -> list[tuple[str, str]]:
    """(path, reason) for every file of ``paths`` whose SHA-256 differs from the published one."""
    problems = []
    for relative in paths:
        expected = published.get(relative)
        if expected is not None and (root / relative).is_file():
            actual = file_hash(root / relative, "sha256")
            if actual != expected:
                problems.append((relative, f"sha256 {actual[:12]}... differs from the published {expected[:12]}..."))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="your copy: the folder holding the tables and files/ "
                        "(without it: print the access steps)")
    common.add_prepare_arguments(parser)
    args = parser.parse_args(argv)
    if args.root is None:
        print(instructions(data_dir("mimic")))
        return 0
    try:
        metadata, labels = (find_table(args.root, (f"{MIMIC_PREFIX}{t}.csv",), "mimic") for t in TABLES[:2])
        try:
            split = find_table(args.root, (f"{MIMIC_PREFIX}split.csv",), "mimic")
        except FileNotFoundError:
            split = None
            print(f"note: {MIMIC_PREFIX}split.csv.gz not found: no official split column")
        frame = read_mimic(metadata, labels, split)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(common.summarize(frame, "MIMIC-CXR-JPG"))
    published = read_checksums(args.root)
    if published:
        tables = [str(t.relative_to(args.root)) for t in (metadata, labels, split) if t is not None]
        bad_tables = checksum_problems(args.root, tables, published)
        print(f"SHA256SUMS.txt: {len(published)} entries; tables {'OK' if not bad_tables else 'CORRUPT'}")
        for path, reason in bad_tables:
            print(f"  {path}: {reason}")
        code = common.verify_and_prepare(args.root, frame, args,
                                         extra_check=lambda paths: checksum_problems(args.root, paths, published))
        return 1 if bad_tables else code
    print("note: no SHA256SUMS.txt in the folder (wget -r fetches it): images are decoded but not checksummed")
    return common.verify_and_prepare(args.root, frame, args)


if __name__ == "__main__":
    sys.exit(main())
