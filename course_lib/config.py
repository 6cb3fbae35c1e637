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
COURSE_CHANNELS_LAST
    ``1`` trains convolution nets in the ``channels_last`` layout where that is faster (see
    :func:`memory_format`); default ``0``.
COURSE_SMOKE
    ``1`` in full mode: the FULL settings with images, epochs, steps and seeds cut to a handful (each
    chapter's ``SMOKE`` settings), so that every full-mode branch, real-data reader and full-size model runs
    once on a CPU in seconds. Its numbers mean nothing; ``make test`` uses it to keep full mode alive without a
    GPU. Ignored in quick mode.
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


def is_smoke() -> bool:
    """True in full mode with ``COURSE_SMOKE`` set to ``1`` (or ``true``/``yes``): full mode with sizes cut.

    Raises
    ------
    ValueError
        If ``COURSE_SMOKE`` is set to anything but ``0``/``1``/``true``/``false``/``yes``/``no``/empty.
    """
    requested = os.environ.get("COURSE_SMOKE", "").strip().lower()
    if requested not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"COURSE_SMOKE must be 0 or 1, got {requested!r}")
    return requested in ("1", "true", "yes") and mode() == "full"


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


def memory_format(on: torch.device | str | None = None, *, channels_last: bool | None = None) -> torch.memory_format:
    """The layout :func:`course_lib.training.fit` gives a model's 4-D weights on device ``on`` (default
    :func:`device`).

    ``torch.preserve_format`` (keep the model's layout: NCHW, PyTorch's default, unless you changed it), unless
    ``COURSE_CHANNELS_LAST=1`` asks for ``torch.channels_last`` (NHWC) and the convolutions run where that layout is
    native: on CUDA, or on a CPU with oneDNN, which otherwise converts every activation to NHWC and back. Activations
    follow the weights, so inputs need no conversion. A training step of the course's quick-mode networks ran 1.1-1.7x
    faster in ``channels_last`` on an AVX2 CPU and 1.1-1.4x on an AVX-512 one (``benchmarks/bench_memory_format.py``).
    It is not the default: the other summation order changes a trained net's numbers as another processor would, and
    two of the notebooks' "no effect" bounds did not hold under it (``benchmarks/claims_anywhere.py --settings
    channels-last``, README).

    ``channels_last=True`` or ``False`` decides for a caller whose numbers no claim depends on (the laptop recipe of
    ``benchmarks/vgg_cells_protocol.py``), whatever the environment says; ``None`` reads ``COURSE_CHANNELS_LAST``.
    Either way ``channels_last`` is only returned where it is native.

    Examples
    --------
    >>> memory_format("cpu")  # COURSE_CHANNELS_LAST unset
    torch.preserve_format
    >>> memory_format("cuda", channels_last=True)
    torch.channels_last
    """
    if channels_last is None:
        requested = os.environ.get("COURSE_CHANNELS_LAST", "0").strip().lower()
        if requested not in ("0", "1", "false", "true", "no", "yes"):
            raise ValueError(f"COURSE_CHANNELS_LAST must be 0 or 1, got {requested!r}")
        channels_last = requested in ("1", "true", "yes")
    elif not isinstance(channels_last, bool):
        raise TypeError(f"`channels_last` must be True, False or None, got {channels_last!r}")
    on = torch.device(on) if on is not None else device()
    native = on.type == "cuda" or (on.type == "cpu" and torch.backends.mkldnn.is_available()
                                        and torch.backends.mkldnn.enabled)
    return torch.channels_last if native and channels_last else torch.preserve_format


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


def pick(quick, full, smoke=None):
    """Return ``quick`` in quick mode and ``full`` in full mode (for sizes, epochs, ...).

    ``smoke``, when given, replaces ``full`` under ``COURSE_SMOKE=1`` (:func:`is_smoke`): the same full-mode
    code path with sizes cut.

    Examples
    --------
    >>> import os
    >>> os.environ.update(COURSE_MODE="full", COURSE_SMOKE="1")
    >>> pick(quick=40, full=200, smoke=8), pick(quick=40, full=200)
    (8, 200)
    >>> os.environ.update(COURSE_MODE="quick", COURSE_SMOKE="")
    >>> pick(quick=40, full=200, smoke=8)
    40
    """
    if is_quick():
        return quick
    return smoke if smoke is not None and is_smoke() else full
