"""The chapter 3 comparisons, one call each: classic pipeline vs density regression, and multi-class counting.

:func:`run_counting_experiment` (one seed) and :func:`run_counting_seeds` (several, with mean and sd)
    Three counters on the *same* held-out images of three conditions of :mod:`course_lib.counting.synthetic_cells`
    (``EASY``, ``CLUSTERED`` and ``SHIFTED``), each reported on its own — never pooled:

    * ``classic``: the threshold-watershed pipeline (:func:`~course_lib.counting.classic.classic_count`) with its
      parameters tuned once on ``EASY`` images — the script a lab writes for the images it has;
    * ``classic_tuned``: the same pipeline with ``sigma`` and ``min_distance`` tuned
      (:func:`~course_lib.counting.classic.tune_classic`) on the labelled training and validation images the
      density net learns from, so that both methods see the same data;
    * ``density``: a :class:`~course_lib.counting.models.DensityFCN` (and, with ``countception``, a
      :class:`~course_lib.counting.models.CountCeptionNet`).

    The training distribution, stated so the comparison can be read:

    * cells of the ``EASY`` preset drawn at several clustering levels (``train_clustering``, default 0, 0.4
      and 0.8, equal shares) — annotators label crowded wells too, so both methods see touching cells;
    * flips and 90 degree turns of every training crop, and **no** lighting augmentation: a random lighting
      (:class:`~course_lib.counting.training_data.Lighting`) of three strengths was tried on a validation
      microscope (:data:`~course_lib.counting.synthetic_cells.OTHER_LAMP`, ``benchmarks/lighting_on_validation.py``)
      and none beat training without it beyond the seed spread;
    * **no** image of the ``SHIFTED`` preset, and nothing chosen on it: its lamp, dim and out-of-focus cells are all
      unseen. ``SHIFTED`` tests generalisation to a new microscope for every method.

    What holds *by construction*: ``CLUSTERED`` (clustering 0.7) lies inside the training range (0 to 0.8), so the
    density net's win there is expected from its data; ``classic_tuned`` shows how much of it a re-tuned pipeline
    gets back from the same data. ``EASY`` is where the EASY-tuned pipeline is at home.

    Validation images come from the same distribution as the training images (with a ``lighting``, applied once
    with a fixed seed); the weights of the epoch with the best validation count MAE are kept, and the peak threshold
    for localisation is chosen on them too. The test images are touched once, at the end. Every choice in
    :class:`CountingSettings` was fixed before the test numbers were looked at; the settings say why.

    ``ch03b`` prints the count MAE of each condition and method as mean ± sd over the seeds (``QUICK``: seeds 0, 1, 2,
    40 test images per condition and seed).

:func:`run_multiclass_experiment`
    A :class:`~course_lib.counting.models.DensityFCN` with ``1 + 3`` outputs (any nucleus, lymphocyte, normal
    epithelial, malignant epithelial) on :mod:`course_lib.counting.synthetic_nuclei`, trained with
    :class:`~course_lib.counting.multiclass.MultiClassDensityLoss`; per-class count errors, detection F1 and
    the confusion matrix of matched cells. Measured with ``MULTICLASS_QUICK`` (seed 0, 48 test tiles): count
    MAE any 0.62, lymphocyte 0.33, normal 0.59, malignant 0.47 nuclei per tile; detection F1 0.999; 99.6 % of
    matched nuclei classified right.

``QUICK`` settings train in about 10 s of CPU time per seed (one thread); ``FULL`` is sized for a GPU.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from course_lib import config
from course_lib.counting.classic import classic_count, count_errors, tune_classic
from course_lib.counting.density import peak_height
from course_lib.counting.models import CountCeptionNet, DensityFCN
from course_lib.counting.multiclass import MultiClassDensityLoss, confusion_matrix, match_and_classify
from course_lib.counting.peaks import find_cells, localisation_scores
from course_lib.counting.synthetic_cells import CLUSTERED, EASY, SHIFTED, cell_dataset
from course_lib.counting.synthetic_nuclei import CLASSES, NucleiConfig, nuclei_dataset
from course_lib.counting.training import predict_counts, predict_outputs, train_density_model
from course_lib.counting.training_data import Lighting, image_tensor

__all__ = ["CountingSettings", "QUICK", "FULL", "SMOKE", "settings", "multiclass_settings", "run_counting_experiment",
           "run_counting_seeds", "seed_summary", "run_countception",
           "MultiClassSettings", "MULTICLASS_QUICK", "MULTICLASS_FULL", "MULTICLASS_SMOKE",
           "run_multiclass_experiment", "TEST_CONDITIONS", "METHODS"]

TEST_CONDITIONS = {"easy": EASY, "clustered": CLUSTERED, "shifted": SHIFTED}
METHODS = ("classic", "classic_tuned", "density", "countception")  # in the order tables list them


@dataclass(frozen=True)
class CountingSettings:
    n_train: int = 72  # training images, split evenly over `train_clustering` (96 before 3 seeds had to fit)
    n_val: int = 24  # validation images, same distribution as training
    n_test: int = 40  # test images per condition (easy, clustered, shifted)
    seeds: tuple[int, ...] = (0, 1, 2)  # run_counting_seeds: new data and initialisation per seed; mean and sd
    train_clustering: tuple[float, ...] = (0.0, 0.4, 0.8)  # EASY cells at these clustering levels
    # random lighting on training crops (and once on validation images): none. Chosen on a validation microscope
    # (OTHER_LAMP, never on SHIFTED) by benchmarks/lighting_on_validation.py: no range beat none beyond the seed
    # spread there (validation count MAE none 0.443 +- 0.015, mild 0.436 +- 0.037, medium 0.456 +- 0.015, strong
    # 0.448 +- 0.026 cells, 3 seeds): the per-image normalisation of the net already undoes exposure and background
    lighting: Lighting | None = None
    sigma: float = 2.0  # density Gaussian sigma in px: about half the smallest cell radius (4 px)
    depth: int = 3  # U-Net depth: receptive field ~90 px; 2 did as well on validation (0.49 vs 0.46 MAE)
    width: int = 8  # U-Net first-block channels
    normalize_input: bool = True  # per-image percentile normalisation inside the net (DensityFCN)
    crop: int = 64  # training crop side: 4x cheaper than whole 128 px images, same cells
    # a time budget for three seeds, not convergence: with 40 epochs the kept validation count MAE falls from 0.70
    # to 0.51 cells (3 seeds, benchmarks/quick_budgets.py); the notebook's comparisons are at this budget
    epochs: int = 20
    batch_size: int = 8
    lr: float = 2e-3
    countception: bool = False  # also train a Count-ception net (slower: no pooling, every layer at full size)
    window: int = 16  # Count-ception window: about one cell diameter plus margin (FULL: the paper's 32 px)
    classic_sigmas: tuple[float, ...] = (0.5, 1.0, 2.0)  # classic_tuned grid: smoothing in px ...
    classic_min_distances: tuple[int, ...] = (3, 4, 5, 7)  # ... and seed distance (EASY-tuned: 0.5 and 4)
    match_radius: float = 4.0  # localisation: a detection within this many px of a dot is a hit (~ a cell radius)
    min_distance: int = 3  # peaks closer than this merge (cells of radius >= 4 px have centres >= ~5 px apart)


QUICK = CountingSettings()
# the paper's recipe on a GPU: more data and epochs, and Count-ception with Cohen et al.'s 32 px window
FULL = CountingSettings(n_train=480, n_val=96, n_test=200, width=16, crop=128, epochs=60, batch_size=16,
                        countception=True, window=32)
# COURSE_SMOKE=1 (config.is_smoke): FULL with images, epochs and seeds cut, full mode's code path in seconds
SMOKE = replace(FULL, n_train=8, n_val=4, n_test=4, epochs=1, seeds=(0, 1))


def settings() -> CountingSettings:
    """``QUICK`` or ``FULL`` by the course mode, as every chapter's ``settings()``."""
    return config.pick(QUICK, FULL, smoke=SMOKE)


