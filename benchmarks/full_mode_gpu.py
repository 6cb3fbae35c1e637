"""Every chapter's full-mode experiment in one run on a CUDA machine: wall time, peak GPU memory, headline numbers.

Each chapter runs its experiment module with its ``FULL`` settings (``course_lib/<chapter>/experiment.py`` and
friends, the same calls the notebooks make in full mode), on the real data prepared under ``COURSE_DATA`` when it is
there, on the synthetic ``FULL`` presets otherwise. Per chapter it prints the wall time, the peak GPU memory
(``torch.cuda.max_memory_allocated``, reset before each chapter) and the headline numbers; it exits 1 when a chapter
fails or its peak exceeds ``--max-gib`` (14 GiB: a Colab T4 has 15 GiB usable)::

    .venv/bin/python benchmarks/full_mode_gpu.py                       # everything, on the GPU
    .venv/bin/python benchmarks/full_mode_gpu.py --only ch03b ch04b    # some chapters
    .venv/bin/python benchmarks/full_mode_gpu.py --dry-run             # what would run (no training; any machine)
    .venv/bin/python benchmarks/full_mode_gpu.py --device cpu --smoke  # the same calls with sizes cut to a handful

``--smoke`` runs each chapter's ``SMOKE`` settings, the ones ``COURSE_SMOKE=1`` gives the notebooks: the FULL
settings (image sizes, model widths and depths, recipes) with only what makes a run long cut: images, epochs, steps,
seeds. It checks the call path of every chapter, not its numbers.

Where a chapter does not use the GPU, the table says so (peak 0): ch05's methods train on the CPU by design
(``course_lib.confounders.methods`` fixes ``device="cpu"``), and its real chest X-ray mix is assembled in the ch05a
notebook, not in a library function, so this script runs ch05 on its synthetic sites only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GIB = 2**30
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Chapter:
    """One chapter's full experiment: what it runs, on which data, and what it reports."""

    key: str  # e.g. "ch03b"
    title: str
    settings: Callable[[], dict]  # name -> FULL settings object(s) the run uses
    smoke: Callable[[], dict]  # the chapter's SMOKE settings: the same with sizes, epochs and seeds cut
    data: Callable[[], tuple[str, Path | None]]  # (description, real root or None)
    outputs: str  # the headline numbers it prints
    run: Callable[[dict, Path | None, str], dict[str, float]]  # (settings, real root, device) -> headline numbers


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _real(path: Path, marker: str | None = None) -> tuple[str, Path | None]:
    """('real: <path>', path) when the prepared data is there, else the synthetic fallback."""
    found = (path / marker).is_file() if marker else path.is_dir()
    return (f"real: {path}", path) if found else (f"synthetic FULL preset ({path} not prepared)", None)


# ---------------------------------------------------------------- ch01: chest X-ray, fusion of PA + lateral
def _ch01_settings() -> dict:
    from course_lib.chest_xray import experiment, real_data
    return {"fusion": experiment.FULL, "real": real_data.FULL}


def _ch01_smoke() -> dict:
    from course_lib.chest_xray import experiment, real_data
    return {"fusion": experiment.SMOKE, "real": real_data.SMOKE}


def _ch01_data():
    from course_lib import config
    for name in ("chexpert", "padchest"):
        if config.data_dir(name).is_dir():
            return f"real: {config.data_dir(name)}", config.data_dir(name)
    return f"synthetic FULL preset (neither {config.data_dir('chexpert')} nor {config.data_dir('padchest')})", None


def _ch01_run(s: dict, root: Path | None, device: str) -> dict[str, float]:
    from course_lib.chest_xray.experiment import CONTROL, run_fusion_experiment
    if root is not None:
        from course_lib.chest_xray.real_data import run_real_experiment
        out = run_real_experiment(root.name, root, s["real"], device=device)
        return {f"test_auroc_{k}": v for k, v in out["test_auroc_mean"].items()}
    fusion = s["fusion"]
    models = ("pa", fusion.gain_fusion, CONTROL)  # the chapter's headline: the lateral's gain over its control
    scores = {m: [] for m in models}
    for seed in fusion.seeds:
        result = run_fusion_experiment(models, fusion, seed=seed, device=device)
        for m in models:
            scores[m].append(result["models"][m]["test_auroc_mean"])
    return {f"test_auroc_{m}": _mean(v) for m, v in scores.items()}


