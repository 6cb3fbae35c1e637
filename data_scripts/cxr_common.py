"""Helpers shared by the chest X-ray scripts (nih.py, padchest.py, chexpert.py, mimic.py).

Verification that referenced images exist and decode (archives themselves are verified and extracted by
:mod:`course_lib.data.archives`: nothing is written when any member is unsafe), and a resized
copy under ``<root>/resized_<S>/`` with the same relative paths, which
:mod:`course_lib.chest_xray.datasets` picks up by itself.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from course_lib.chest_xray.datasets import resized_root
from course_lib.chest_xray.images import load_radiograph
from course_lib.chest_xray.labels import LATERAL_VIEWS, pair_views

RESIZE_CHOICES = (224, 256)
SHOW = 20  # names listed per problem kind; the counts are always complete



def verify_images(root, paths, *, sample: int = 500, seed: int = 0, progress: bool = True) -> dict:
    """Check that images exist and decode.

    Parameters
    ----------
    root : path
        Dataset folder the ``paths`` are relative to.
    paths : sequence of str
    sample : int
        Check this many, drawn with a seeded generator; 0 checks all.

    Returns
    -------
    dict
        ``checked`` (int), ``paths`` (the checked paths), ``missing`` (list of str), ``corrupt`` (list of
        (str, reason)).
    """
    root, paths = Path(root), list(paths)
    if 0 < sample < len(paths):
        chosen = np.random.default_rng(seed).choice(len(paths), size=sample, replace=False)
        paths = [paths[i] for i in sorted(chosen)]
    missing, corrupt = [], []
    for relative in tqdm(paths, desc="checking images", unit="img", disable=not progress):
        try:
            load_radiograph(root / relative, size=None)
        except FileNotFoundError:
            missing.append(relative)
        except ValueError as error:
            corrupt.append((relative, str(error).removeprefix(f"{root / relative}: ")))
    return {"checked": len(paths), "paths": paths, "missing": missing, "corrupt": corrupt}


def _bits(path: Path) -> int:
    with Image.open(path) as image:  # header only
        return 16 if image.mode in ("I;16", "I;16B", "I;16L", "I") else 8


def _save(image: np.ndarray, source: Path, target: Path) -> None:
    """Write ``image`` in [0, 1] in the source's format: PNG keeps 8 or 16 bits, JPEG is re-encoded at q95."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")  # never leave a half-written file at the final name
    suffix = source.suffix.lower()
    if suffix == ".png" and _bits(source) == 16:
        Image.fromarray(np.round(image * 65535).astype(np.uint16)).save(partial, format="PNG")
    elif suffix == ".png":
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(partial, format="PNG")
    elif suffix in (".jpg", ".jpeg"):
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(partial, format="JPEG", quality=95)
    else:
        raise ValueError(f"no resized copy for {suffix} files (PNG and JPEG only)")
    os.replace(partial, target)


def resize_images(root, paths, size: int, *, progress: bool = True) -> dict:
    """Write every image of ``paths`` resized to ``size x size`` under ``<root>/resized_<size>/``.

    Images read with :func:`~course_lib.chest_xray.images.load_radiograph` (``fit="stretch"``, header window),
    written in the source's format and relative path. Existing outputs are skipped, so a re-run resumes.

    Returns
    -------
    dict
        ``written``, ``skipped`` (already there) and ``missing`` (int), ``failed`` (list of (path, reason)).
    """
    if size not in RESIZE_CHOICES:
        raise ValueError(f"`size` must be one of {RESIZE_CHOICES}, got {size}")
    root, out = Path(root), resized_root(root, size)
    counts = {"written": 0, "skipped": 0, "missing": 0, "failed": []}
    for relative in tqdm(list(paths), desc=f"resizing to {size}", unit="img", disable=not progress):
        source, target = root / relative, out / relative
        if target.is_file():
            counts["skipped"] += 1
            continue
        try:
            _save(load_radiograph(source, size), source, target)
            counts["written"] += 1
        except FileNotFoundError:
            counts["missing"] += 1
        except (ValueError, OSError) as error:
            counts["failed"].append((relative, str(error)))
    return counts


def _listing(items, show: int = SHOW) -> str:
    lines = [f"    {item}" if isinstance(item, str) else f"    {item[0]}: {item[1]}" for item in items[:show]]
    if len(items) > show:
        lines.append(f"    ... and {len(items) - show} more")
    return "\n".join(lines)


def summarize(frame, name: str) -> str:
    """Counts a student wants to see: images, patients, studies, views and PA + lateral pairs."""
    paired = pair_views(frame, labels=[])
    views = ", ".join(f"{view} {n}" for view, n in frame["view"].value_counts().items())
    both = int((paired["has_pa"] & paired["has_lateral"]).sum())
    return (f"{name}: {len(frame)} images, {frame['patient_id'].nunique()} patients, "
            f"{frame.groupby(['patient_id', 'study_id']).ngroups} studies\n"
            f"views: {views}\n"
            f"studies with a PA and a lateral ({'/'.join(LATERAL_VIEWS)}) image: {both}")


def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every script's verify-and-prepare step."""
    parser.add_argument("--sample", type=int, default=500,
                        help="check that this many referenced images exist and decode; 0: all (default: %(default)s)")
    parser.add_argument("--partial", action="store_true",
                        help="a partial copy on purpose: report missing images without failing")
    parser.add_argument("--resize", type=int, choices=RESIZE_CHOICES,
                        help="also write every image resized to SIZE x SIZE under ROOT/resized_SIZE/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def verify_and_prepare(root, frame, args, *, extra_check=None) -> int:
    """Verify a sample of ``frame``'s images, print what was found, optionally resize; return the exit code.

    ``extra_check(paths)``, if given, returns more ``(path, reason)`` problems for the sampled paths (checksums).
    """
    progress = not args.no_progress
    result = verify_images(root, frame["path"], sample=args.sample, progress=progress)
    missing, corrupt = result["missing"], list(result["corrupt"])
    if extra_check is not None:
        undecodable = {p for p, _ in corrupt}
        present = [p for p in result["paths"] if p not in missing]
        corrupt += [item for item in extra_check(present) if item[0] not in undecodable]
    print(f"checked {result['checked']} of {len(frame)} referenced images: {len(missing)} missing, "
          f"{len(corrupt)} corrupt")
    if missing:
        print(f"  missing:\n{_listing(missing)}")
    if corrupt:
        print(f"  corrupt:\n{_listing(corrupt)}")
    if args.resize:
        counts = resize_images(root, frame["path"], args.resize, progress=progress)
        print(f"resized to {args.resize}: {counts['written']} written, {counts['skipped']} already there, "
              f"{counts['missing']} missing, {len(counts['failed'])} failed -> {resized_root(root, args.resize)}")
        if counts["failed"]:
            print(f"  failed:\n{_listing(counts['failed'])}")
        corrupt = [*corrupt, *counts["failed"]]
    if corrupt or (missing and not args.partial):
        hint = "" if args.partial or not missing else " (pass --partial if the copy is incomplete on purpose)"
        print(f"verification FAILED: download the files named above again{hint}", file=sys.stderr)
        return 1
    print("verification OK")
    return 0