def _seed(seed: int, role: int, k: int) -> int:
    """Distinct data seeds for (training, validation, test) x condition: no image is shared between splits."""
    return 1_000 * seed + 100 * role + k + 7


def _training_distribution(n: int, settings: CountingSettings, seed: int, role: int):
    """``n`` EASY-cell images split evenly over the clustering levels: (images (n, S, S), dots list)."""
    levels = settings.train_clustering
    sizes = [n // len(levels) + (k < n % len(levels)) for k in range(len(levels))]
    parts = [cell_dataset(m, dataclasses.replace(EASY, clustering=c), seed=_seed(seed, role, k))
             for k, (m, c) in enumerate(zip(sizes, levels, strict=True)) if m > 0]
    return np.concatenate([p[0] for p in parts]), [d for p in parts for d in p[1]]


def _splits(settings: CountingSettings, seed: int):
    """One seed's images: training and validation (the training distribution) and the test sets by condition."""
    val_images, val_dots = _training_distribution(settings.n_val, settings, seed, role=1)
    test = {name: cell_dataset(settings.n_test, cfg, seed=_seed(seed, 2, k))
            for k, (name, cfg) in enumerate(TEST_CONDITIONS.items())}  # every split has its own seeds: any order
    return (_training_distribution(settings.n_train, settings, seed, role=0),
            (_relight(val_images, settings.lighting, seed), val_dots), test)


def _relight(images: np.ndarray, lighting: Lighting | None, seed: int) -> np.ndarray:
    """Apply ``lighting`` once to each image with a fixed generator (validation from the training distribution)."""
    if lighting is None:
        return images
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([lighting(im, generator) for im in image_tensor(images)])[:, 0].numpy()  # each (1, S, S)


def _pick_threshold(densities, dots, settings: CountingSettings) -> float:
    """Peak threshold with the best pooled localisation F1 on validation images (fractions of one cell's peak)."""
    grid = peak_height(settings.sigma) * np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    scores = [localisation_scores([find_cells(d, settings.min_distance, t) for d in densities], dots,
                                  settings.match_radius)["f1"] for t in grid]
    return float(grid[int(np.argmax(scores))])


def _row(condition: str, method: str, pred, true, points=None, dots=None, radius: float = 4.0) -> dict:
    f1 = localisation_scores(points, dots, radius)["f1"] if points is not None else np.nan
    return {"condition": condition, "method": method, **count_errors(pred, true), "localisation_f1": f1}


def run_counting_experiment(settings: CountingSettings | None = None, *, seed: int = 0, device=None,
                            progress: bool = False) -> dict:
    """Classic pipeline (EASY-tuned and tuned on the training data) vs density regression, one seed.

    Parameters
    ----------
    settings : CountingSettings, optional
        Default ``config.pick(QUICK, FULL)``.
    seed : int
        Seeds the data (disjoint seeds per split) and the training.
    device : str or torch.device, optional
        Default :func:`course_lib.config.device`.
    progress : bool
        Show the training progress bar.

    Returns
    -------
    dict
        ``table``: a DataFrame with one row per (condition, method) — ``mae``, ``relative_error``, ``bias``,
        ``localisation_f1`` — conditions easy, clustered, shifted, methods of :data:`METHODS` that ran;
        ``counts``: ``{condition: {"true", method: per-image counts}}``; ``test``: ``{condition: (images, dots)}``;
        ``models`` and ``histories`` by method; ``threshold`` (peak threshold chosen on validation);
        ``classic_params`` (the pair chosen for ``classic_tuned`` and its tuning grid); ``seconds`` by method.
    """
    settings = settings or config.pick(QUICK, FULL, smoke=SMOKE)  # the parameter shadows settings()
    device = device or config.device()
    (train_images, train_dots), (val_images, val_dots), test = _splits(settings, seed)

    models, histories, seconds = {}, {}, {}
    tic = time.perf_counter()
    # the same labelled images as the density net: training images (lit once, as the validation images) + validation
    tuning_images = np.concatenate([_relight(train_images, settings.lighting, seed + 10_000), val_images])
    tuned = tune_classic(tuning_images, train_dots + val_dots, sigmas=settings.classic_sigmas,
                         min_distances=settings.classic_min_distances)
    seconds["classic_tuning"] = time.perf_counter() - tic
    classic_params = {"classic": {}, "classic_tuned": {"sigma": tuned["sigma"], "min_distance": tuned["min_distance"]}}

    config.seed_everything(seed)  # the same initial weights whatever ran before
    models["density"] = DensityFCN(1, 1, depth=settings.depth, width=settings.width,
                                   normalize_input=settings.normalize_input)
    if settings.countception:
        models["countception"] = CountCeptionNet(1, 1, window=settings.window, width=settings.width)
    for name, model in models.items():
        start = time.perf_counter()
        histories[name] = train_density_model(
            model, train_images, train_dots, val_images, val_dots, sigma=settings.sigma, crop=settings.crop,
            lighting=settings.lighting, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
            seed=seed, device=device, progress=progress)
        seconds[name] = time.perf_counter() - start

    density_model = models["density"]
    val_density = density_model.density(predict_outputs(density_model, val_images, device=device))[:, 0].numpy()
    threshold = _pick_threshold(val_density, val_dots, settings)

    rows, counts = [], {}
    for name, (images, dots) in test.items():
        true = np.array([len(d) for d in dots], np.float64)
        counts[name] = {"true": true}
        for method, params in classic_params.items():
            tic = time.perf_counter()
            found = [classic_count(im, **params) for im in images]
            seconds[method] = seconds.get(method, 0.0) + time.perf_counter() - tic
            counts[name][method] = np.array([c.count for c in found], np.float64)
            rows.append(_row(name, method, counts[name][method], true, [c.centroids for c in found], dots,
                             settings.match_radius))
        for method, model in models.items():
            out = predict_outputs(model, images, device=device)
            counts[name][method] = model.counts(out)[:, 0].numpy().astype(np.float64)
            points = ([find_cells(d, settings.min_distance, threshold) for d in model.density(out)[:, 0].numpy()]
                      if method == "density" else None)
            rows.append(_row(name, method, counts[name][method], true, points, dots, settings.match_radius))
    return {"table": pd.DataFrame(rows), "counts": counts, "test": test, "models": models, "histories": histories,
            "threshold": threshold, "classic_params": {**classic_params["classic_tuned"], "grid": tuned["grid"]},
            "seconds": seconds}


def seed_summary(tables) -> pd.DataFrame:
    """Per-seed result tables -> one row per (condition, method): mean and sd (ddof=1) over the seeds.

    Parameters
    ----------
    tables : sequence of DataFrame
        ``run_counting_experiment(...)["table"]`` of each seed.

    Returns
    -------
    DataFrame
        ``condition``, ``method``, ``seeds``, and ``<metric>_mean``, ``<metric>_sd`` for ``mae``, ``bias`` and
        ``localisation_f1`` (sd NaN with one seed).
    """
    both = pd.concat([t.assign(seed=k) for k, t in enumerate(tables)])
    metrics = ["mae", "bias", "localisation_f1"]
    grouped = both.groupby(["condition", "method"], sort=False)[metrics]
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_sd"))
    summary.insert(0, "seeds", grouped.size())
    return summary.reset_index()


def run_counting_seeds(settings: CountingSettings | None = None, *, device=None, progress: bool = False) -> dict:
    """:func:`run_counting_experiment` for every seed of ``settings.seeds``, and their :func:`seed_summary`.

    Returns
    -------
    dict
        ``runs``: the result of every seed (in ``settings.seeds`` order); ``summary``: mean and sd over the seeds;
        ``seconds``: wall time of all seeds together.
    """
    settings = settings or config.pick(QUICK, FULL, smoke=SMOKE)  # the parameter shadows settings()
    start = time.perf_counter()
    runs = [run_counting_experiment(settings, seed=seed, device=device, progress=progress) for seed in settings.seeds]
    return {"runs": runs, "summary": seed_summary([r["table"] for r in runs]), "seconds": time.perf_counter() - start}


def run_countception(settings: CountingSettings | None = None, *, seed: int = 0, width: int = 4, crop: int = 48,
                     epochs: int = 30, device=None, progress: bool = False) -> dict:
    """A small Count-ception net on the data of one seed of :func:`run_counting_experiment` (``ch03b`` quick mode).

    The seed's images, optimiser, learning rate, batch size and selection (best validation count MAE) are the density
    net's; ``width``, ``crop`` and ``epochs`` its own (every layer at full resolution: a CPU affords less).

    Returns
    -------
    dict
        ``table``: a row per test condition (``mae``, ``relative_error``, ``bias``); ``counts``: ``{condition: (n_test,)
        counts}``; ``val_mae``: the kept epoch's validation count MAE; ``model``, ``history``, ``seconds``.
    """
    settings = settings or config.pick(QUICK, FULL, smoke=SMOKE)  # the parameter shadows settings()
    device = device or config.device()
    (train_images, train_dots), (val_images, val_dots), test = _splits(settings, seed)
    config.seed_everything(seed)
    model = CountCeptionNet(1, 1, window=settings.window, width=width, normalize_input=settings.normalize_input)
    history = train_density_model(model, train_images, train_dots, val_images, val_dots, crop=crop,
                                  lighting=settings.lighting, epochs=epochs, batch_size=settings.batch_size,
                                  lr=settings.lr, seed=seed, device=device, progress=progress)
    counts = {n: predict_counts(model, im, device=device)[:, 0].astype(np.float64) for n, (im, _) in test.items()}
    rows = [_row(name, "countception", counts[name], [len(d) for d in test[name][1]]) for name in test]
    return {"table": pd.DataFrame(rows), "counts": counts, "val_mae": float(min(history["val_count_mae"])),
            "model": model, "history": history, "seconds": history.seconds}


@dataclass(frozen=True)
class MultiClassSettings:
    n_train: int = 96  # training tiles of synthetic_nuclei's default NucleiConfig
    n_val: int = 24
    n_test: int = 48
    sigma: float = 2.0  # density sigma: lymphocytes have a radius of ~3 px
    lambdas: tuple[float, ...] = (1.0, 1.0, 1.0)  # lymphocyte, normal epithelial, malignant epithelial
    any_weight: float = 1.0  # weight of the "any nucleus" channel
    depth: int = 3  # depth 2 at width 8 stalled (validation count MAE ~5, malignant nuclei missed); 3 did not
    width: int = 8
    crop: int = 64
    epochs: int = 30
    batch_size: int = 8
    lr: float = 2e-3
    match_radius: float = 4.0
    min_distance: int = 3
    class_radius: int = 1  # classify_cells sums each class channel over a 3x3 square
    class_head: str = "softmax"  # class channels = any-nucleus density x class probability (DensityFCN)


MULTICLASS_QUICK = MultiClassSettings()
MULTICLASS_FULL = MultiClassSettings(n_train=480, n_val=96, n_test=200, width=16, crop=128, epochs=60, batch_size=16)
# COURSE_SMOKE=1: MULTICLASS_FULL with tiles and epochs cut, as SMOKE
MULTICLASS_SMOKE = replace(MULTICLASS_FULL, n_train=8, n_val=4, n_test=4, epochs=1)


def multiclass_settings() -> MultiClassSettings:
    """``MULTICLASS_QUICK`` or ``MULTICLASS_FULL`` by the course mode."""
    return config.pick(MULTICLASS_QUICK, MULTICLASS_FULL, smoke=MULTICLASS_SMOKE)


@functools.lru_cache(maxsize=1)
def _nuclei_splits(n_train: int, n_val: int, n_test: int, seed: int):
    """Training, validation and test tiles of one seed, drawn once (read-only): a second λ reuses them."""
    splits = tuple(nuclei_dataset(n, NucleiConfig(), seed=_seed(seed, role, 50))
                   for role, n in enumerate((n_train, n_val, n_test)))
    [a.setflags(write=False) for images, dots, classes in splits for a in (images, *dots, *classes)]
    return splits


def run_multiclass_experiment(settings: MultiClassSettings | None = None, *, seed: int = 0, device=None,
                              progress: bool = False) -> dict:
    """Count and classify lymphocytes, normal and malignant epithelial nuclei with one density channel each.

    Training, validation and test tiles come from the same :class:`~course_lib.counting.synthetic_nuclei.NucleiConfig`
    (disjoint seeds); training crops get flips. The peak threshold is chosen on validation tiles.

    Returns
    -------
    dict
        ``table``: DataFrame, one row per channel (``any`` and each class) with ``mae``, ``relative_error``,
        ``bias`` of the counts; ``confusion``: (3, 3) matrix of matched test cells (rows true class);
        ``accuracy``: share of matched cells classified right; ``detection``: precision/recall/F1 of channel-0
        peaks; ``model``, ``history``, ``seconds``, ``threshold``, ``classes`` (the class names).
    """
    settings = settings or config.pick(MULTICLASS_QUICK, MULTICLASS_FULL, smoke=MULTICLASS_SMOKE)
    device = device or config.device()
    n_classes = len(CLASSES)
    tr, va, te = _nuclei_splits(settings.n_train, settings.n_val, settings.n_test, seed)
    config.seed_everything(seed)
    model = DensityFCN(3, 1 + n_classes, depth=settings.depth, width=settings.width,
                       class_head=settings.class_head)
    loss = MultiClassDensityLoss(settings.lambdas, any_weight=settings.any_weight)
    start = time.perf_counter()
    history = train_density_model(model, tr[0], tr[1], va[0], va[1], train_classes=tr[2], val_classes=va[2],
                                  n_classes=n_classes, sigma=settings.sigma, crop=settings.crop, loss_fn=loss,
                                  epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr, seed=seed,
                                  device=device, progress=progress)
    seconds = time.perf_counter() - start

    grid = peak_height(settings.sigma) * np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    val_maps = model.density(predict_outputs(model, va[0], device=device)).numpy()  # (n, 1 + C, H, W)
    f1s = [localisation_scores([find_cells(m[0], settings.min_distance, t) for m in val_maps], va[1],
                               settings.match_radius)["f1"] for t in grid]
    threshold = float(grid[int(np.argmax(f1s))])

    maps = model.density(predict_outputs(model, te[0], device=device)).numpy()  # (n, 1 + C, H, W)
    pred_counts = maps.sum(axis=(-2, -1), dtype=np.float64)  # (n, 1 + C)
    true_counts = np.array([[len(c)] + [int((c == k).sum()) for k in range(n_classes)] for c in te[2]], np.float64)
    rows = [{"channel": name, **count_errors(pred_counts[:, k], true_counts[:, k])}
            for k, name in enumerate(("any", *CLASSES))]
    confusion = np.zeros((n_classes, n_classes), np.int64)
    tp = fp = fn = 0
    for m, dots, classes in zip(maps, te[1], te[2], strict=True):
        matching, true_cls, pred_cls = match_and_classify(m, dots, classes, radius=settings.match_radius,
                                                          min_distance=settings.min_distance, threshold=threshold,
                                                          class_radius=settings.class_radius)
        confusion += confusion_matrix(true_cls, pred_cls, n_classes)
        tp, fp, fn = tp + matching.tp, fp + matching.fp, fn + matching.fn
    detection = {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
                 "f1": 2 * tp / max(2 * tp + fp + fn, 1)}
    return {"table": pd.DataFrame(rows), "confusion": confusion,
            "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)), "detection": detection,
            "model": model, "history": history, "seconds": seconds, "threshold": threshold, "classes": CLASSES}
