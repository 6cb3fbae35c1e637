"""What the notebooks' setup cell installs comes from one place, ``course_lib._meta``, overridable by
``COURSE_LIB_SPEC``."""

from __future__ import annotations

import subprocess
import sys
import types

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib import _meta
from course_lib.tools import sync_notebooks

WHEEL = "/tmp/dist/course_lib-0.1.0-py3-none-any.whl"


@pytest.mark.parametrize(("environ", "expected"), [
    ({_meta.SPEC_VARIABLE: WHEEL}, WHEEL),
    ({_meta.SPEC_VARIABLE: ""}, _meta.PACKAGE_SPEC),  # set but empty: as if unset, never `pip install ''`
    ({}, _meta.PACKAGE_SPEC),
])
def test_package_spec_reads_the_override(environ, expected):
    assert _meta.package_spec(environ) == expected


def test_the_default_spec_is_the_repository_with_the_samples_extra():
    assert _meta.PACKAGE_SPEC == f"course_lib[samples] @ git+{_meta.REPO_URL}@{_meta.BRANCH}"
    assert _meta.PACKAGE_SPEC in _meta.SETUP_CELL and _meta.SPEC_VARIABLE in _meta.SETUP_CELL


def run_setup_cell(monkeypatch, *, on_colab: bool, environ: dict[str, str]) -> list[list[str]]:
    """The commands the setup cell runs, with subprocess.run recording instead of running them."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: calls.append(command))
    monkeypatch.delenv(_meta.SPEC_VARIABLE, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(_meta.SETUP_CELL, "<setup cell>", "exec"), {})
    return calls


@pytest.mark.parametrize(("environ", "spec"), [({}, _meta.PACKAGE_SPEC), ({_meta.SPEC_VARIABLE: WHEEL}, WHEEL)])
def test_on_colab_the_setup_cell_installs_the_spec(monkeypatch, environ, spec):
    calls = run_setup_cell(monkeypatch, on_colab=True, environ=environ)
    # The kernel's own pip: a `pip` on PATH may belong to another Python.
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", spec]]


def test_elsewhere_the_setup_cell_installs_nothing_even_with_the_override(monkeypatch):
    assert run_setup_cell(monkeypatch, on_colab=False, environ={_meta.SPEC_VARIABLE: WHEEL}) == []


def test_sync_writes_the_whole_setup_cell_and_the_badge():
    old_setup = ("# Setup\nimport subprocess\nimport sys\n\nif 'google.colab' in sys.modules:\n"
                 "    subprocess.run('pip install old', shell=True, check=True)  # colab-install")
    nb = new_notebook(cells=[new_markdown_cell("# Title\n\nold badge <!-- colab-badge -->"), new_code_cell(old_setup),
                             new_code_cell("x = 1  # no marker, untouched")])
    badge, setup, other = sync_notebooks.synced_sources(nbformat.from_dict(nb), "notebooks/ch09_tiny.ipynb")
    assert setup == _meta.SETUP_CELL
    assert badge == f"# Title\n\n{_meta.colab_badge('notebooks/ch09_tiny.ipynb')} <!-- colab-badge -->"
    assert other == "x = 1  # no marker, untouched"