# ---------------------------------------------------------------- ch02: histology and segmentation
def _ch02a_settings() -> dict:
    from course_lib.histology import balancing_experiment
    return {"balancing": balancing_experiment.FULL}


def _ch02a_smoke() -> dict:
    from course_lib.histology import balancing_experiment
    return {"balancing": balancing_experiment.SMOKE}


def _ch02a_data():
    from course_lib.histology import idc
    return _real(idc.idc_root())


def _ch02a_run(s: dict, root: Path | None, device: str) -> dict[str, float]:
    import torch

    from course_lib.histology import balancing_experiment, idc
    from course_lib.histology.synthetic_tiles import HistologyConfig, histology_patch_dataset
    b = s["balancing"]
    if root is not None:  # as ch02a: a patient split of the Kaggle IDC patches
        from course_lib.data.splits import patient_split
        records = idc.scan_idc()
        ids = patient_split([r.patient for r in records], seed=0)
        train_set, val_set, test_set = (idc.IDCDataset(patients=i) for i in ids)
        labels, patch = torch.from_numpy(train_set.labels), idc.PATCH
    else:
        tiles = HistologyConfig(size=256, tumour_fraction=0.08)
        train_set, val_set, test_set = (histology_patch_dataset(n, tiles, seed=k)
                                        for k, n in ((1, b.train_tiles), (2, b.eval_tiles), (3, b.eval_tiles)))
        labels, patch = train_set.tensors[1], 32
    out = balancing_experiment.compare_balancing(train_set, val_set, test_set, labels.numpy(), patch, b,
                                                 device=device)
    return {f"{cls}_recall_{arm}": _mean(r[cls]) for arm, r in out.recall.items() for cls in ("normal", "tumour")}


def _ch02bc_settings() -> dict:
    from course_lib.histology import experiments, loss_experiment, sampling_experiment
    return {"loss": loss_experiment.FULL, "nuclei": experiments.FULL, "sampling": sampling_experiment.FULL}


def _ch02bc_smoke() -> dict:
    from course_lib.histology import experiments, loss_experiment, sampling_experiment
    return {"loss": loss_experiment.SMOKE, "nuclei": experiments.SMOKE, "sampling": sampling_experiment.SMOKE}


def _ch02bc_run(s: dict, root: Path | None, device: str) -> dict[str, float]:
    from course_lib.histology import experiments, loss_experiment, sampling_experiment
    out = {}
    losses = loss_experiment.compare_losses(s["loss"], device=device)
    out |= {f"test_dice_{name}": _mean(v["test_dice"]) for name, v in losses.scores.items()}
    skips = experiments.compare_skip_connections(s["nuclei"], device=device)
    out |= {f"nuclei_dice_{name}": _mean(v["dice"]) for name, v in skips.items()}
    edges = experiments.compare_edge_prediction(s["nuclei"], device=device)
    for name, v in edges.items():
        out |= {f"edges_{name}_{k}": _mean(x) for k, x in v.items() if k != "seconds"}
    sampling = sampling_experiment.compare_sampling(s["sampling"], device=device)
    out |= {f"lesion_recall_{arm}": _mean(v["recall"]) for arm, v in sampling.items()}
    return out


# ---------------------------------------------------------------- ch03: counting
def _ch03_settings() -> dict:
    from course_lib.counting import experiment
    return {"counting": experiment.FULL, "multiclass": experiment.MULTICLASS_FULL,
            "vgg": {"n_train": 32, "seeds": (0, 1, 2, 3, 4), "epochs": 200, "width": 32, "sigma": 2.0, "crop": 128,
                    "batch_size": 8, "lr": 1e-3}}  # benchmarks/vgg_cells_protocol.py's defaults


def _ch03_smoke() -> dict:
    from course_lib.counting import experiment
    return {"counting": experiment.SMOKE, "multiclass": experiment.MULTICLASS_SMOKE,
            "vgg": _ch03_settings()["vgg"] | {"n_train": 4, "seeds": (0,), "epochs": 1}}


def _ch03_data():
    from course_lib import config
    return _real(config.data_dir("vgg_cells"), "001cell.png")


