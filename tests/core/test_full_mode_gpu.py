"""benchmarks/full_mode_gpu.py: its dry run lists every chapter with FULL settings and the right data source, on a CPU.

The GPU run itself is never a test (no test depends on a GPU); its call path is checked by ``--device cpu --smoke``,
whose cut settings must keep the FULL models and recipes (only images, in number and side, epochs, steps and seeds
shrink).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("full_mode_gpu", ROOT / "benchmarks" / "full_mode_gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data"))  # nothing prepared unless a test writes it
    monkeypatch.setenv("COURSE_MODE", "quick")  # main() switches to full; monkeypatch restores these afterwards
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    return tmp_path / "data"


def test_dry_run_lists_every_chapter_with_its_full_settings(script, env, capsys):
    from course_lib.counting import experiment as counting
    from course_lib.translation import experiment as translation

    assert script.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    for chapter in script.CHAPTERS:
        assert f"[{chapter.key}]" in out, f"{chapter.key} missing from the dry run:\n{out}"
    assert out.count("  data: synthetic FULL preset") == len(script.CHAPTERS), "nothing is prepared: all synthetic"
    assert f"settings counting: {counting.FULL}" in out and f"settings bias: {translation.FULL}" in out
    assert "dry run: 6 chapters listed, nothing trained" in out


def test_dry_run_names_the_real_data_when_it_is_prepared(script, env, capsys):
    vgg = env / "vgg_cells"
    vgg.mkdir(parents=True)
    (vgg / "001cell.png").touch()
    (env / "msd_brain" / "Task01_BrainTumour").mkdir(parents=True)  # no dataset.json: not prepared
    assert script.main(["--dry-run", "--only", "ch03b", "ch04b"]) == 0
    out = capsys.readouterr().out
    assert f"data: real: {vgg}" in out, out
    assert "msd_brain/Task01_BrainTumour not prepared" in out, out
    assert "[ch01b]" not in out


def _sizes(value, path=""):
    """Every model-shaping field (width, depth, crop, ...) of nested settings, by dotted name.

    Not the image side (``size``, ``image_size``): a smoke run may cut the images, their number and their side.
    """
    names = ("width", "widths", "depth", "crop", "window", "backbone", "patch_size",
             "n_blocks", "d_width", "d_layers", "batch_size", "lr", "hidden", "mlp_hidden")
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _sizes(item, f"{path}{key}.").items()}
    if not dataclasses.is_dataclass(value):
        return {}
    out = {}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if field.name in names:
            out[path + field.name] = item
        out |= _sizes(item, f"{path}{field.name}.")
    return out


@pytest.mark.parametrize("key", ["ch01b", "ch02a", "ch02bc", "ch03b", "ch04b", "ch05"])
def test_smoke_cuts_sizes_of_the_run_but_keeps_the_full_models(script, key):
    chapter = next(c for c in script.CHAPTERS if c.key == key)
    full = chapter.settings()
    smoke = chapter.smoke()
    assert set(smoke) == set(full)
    kept = {k: v for k, v in _sizes(full).items() if not k.startswith("real.")}  # real: the QUICK fixture recipe
    assert kept and {k: _sizes(smoke)[k] for k in kept} == kept, "smoke must keep the FULL models and recipes"
    assert smoke != full, "smoke must cut something"


def test_full_settings_on_a_cpu_are_refused_without_smoke(script, env, capsys):
    assert script.main(["--device", "cpu", "--only", "ch03b"]) == 2
    assert "add --smoke" in capsys.readouterr().err
