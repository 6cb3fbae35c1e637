"""Download a file safely: to a temporary ``.part`` name, resumable, verified, then renamed.

A half-written file never sits at the final path looking valid: bytes go to ``<dest>.part``,
an interrupted download resumes from there (HTTP ``Range``), the checksum is verified, and
only then is the file renamed into place. A checksum mismatch deletes the ``.part`` file and
raises, naming both hashes. Used by the scripts in ``data_scripts/``; never at import or in tests
against the network (tests serve fixtures from localhost).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["file_hash", "download"]

CHUNK = 1 << 20  # 1 MiB


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (works for multi-GB archives)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(path: Path, expected: str | None, algorithm: str, name: str) -> None:
    if expected is None:
        return
    actual = file_hash(path, algorithm)
    if actual.lower() != expected.lower():
        path.unlink(missing_ok=True)
        raise ValueError(f"{algorithm} of downloaded {name} is {actual}, expected {expected}; "
                         "the partial file was deleted, run the script again")


def download(url: str, dest: str | os.PathLike, *, checksum: str | None = None, algorithm: str = "sha256",
             resume: bool = True, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there.

    Parameters
    ----------
    url : str
        http(s) or file URL.
    dest : path
        Final file path; parent folders are created.
    checksum : str, optional
        Expected hex digest; verified before the file is renamed into place (and for an existing ``dest``).
    algorithm : str
        ``hashlib`` name of the checksum (``"sha256"``, ``"md5"``).
    resume : bool
        Continue an interrupted download from ``<dest>.part`` with an HTTP Range request.
    progress : bool
        Show a tqdm bar.
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ValueError
        Checksum mismatch (the partial file is removed).
    ConnectionError
        The server answered with an error or could not be reached; names the URL.
    """
    dest = Path(dest)
    if dest.is_file():
        if checksum is None or file_hash(dest, algorithm).lower() == checksum.lower():
            return dest
        dest.unlink()  # a stale or corrupt copy: fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if (resume and part.is_file()) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the .part file is already complete
            _check_hash(part, checksum, algorithm, dest.name)
            os.replace(part, dest)
            return dest
        raise ConnectionError(f"downloading {url} failed: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise ConnectionError(f"cannot reach {url}: {getattr(error, 'reason', error)}") from error
    with response:
        resumed = offset and getattr(response, "status", 200) == 206
        if not resumed:
            offset = 0  # the server ignored Range: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else None
        with open(part, "ab" if resumed else "wb") as f, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, disable=not progress
        ) as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                f.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size != total:
        raise ConnectionError(f"downloading {url} stopped at {part.stat().st_size} of {total} bytes; "
                              "run again to resume")
    _check_hash(part, checksum, algorithm, dest.name)
    os.replace(part, dest)
    return dest
