"""Run-time configuration: quick or full mode, the device, seeds and the data folder.

Every notebook starts with::

    from course_lib import config
    MODE = config.mode()          # "quick" on a laptop or under the autograder, "full" on a GPU
    DEVICE = config.device()
    config.seed_everything(0)

Environment variables
---------------------
COURSE_MODE
    ``quick`` or ``full``. Default: ``full`` when a CUDA GPU is visible, else ``quick``.
NBGRADER_EXECUTION
    Set by nbgrader while it executes notebooks. Forces ``quick``: autograding must
    never train for long, whatever ``COURSE_MODE`` says.
COURSE_DATA
    Folder with the real datasets (default ``~/course_data``).
COURSE_DEVICE
    Force a device (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

MODES = ("quick", "full")


def is_autograding() -> bool:
    """True while nbgrader executes the notebook (``NBGRADER_EXECUTION`` is set)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def mode() -> str:
    """The course mode, ``"quick"`` or ``"full"``.

    Raises
    ------
    ValueError
        If ``COURSE_MODE`` is set to anything else.

    Examples
    --------
    >>> import os
    >>> os.environ["COURSE_MODE"] = "quick"
    >>> mode()
    'quick'
    """
    if is_autograding():
        return "quick"
    requested = os.environ.get("COURSE_MODE", "").strip().lower()
    if requested == "":
        return "full" if torch.cuda.is_available() else "quick"
    if requested not in MODES:
        raise ValueError(f"COURSE_MODE must be one of {MODES}, got {requested!r}")
    return requested


def is_quick() -> bool:
    """Shorthand for ``mode() == "quick"``."""
    return mode() == "quick"


def device() -> torch.device:
    """The best available device: ``COURSE_DEVICE`` if set, else CUDA, else Apple MPS, else CPU."""
    forced = os.environ.get("COURSE_DEVICE", "").strip()
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch, and make CPU training reproducible.

    Parameters
    ----------
    seed : int
        The seed for every generator.
    deterministic : bool
        Ask PyTorch for deterministic algorithms where they exist (``warn_only`` so that
        GPU ops without a deterministic kernel still run) and disable cuDNN autotuning.

    Returns
    -------
    torch.Generator
        A CPU generator seeded with ``seed``, handy for ``DataLoader(generator=...)``.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"`seed` must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 — third-party code still draws from the legacy global RNG
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        # cuBLAS needs this to be deterministic; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def data_dir(*parts: str) -> Path:
    """Folder for real datasets: ``COURSE_DATA`` (default ``~/course_data``) joined with ``parts``.

    The folder is not created: readers raise a clear error naming it when data is missing.
    """
    # an empty COURSE_DATA counts as unset, like COURSE_MODE and COURSE_DEVICE (not as the current folder)
    root = Path(os.environ.get("COURSE_DATA") or Path.home() / "course_data").expanduser()
    return root.joinpath(*parts)


def pick(quick, full):
    """Return ``quick`` in quick mode and ``full`` in full mode (for sizes, epochs, ...)."""
    return quick if is_quick() else full
