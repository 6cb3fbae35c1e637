"""Every notebook runs top to bottom in quick mode and records real numbers; the runner reports failures."""

from __future__ import annotations

import json
import math

import nbformat
import pytest
from claims import margins
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader_harness import ROOT

from course_lib.tools import run_course

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.timeout(5400)  # a slow CPU stretches a notebook several times (see run_course.DEFAULT_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_quick_mode(path, tmp_path):
    run = run_course.execute_notebook(path, mode="quick", exercises="verify")  # each blank fails its check
    print(f"{path.name}: {run.seconds:.1f} s, {len(run.results)} results")
    assert run.results, f"{path.name} records no results"
    for result in run.results:
        assert math.isfinite(result["value"]) and result["mode"] == "quick"
        assert result["chapter"] == int(path.name[2:4])
    values = {r["name"]: r["value"] for r in run.results}
    failed = [m for m in margins(path.stem, values) if not m.holds]
    assert not failed, f"{path.name}: claims that do not hold: {failed}; recorded: {values}"
    run_course.write_outputs(run, tmp_path)
    assert (tmp_path / path.name).is_file() and (tmp_path / path.with_suffix(".html").name).is_file()


def test_runner_names_the_failing_notebook_and_cell(tmp_path, capsys):
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("raise ValueError('broken on purpose')")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    assert run_course.main(["--out", str(tmp_path / "build"), str(path)]) == 1
    err = capsys.readouterr().err
    assert "broken.ipynb" in err and "cell 1" in err and "broken on purpose" in err


def test_runner_writes_results_json_and_md(tmp_path):
    nb = new_notebook(cells=[new_code_cell(
        "from course_lib.results import record\nrecord(2, 'answer_value', 42.0, unit='x', note='test')")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "ch02_tiny.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "build"
    assert run_course.main(["--out", str(out), str(path)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results == [{"chapter": 2, "name": "answer_value", "value": 42.0, "unit": "x", "mode": "quick",
                        "higher_is_better": True, "note": "test"}]
    assert "`answer_value`" in (out / "results.md").read_text()
    assert (out / "ch02_tiny.html").is_file()


def test_runner_runs_notebooks_in_parallel_and_keeps_their_order(tmp_path, capsys):
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    paths = []
    for k, name in enumerate(["ch02_slow", "ch03_fast", "ch04_broken"]):
        code = (f"import time\ntime.sleep({2 - k})\nfrom course_lib.results import record\n"
                f"record({k + 2}, '{name}_value', {k}.0)")
        cells = [new_code_cell(code)] + ([new_code_cell("raise ValueError('broken on purpose')")] if k == 2 else [])
        nbformat.write(new_notebook(cells=cells, metadata=meta), tmp_path / f"{name}.ipynb")
        paths.append(tmp_path / f"{name}.ipynb")
    out = tmp_path / "build"
    assert run_course.main(["--out", str(out), "--jobs", "2", *map(str, paths[:2])]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results] == ["ch02_slow_value", "ch03_fast_value"]  # notebook order, not finish order
    assert run_course.main(["--out", str(tmp_path / "b2"), "--jobs", "2", *map(str, paths)]) == 1
    assert "ch04_broken.ipynb" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_course.main(["--jobs", "0", str(paths[0])])


def test_a_stalled_cell_is_retried_once_on_a_fresh_kernel(tmp_path, capsys):
    marker = tmp_path / "first_attempt_done"
    stall_once = (f"import pathlib, time\nmarker = pathlib.Path({str(marker)!r})\n"
                  "if not marker.exists():\n    marker.touch()\n    time.sleep(60)  # a kernel that stopped answering")
    # the second cell writes its result line itself: importing course_lib can take over 10 s on a busy machine
    record_line = ("import json, os\nwith open(os.environ['COURSE_RESULTS'], 'a') as f:\n"
                   "    f.write(json.dumps({'name': 'after_the_stall', 'value': 1.0}) + '\\n')")
    nb = new_notebook(cells=[new_code_cell(stall_once), new_code_cell(record_line)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "ch02_stall.ipynb"
    nbformat.write(nb, path)
    run = run_course.execute_notebook(path, timeout=10, mode="quick")
    assert [r["name"] for r in run.results] == ["after_the_stall"]
    assert "retrying on a fresh kernel" in capsys.readouterr().err
    marker.unlink()
    timed_out = r"ch02_stall.ipynb: cell 0 \('import pathlib, time'\).*timed out"  # names the cell left running
    with pytest.raises(run_course.NotebookFailed, match=timed_out):
        run_course.execute_notebook(path, timeout=10, mode="quick", retries=0)


def test_a_kernel_that_never_starts_is_retried(tmp_path, capsys, monkeypatch):
    """A kernel that dies before its first reply (in make test: "Address already in use", two kernels racing for a
    port) is retried once on a fresh kernel, and named when it fails again."""
    nb = new_notebook(cells=[new_code_cell("1 + 1")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "ch02_start.ipynb"
    nbformat.write(nb, path)
    real_client, calls = run_course.make_client, []

    class NeverStarts:
        def execute(self):
            raise RuntimeError("Kernel didn't respond in 60 seconds")

    def first_fails(*args, **kwargs):
        calls.append(1)
        return NeverStarts() if len(calls) == 1 else real_client(*args, **kwargs)

    monkeypatch.setattr(run_course, "make_client", first_fails)
    run = run_course.execute_notebook(path, timeout=60, mode="quick")
    assert len(calls) == 2 and run.notebook.cells[0].outputs[0]["data"]["text/plain"] == "2"
    assert "the kernel did not start" in capsys.readouterr().err
    monkeypatch.setattr(run_course, "make_client", lambda *args, **kwargs: NeverStarts())
    with pytest.raises(run_course.NotebookFailed, match="ch02_start.ipynb: the kernel did not start"):
        run_course.execute_notebook(path, timeout=60, mode="quick")
    monkeypatch.setattr(run_course, "make_client", lambda *args, **kwargs: (_ for _ in ()).throw(
        RuntimeError("something else")))
    with pytest.raises(RuntimeError, match="something else"):  # any other error is not a kernel start: no retry
        run_course.execute_notebook(path, timeout=60, mode="quick")
