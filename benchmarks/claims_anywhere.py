"""Do the notebooks' claims hold on any machine? Build them with torch's CPU kernels of three processors and compare.

Floating-point results depend on the processor: torch picks vectorised CPU kernels for the vector unit it finds
(AVX-512, AVX2, or the portable ``default`` ones), and a different summation order changes the last bits, then a
training run, then a seed's result. ``ATEN_CPU_CAPABILITY`` chooses the kernels, so one machine can compute what
another would. The convolutions run in oneDNN, which picks its own kernels: ``ONEDNN_MAX_CPU_ISA`` caps them. The
settings:

* ``native``: nothing set, the best kernels this CPU has; ``avx2`` and ``default``: ``ATEN_CPU_CAPABILITY``;
* ``sse41``: a processor without AVX, ATen's ``default`` kernels and oneDNN capped at SSE4.1 (the slowest);
* ``channels-last``: ``COURSE_CHANNELS_LAST=1`` (``course_lib.config.memory_format``), the same maths with the
  convolutions' activations in NHWC order; the course can make it its default once every claim holds under it.

This script runs the notebooks (quick mode, one thread per process, two notebooks at a time) once per
setting, reads the records of each build, and prints for every claim of ``tests/notebooks/claims.py`` its margin in
each build: the gap, and the gap in units of the spread it is judged against (for ``mean > sd`` claims the sd of
the paired gain; for ``a_mean > b_mean`` the two sds combined; for a ``Within`` claim the sd of the gain). It exits
non-zero when any claim fails in any build::

    .venv/bin/python benchmarks/claims_anywhere.py                        # all notebooks, three builds (~45 min)
    .venv/bin/python benchmarks/claims_anywhere.py --only ch02a ch02c     # some notebooks
    .venv/bin/python benchmarks/claims_anywhere.py --reuse                # re-read builds/ without running
    .venv/bin/python benchmarks/claims_anywhere.py --settings native sse41 channels-last

The ``default`` kernels run about 1.7x slower; every cell has the course's own limit (``run_course``'s quick-mode
limit, 30 min), so a slow setting is measured, not cut off. Builds go to
``build/claims/<setting>/``; the last line per setting is ``claims_holding_<setting>: <held> of <total>``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "notebooks"))
from claims import CLAIMS, margins  # noqa: E402

SETTINGS = {  # name -> the environment it sets (the variables of every setting are cleared first)
    "native": {},  # the best kernels this CPU has
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "default": {"ATEN_CPU_CAPABILITY": "default"},
    "sse41": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "channels-last": {"COURSE_CHANNELS_LAST": "1"},
}
DEFAULT_SETTINGS = ("native", "avx2", "default")


def build(setting: str, notebooks: list[Path], out: Path, jobs: int) -> float:
    """Run ``notebooks`` into ``out`` with the kernels of ``setting``; returns the wall time."""
    env = {**os.environ, "COURSE_MODE": "quick", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    for variables in SETTINGS.values():
        for name in variables:
            env.pop(name, None)
    for path in notebooks:  # a notebook that fails this time must not be read from last time
        (out / f"{path.stem}.results.json").unlink(missing_ok=True)
    env.update(SETTINGS[setting])
    # no --timeout: the runner's own per-cell limit, so a cell that the course would finish is not cut off here
    cmd = [sys.executable, "-m", "course_lib.tools.run_course", "--out", str(out), "--jobs", str(jobs),
           "--keep-going", *map(str, notebooks)]
    start = time.perf_counter()
    code = subprocess.call(cmd, env=env, cwd=ROOT)
    if code:
        print(f"{setting}: run_course exited with {code} (a notebook failed; its claims are missing)", flush=True)
    return time.perf_counter() - start


def read_values(out: Path) -> dict[str, dict[str, float]]:
    """``{notebook stem: {record name: value}}`` of one build (its per-notebook ``<stem>.results.json``)."""
    return {path.name[: -len(".results.json")]: {r["name"]: r["value"] for r in json.loads(path.read_text())}
            for path in sorted(out.glob("*.results.json"))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="notebook prefixes, e.g. ch02a ch04b")
    parser.add_argument("--settings", nargs="*", default=list(DEFAULT_SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="read existing builds instead of running")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "claims")
    args = parser.parse_args(argv)
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.only:
        notebooks = [p for p in notebooks if any(p.stem.startswith(o) for o in args.only)]
    builds = {}
    for setting in args.settings:
        if not args.reuse:
            seconds = build(setting, notebooks, args.out / setting, args.jobs)
            print(f"{setting}: built {len(notebooks)} notebooks in {seconds:.0f} s", flush=True)
        builds[setting] = read_values(args.out / setting)
    failures = 0
    held = dict.fromkeys(args.settings, 0)
    total = 0
    print(f"\n{'claim':<100s}" + "".join(f"{s:>22s}" for s in args.settings))
    for nb in notebooks:
        if nb.stem not in CLAIMS:
            continue
        print(nb.stem)
        per_setting = {}
        for setting in args.settings:
            try:
                per_setting[setting] = margins(nb.stem, builds[setting].get(nb.stem, {}))
            except KeyError as missing:
                per_setting[setting] = missing
        for k, claim in enumerate(CLAIMS[nb.stem]):
            total += 1
            cells, label = [], None
            for setting in args.settings:
                found = per_setting[setting]
                if isinstance(found, KeyError):
                    cells.append(f"{'missing':>22s}")
                    failures += 1
                    continue
                m = found[k]
                label = m.claim
                sds = "" if math.isnan(m.sds) else f" ({m.sds:+.1f} sd)"
                cells.append(f"{('' if m.holds else 'FAIL ') + f'{m.gap:+.3f}' + sds:>22s}")
                held[setting] += m.holds
                failures += not m.holds
            label = label or str(claim)
            print(f"  {label[:98]:<98s}" + "".join(cells))
    print()
    for setting in args.settings:
        print(f"claims_holding_{setting}: {held[setting]} of {total}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
