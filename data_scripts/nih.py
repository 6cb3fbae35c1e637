"""NIH ChestX-ray14: download the 12 public image archives, check them, extract them safely, verify, resize.

The dataset (Wang et al. 2017; 112,120 frontal PNGs of 30,805 patients, 1024 x 1024, 8-bit; about 42 GB
compressed) is public, without registration, on the NIH Clinical Center's Box folder
https://nihcc.app.box.com/v/ChestXray-NIHCC. The archive links below are the ones NIH publishes in that
folder's ``batch_download_zips.py``; the MD5 sums are those NIH publishes in ``FAQ_CHESTXRAY.pdf`` (Q07).
Usage::

    python -m data_scripts.nih --dry-run               # what would be fetched, no network
    python -m data_scripts.nih                         # all 12 archives into COURSE_DATA/nih (resumes)
    python -m data_scripts.nih --archives 1 2 --partial  # a first 10 % of the images, to start with
    python -m data_scripts.nih --no-download --resize 224  # an existing copy: verify and write 224 px PNGs

Each archive goes through :func:`course_lib.data.download.download` (``.part`` file, HTTP resume, MD5
check), then every member is read once (gzip CRC) and extracted after a safety check (no absolute paths,
``..`` or links), into ``<dest>/images/``; the archive is deleted afterwards unless ``--keep-archives``.
``Data_Entry_2017_v2020.csv`` (labels and views) has no stable direct link on Box: it is copied from the
copy that ships with the ``torchxrayvision`` package when installed, or from ``--csv`` (downloaded by hand
from the Box folder). NIH has only PA and AP views; there are no laterals.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from pathlib import Path

from course_lib.chest_xray.labels import read_nih
from course_lib.config import data_dir
from course_lib.data.archives import safe_extract, verify_archive
from course_lib.data.download import download
from course_lib.data.sample_images import cxr_metadata_csv
from data_scripts import cxr_common as common

BOX_FOLDER = "https://nihcc.app.box.com/v/ChestXray-NIHCC"
CSV_NAME = "Data_Entry_2017_v2020.csv"
# (archive name, Box static link from batch_download_zips.py, MD5 from FAQ_CHESTXRAY.pdf Q07)
ARCHIVES = [
    ("images_001.tar.gz", "https://nihcc.box.com/shared/static/vfk49d74nhbxq3nqjg0900w5nvkorp5c.gz",
     "fe8ed0a6961412fddcbb3603c11b3698"),
    ("images_002.tar.gz", "https://nihcc.box.com/shared/static/i28rlmbvmfjbl8p2n3ril0pptcmcu9d1.gz",
     "ab07a2d7cbe6f65ddd97b4ed7bde10bf"),
    ("images_003.tar.gz", "https://nihcc.box.com/shared/static/f1t00wrtdk94satdfb9olcolqx20z2jp.gz",
     "2301d03bde4c246388bad3876965d574"),
    ("images_004.tar.gz", "https://nihcc.box.com/shared/static/0aowwzs5lhjrceb3qp67ahp0rd1l1etg.gz",
     "9f1b7f5aae01b13f4bc8e2c44a4b8ef6"),
    ("images_005.tar.gz", "https://nihcc.box.com/shared/static/v5e3goj22zr6h8tzualxfsqlqaygfbsn.gz",
     "1861f3cd0ef7734df8104f2b0309023b"),
    ("images_006.tar.gz", "https://nihcc.box.com/shared/static/asi7ikud9jwnkrnkj99jnpfkjdes7l6l.gz",
     "456b53a8b351afd92a35bc41444c58c8"),
    ("images_007.tar.gz", "https://nihcc.box.com/shared/static/jn1b4mw4n6lnh74ovmcjb8y48h8xj07n.gz",
     "1075121ea20a137b87f290d6a4a5965e"),
    ("images_008.tar.gz", "https://nihcc.box.com/shared/static/tvpxmn7qyrgl0w8wfh9kqfjskv6nmm1j.gz",
     "b61f34cec3aa69f295fbb593cbd9d443"),
    ("images_009.tar.gz", "https://nihcc.box.com/shared/static/upyy3ml7qdumlgk2rfcvlb9k6gvqq2pj.gz",
     "442a3caa61ae9b64e61c561294d1e183"),
    ("images_010.tar.gz", "https://nihcc.box.com/shared/static/l6nilvfa9cg3s28tqv1qc1olm3gnz54p.gz",
     "09ec81c4c31e32858ad8cf965c494b74"),
    ("images_011.tar.gz", "https://nihcc.box.com/shared/static/hhq8fkdgvcari67vfhs7ppg2w6ni4jze.gz",
     "499aefc67207a5a97692424cf5dbeed5"),
    ("images_012.tar.gz", "https://nihcc.box.com/shared/static/ioqwiy20ihqwyr8pf4c24eazhh281pbu.gz",
     "dc9fda1757c2de0032b63347a7d2895c"),
]


def _done_marker(dest: Path, name: str) -> Path:
    return dest / f".{name}.extracted"  # lets a re-run skip an archive that was extracted and deleted


def _shipped_csv() -> Path | None:
    try:
        return cxr_metadata_csv("nih")
    except FileNotFoundError:
        return None


def install_csv(dest: Path, csv: Path | None) -> Path | None:
    """Put ``Data_Entry_2017_v2020.csv`` in ``dest``: keep one that is there, else copy ``csv`` or the shipped one."""
    target = dest / CSV_NAME
    if target.is_file():
        return target
    source = csv or _shipped_csv()
    if source is None:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if str(source).endswith(".gz") else open
    with opener(source, "rb") as src, open(target.with_name(CSV_NAME + ".part"), "wb") as out:
        shutil.copyfileobj(src, out)
    target.with_name(CSV_NAME + ".part").replace(target)
    print(f"labels: {source} -> {target}")
    return target


def fetch(numbers, dest: Path, *, keep: bool = False, progress: bool = True) -> None:
    """Download, check and extract the archives ``numbers`` (1..12) into ``dest``; skip those already done."""
    for number in numbers:
        name, url, md5 = ARCHIVES[number - 1]
        if _done_marker(dest, name).is_file():
            print(f"{name}: already extracted, skipped")
            continue
        archive = dest / "archives" / name
        print(f"{name}: downloading {url}")
        download(url, archive, checksum=md5, algorithm="md5", progress=progress)
        files = verify_archive(archive, progress=progress)
        written = safe_extract(archive, dest, progress=progress)
        print(f"{name}: MD5 OK, {files} files, {written} extracted to {dest / 'images'}")
        _done_marker(dest, name).touch()
        if not keep:
            archive.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=data_dir("nih"), help="dataset folder (default: %(default)s)")
    parser.add_argument("--archives", type=int, nargs="+", metavar="N", help="which of the 12 archives (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be downloaded, fetch nothing")
    parser.add_argument("--no-download", action="store_true", help="only verify (and resize) an existing copy")
    parser.add_argument("--keep-archives", action="store_true", help="keep the .tar.gz files after extraction")
    parser.add_argument("--csv", type=Path, help=f"a downloaded {CSV_NAME} (default: the copy torchxrayvision ships)")
    common.add_prepare_arguments(parser)
    args = parser.parse_args(argv)
    everything = list(range(1, len(ARCHIVES) + 1))
    args.archives = args.archives or everything
    bad = [n for n in args.archives if not 1 <= n <= len(ARCHIVES)]
    if bad:
        parser.error(f"--archives must be between 1 and {len(ARCHIVES)}, got {bad}")

    if args.dry_run:
        for number in args.archives:
            name, url, md5 = ARCHIVES[number - 1]
            done = "  (already extracted)" if _done_marker(args.dest, name).is_file() else ""
            print(f"would fetch {url} -> {args.dest / 'archives' / name} (md5 {md5}){done}")
        source = args.csv or _shipped_csv() or f"{BOX_FOLDER} (by hand, then --csv)"
        print(f"would copy {CSV_NAME} from {source} -> {args.dest / CSV_NAME}")
        return 0
    try:
        csv = install_csv(args.dest, args.csv)
        if not args.no_download:
            fetch(args.archives, args.dest, keep=args.keep_archives, progress=not args.no_progress)
        if csv is None:
            print(f"error: {CSV_NAME} not found: download it from {BOX_FOLDER} and pass --csv PATH "
                  "(or pip install torchxrayvision, which ships a copy)", file=sys.stderr)
            return 1
        frame = read_nih(csv)
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(common.summarize(frame, "NIH ChestX-ray14"))
    on_disk = {p.name for p in (args.dest / "images").glob("*.png")}  # one listing: cheaper than 112k stats
    present = frame["path"].str.removeprefix("images/").isin(on_disk).to_numpy()
    print(f"{int(present.sum())} of {len(frame)} images on disk in {args.dest / 'images'}")
    code = common.verify_and_prepare(args.dest, frame[present], args)  # decode a sample of those on disk
    subset = sorted(set(args.archives)) != everything
    if not present.all() and not (args.partial or subset):  # with a subset of archives, gaps are expected
        print(f"{int((~present).sum())} images are missing: run again to resume, or pass --partial",
              file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
