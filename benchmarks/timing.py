"""The one timer of the benchmarks: the fastest of a few runs, and the share of the cores the run got.

A busy machine slows a run down and never speeds it up, so the fastest of ``repeats`` runs is the best estimate
of what the code costs; the core share (CPU time over wall time x threads) says how busy the machine was.
Benchmarks import it as ``from timing import best_of`` (a script's own folder is on ``sys.path``).
"""

from __future__ import annotations

import time

import torch


def best_of(fn, repeats: int = 3) -> tuple[float, float, object]:
    """Fastest wall time of ``repeats`` calls of ``fn``, the share of the cores it got, and the last output.

    Parameters
    ----------
    fn : callable
        Called with no arguments.
    repeats : int
        Number of runs, at least 1.

    Returns
    -------
    seconds : float
        The fastest run's wall time.
    core_share : float
        CPU time / (wall time x torch threads) of that run: near 1 on an idle machine.
    output : object
        What the last call returned.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` must be a positive int, got {repeats!r}")
    best, share, out = float("inf"), 0.0, None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if wall < best:
            best, share = wall, cpu / (max(wall, 1e-12) * torch.get_num_threads())
    return best, share, out
