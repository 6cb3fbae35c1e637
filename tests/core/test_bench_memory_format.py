"""benchmarks/bench_memory_format.py runs on every chapter's network, and channels_last computes the same function."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
from nbgrader_harness import ROOT

SCRIPT = ROOT / "benchmarks" / "bench_memory_format.py"


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")
def test_every_network_in_both_layouts_gives_the_same_outputs_and_a_ratio():
    done = subprocess.run([sys.executable, str(SCRIPT), "--steps", "1", "--repeats", "1"], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^(ch0\d .+?)\s+NCHW .* ratio (\d+\.\d+)x  max \|output difference\| (\S+)$", done.stdout,
                      flags=re.MULTILINE)
    assert [name[:4] for name, _, _ in rows] == ["ch01", "ch02", "ch02", "ch03", "ch04", "ch05"], done.stdout
    for name, ratio, difference in rows:
        assert float(ratio) > 0
        assert float(difference) < 1e-4, f"{name}: the layouts disagree by {difference}"
    assert re.search(r"^channels_last_step_speedup_geometric_mean: \d+\.\d+ x$", done.stdout, flags=re.MULTILINE)


def test_bad_arguments_are_named():
    done = subprocess.run([sys.executable, str(SCRIPT), "--steps", "0"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 2 and "--steps and --repeats must be >= 1, got 0, 3" in done.stderr