def _vgg_recipe():
    spec = importlib.util.spec_from_file_location("vgg_cells_protocol", HERE / "vgg_cells_protocol.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ch03_run(s: dict, root: Path | None, device: str) -> dict[str, float]:
    import torch

    from course_lib.counting.experiment import run_counting_seeds, run_multiclass_experiment
    device = torch.device(device)
    out = {}
    summary = run_counting_seeds(s["counting"], device=device)["summary"]
    for row in summary.to_dict("records"):  # mean over seeds per (condition, method)
        out[f"{row['condition']}_{row['method']}_mae"] = float(row["mae_mean"])
    mc = run_multiclass_experiment(s["multiclass"], device=device)
    out |= {f"multiclass_{k}": float(v) for k, v in mc["detection"].items()}
    if root is not None:  # the standard protocol on the real VGG cells
        v = s["vgg"]
        maes = [_vgg_recipe().run(root, seed=seed, device=device, **{k: x for k, x in v.items() if k != "seeds"})
                for seed in v["seeds"]]
        out |= {f"vgg_cells_mae_n{v['n_train']}_{m}": _mean([r[m]["mae"] for r in maes]) for m in maes[0]}
    return out


# ---------------------------------------------------------------- ch04: translation bias
def _ch04_settings() -> dict:
    from course_lib.translation import experiment
    return {"bias": experiment.FULL}


def _ch04_smoke() -> dict:
    from course_lib.translation import experiment
    return {"bias": experiment.SMOKE}


def _ch04_data():
    from course_lib import config
    return _real(config.data_dir("msd_brain", "Task01_BrainTumour"), "dataset.json")


def _ch04_run(s: dict, root: Path | None, device: str) -> dict[str, float]:
    from course_lib.translation.experiment import run_bias_sweep, summarise
    real = None
    if root is not None:
        from course_lib.translation.real_data import read_msd_brain
        real = read_msd_brain(root, size=s["bias"].image_size, progress=False)
    table = summarise(run_bias_sweep(s["bias"], real=real, progress=False).runs)
    out = {}
    for row in table.to_dict("records"):
        if row["method"] == "cyclegan":
            out |= {f"cyclegan_{round(100 * row['fraction'])}pct_{m}": float(row[f"{m}_mean"])
                    for m in ("erased", "hallucinated")}
    return out


# ---------------------------------------------------------------- ch05: confounders
def _ch05_settings() -> dict:
    from course_lib.confounders import experiment
    return {"sweep": experiment.FULL, "decoy": experiment.DECOY_FULL}


def _ch05_smoke() -> dict:
    from course_lib.confounders import experiment
    return {"sweep": experiment.SMOKE, "decoy": experiment.DECOY_SMOKE}


def _ch05_run(s: dict, root: Path | None, device: str) -> dict[str, float]:
    from course_lib.confounders.experiment import run_decoy, run_sweep, select, summarise
    table = run_sweep(s["sweep"], progress=False)
    summary = summarise(table, select(table))  # index method; columns (split, metric, "mean" | "sd")
    out = {f"{method}_{split}_auroc": float(summary.loc[method, column]) for method in summary.index
           for column in summary.columns if column[1:] == ("auroc", "mean") for split in column[:1]}
    decoy = run_decoy(s["decoy"], progress=False)
    means = decoy.groupby("method")[["val_accuracy", "test_accuracy"]].mean()
    out |= {f"decoy_{m}_{k}": float(v) for m, row in means.iterrows() for k, v in row.items()}
    return out


def _ch05_data():
    return "synthetic FULL preset (the NIH + CheXpert mix is assembled in the ch05a notebook)", None


CHAPTERS = (
    Chapter("ch01b", "chest X-ray: PA-only vs fusion vs its PA-twice control", _ch01_settings, _ch01_smoke,
            _ch01_data, "mean test AUROC per model (real: run_real_experiment's test_auroc_mean)", _ch01_run),
    Chapter("ch02a", "histology: shuffled vs class-balanced patch batches", _ch02a_settings, _ch02a_smoke,
            _ch02a_data, "mean test recall per class and arm", _ch02a_run),
    Chapter("ch02bc", "segmentation: Dice losses, U-Net vs bottleneck, edges, CASED sampling", _ch02bc_settings,
            _ch02bc_smoke, lambda: ("synthetic FULL preset (no real set in these experiments)", None),
            "test Dice per loss, nuclei Dice and separation, lesion recall per sampling arm", _ch02bc_run),
    Chapter("ch03b", "counting: classic vs density U-Net vs Count-ception, multi-class", _ch03_settings, _ch03_smoke,
            _ch03_data, "count MAE per condition and method; multi-class detection; VGG cells MAE when real",
            _ch03_run),
    Chapter("ch04b", "translation: CycleGAN bias vs target tumour share", _ch04_settings, _ch04_smoke, _ch04_data,
            "erased and hallucinated tumour shares per target fraction", _ch04_run),
    Chapter("ch05", "confounders: method sweep on synthetic sites, decoy digits", _ch05_settings, _ch05_smoke,
            _ch05_data, "test AUROC per method (hyper-parameters chosen on validation); decoy accuracies",
            _ch05_run),
)


def describe(chapter: Chapter, settings: dict) -> str:
    """The dry-run entry of one chapter: title, settings, data source and expected outputs."""
    source, _ = chapter.data()
    lines = [f"[{chapter.key}] {chapter.title}", f"  data: {source}", f"  outputs: {chapter.outputs}"]
    lines += [f"  settings {name}: {value}" for name, value in settings.items()]
    return "\n".join(lines)


def run_chapter(chapter: Chapter, settings: dict, device: str) -> dict:
    """Run one chapter; returns its wall time, peak GPU memory (bytes, 0 off CUDA), headline numbers or error."""
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        _, root = chapter.data()
        headline, error = chapter.run(settings, root, device), None
    except Exception as exc:  # noqa: BLE001 — one failing chapter must not hide the others' table
        headline, error = {}, f"{type(exc).__name__}: {exc}"
    if cuda:
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - start, "peak": torch.cuda.max_memory_allocated() if cuda else 0,
            "headline": headline, "error": error}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="list what would run; train nothing")
    parser.add_argument("--smoke", action="store_true", help="FULL settings with images, epochs and seeds cut")
    parser.add_argument("--device", default=None, help="default cuda; cpu only with --smoke or --dry-run")
    parser.add_argument("--only", nargs="+", choices=[c.key for c in CHAPTERS], default=None)
    parser.add_argument("--max-gib", type=float, default=14.0, help="fail above this peak GPU memory")
    args = parser.parse_args(argv)
    chapters = [c for c in CHAPTERS if args.only is None or c.key in args.only]
    device = args.device or "cuda"
    # the modules pick their device with config.device(); this makes them all agree with --device
    os.environ["COURSE_DEVICE"] = device
    os.environ["COURSE_MODE"] = "full"
    print(f"full mode, device {device}{', smoke (sizes cut)' if args.smoke else ''}, "
          f"peak limit {args.max_gib:g} GiB, chapters {[c.key for c in chapters]}")
    plans = [(c, c.smoke() if args.smoke else c.settings()) for c in chapters]
    if args.dry_run:
        for chapter, settings in plans:
            print(describe(chapter, settings))
        print(f"dry run: {len(plans)} chapters listed, nothing trained")
        return 0
    import torch
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run on a GPU machine, or use --dry-run, or --device cpu --smoke", file=sys.stderr)
        return 2
    if device == "cpu" and not args.smoke:
        print("the FULL settings are sized for a GPU: add --smoke to check the call path on a CPU", file=sys.stderr)
        return 2
    failed = []
    rows = []
    for chapter, settings in plans:
        print(describe(chapter, settings), flush=True)
        result = run_chapter(chapter, settings, device)
        peak = result["peak"] / GIB
        status = "FAILED" if result["error"] else ("OVER LIMIT" if peak > args.max_gib else "ok")
        if status != "ok":
            failed.append(chapter.key)
        rows.append((chapter.key, result["seconds"], peak, status))
        print(f"  -> {status}: {result['seconds']:.0f} s, peak GPU memory {peak:.2f} GiB"
              + (f"\n  error: {result['error']}" if result["error"] else ""))
        for name, value in result["headline"].items():
            print(f"  {chapter.key}.{name}: {value:.4f}")
    print("\n| chapter | wall time (s) | peak GPU memory (GiB) | status |\n|---|---|---|---|")
    for key, seconds, peak, status in rows:
        print(f"| {key} | {seconds:.0f} | {peak:.2f} | {status} |")
    if failed:
        print(f"failed or over {args.max_gib:g} GiB: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
