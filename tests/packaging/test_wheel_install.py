"""course_lib installed as Colab installs it: a wheel, not the checkout.

Every other test imports course_lib from the checkout (an editable install), so a module or data file that the wheel
leaves out would only show on Colab. Here the wheel is built from a copy of the package's sources, installed by the
notebooks' own setup cell (``_meta.SETUP_CELL``, with ``COURSE_LIB_SPEC`` pointing at the wheel) into an empty
target folder, and two notebooks run from a temporary folder, with a Python that sees that target and the course's
third-party packages but neither the checkout nor its editable install. They run in full mode, the mode Colab's GPU
gets, with sizes cut (``COURSE_SMOKE=1``, as tests/notebooks/test_full_smoke.py runs the other notebooks): this
test is those two notebooks' full-mode smoke run as well.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from course_lib import _meta

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["ch01a_chest_xray_data", "ch04a_cyclegan_translation"]  # real sample data (ch01a), torch training (ch04a)

pytestmark = pytest.mark.slow

# Appended to each notebook's temporary copy: where everything the notebook imported came from.
PROBE = """\
import json, sys
import course_lib
json.dump({
    "executable": sys.executable,
    "course_lib": course_lib.__file__,
    "modules": {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())
                if name.split(".")[0] == "course_lib"},
    "sys_path": sys.path,
    "meta_path": [repr(finder) for finder in sys.meta_path],
}, open("probe-NAME.json", "w"))
"""


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def build_wheel(out: Path) -> Path:
    """A wheel of course_lib built from a copy of its sources (the build writes build/ and *.egg-info beside them)."""
    src = out / "src"
    shutil.copytree(ROOT / "course_lib", src / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", str(out / "dist"), str(src)])
    [wheel] = (out / "dist").glob("course_lib-*.whl")
    return wheel


def bare_python(out: Path) -> Path:
    """A Python that sees the course's third-party packages but not its editable course_lib.

    A virtual environment whose one ``.pth`` line adds the course venv's site-packages as a plain folder: Python
    reads ``.pth`` files only in its own site folders, so the editable install's finder there is never loaded.
    """
    env = out / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)])
    site = Path(_run([str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                     ).stdout.strip())
    folders = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "course_deps.pth").write_text("".join(f"{folder}\n" for folder in folders))
    return env / "bin" / "python"


def kernel_env(out: Path, python: Path, target: Path) -> dict[str, str]:
    """Environment for the runner and its kernels: only the target on PYTHONPATH, a kernelspec of ``python``."""
    spec = out / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (wheel test)", "language": "python"}))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", _meta.SPEC_VARIABLE)}
    # Our kernelspec first; then the course venv's data folder, for nbconvert's HTML templates.
    data = os.pathsep.join([str(out / "jupyter"), str(Path(sys.prefix) / "share" / "jupyter")])
    env.update(PYTHONPATH=str(target), JUPYTER_PATH=data, COURSE_MODE="full", COURSE_SMOKE="1", COURSE_DEVICE="cpu",
               COURSE_DATA=str(out / "no_course_data"), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def test_the_wheel_runs_ch01a_and_ch04a_without_the_checkout(tmp_path):
    start = time.perf_counter()
    wheel = build_wheel(tmp_path / "wheel")
    python = bare_python(tmp_path)
    target = tmp_path / "target"
    target.mkdir()
    env = kernel_env(tmp_path, python, target)
    built = time.perf_counter()

    # The notebooks' setup cell, run as on Colab (a google.colab module present), installs what COURSE_LIB_SPEC
    # names; pip's own variables send it into the target, without dependencies (the course venv has them).
    colab = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    install_env = dict(env, PIP_TARGET=str(target), PIP_NO_DEPS="1", PIP_NO_INDEX="1",
                       **{_meta.SPEC_VARIABLE: str(wheel)})
    _run([str(python), "-c", colab + _meta.SETUP_CELL], env=install_env, cwd=tmp_path)
    assert (target / "course_lib" / "__init__.py").is_file(), "the setup cell did not install the wheel"
    installed = time.perf_counter()

    work = tmp_path / "run"
    work.mkdir()
    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        nb.cells.append(new_code_cell(PROBE.replace("NAME", name)))
        nbformat.write(nb, work / f"{name}.ipynb")
    done = subprocess.run([str(python), "-m", "course_lib.tools.run_course", "--out", str(tmp_path / "build"),
                           "--mode", "full", "--jobs", "2", *(f"{name}.ipynb" for name in NOTEBOOKS)],
                          capture_output=True, text=True, cwd=work, env=env, timeout=600)
    ran = time.perf_counter()
    print(f"wheel {built - start:.1f} s (build + environment), install {installed - built:.1f} s, "
          f"notebooks {ran - installed:.1f} s\n{done.stdout}")
    assert done.returncode == 0, f"the notebooks failed with the wheel installed:\n{done.stdout}\n{done.stderr}"

    results = json.loads((tmp_path / "build" / "results.json").read_text())
    assert {r["chapter"] for r in results} == {1, 4}, f"results of chapters 1 and 4 expected, got {results}"
    assert {r["mode"] for r in results} == {"full"}, "the notebooks must run in full mode"
    checkout = ROOT / "course_lib"
    for name in NOTEBOOKS:
        probe = json.loads((work / f"probe-{name}.json").read_text())
        assert Path(probe["executable"]) == python, f"{name}: the kernel ran {probe['executable']}, not {python}"
        assert Path(probe["course_lib"]).is_relative_to(target), f"{name}: course_lib from {probe['course_lib']}"
        outside = {m: f for m, f in probe["modules"].items() if f and not Path(f).is_relative_to(target)}
        assert not outside, f"{name}: course_lib modules imported from outside the wheel's install: {outside}"
        on_path = [p for p in probe["sys_path"] if p and Path(p).resolve() in (ROOT, checkout)]
        assert not on_path, f"{name}: the checkout is on sys.path: {on_path}"
        editable = [f for f in probe["meta_path"] if "editable" in f.lower()]
        assert not editable, f"{name}: the checkout's editable finder is loaded: {editable}"
