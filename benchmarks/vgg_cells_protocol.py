"""Full-mode recipe: the standard VGG cells protocol, the density U-Net and Count-ception of chapter 3 side by side.

The protocol of Lempitsky & Zisserman (2010, section 4), also reported by Xie et al. (2018) and Count-ception (Cohen
et al., 2017): of the 200 images, train on N images drawn from the first 100, validate on another N from them, and
count the **last 100** (numbers 101-200, the fixed test set); report the mean absolute count error over several
random draws of the N (:func:`course_lib.counting.datasets.vgg_cells_split`). Cells are in the blue channel; each
image is 256 x 256 with about 174 cells.

Both nets see the same draw, the same training and validation images and the same number of epochs, and each keeps
the epoch with its lowest validation count MAE (model selection on validation only); the test images are counted
once, at the end. Count-ception uses the paper's 32 px window (``--window``). The spread over draws is the sample
standard deviation (ddof=1).

Prepare the data once with ``python -m data_scripts.vgg_cells`` (it lands in ``COURSE_DATA/vgg_cells``), then::

    .venv/bin/python benchmarks/vgg_cells_protocol.py                    # N = 32, seeds 0-4, GPU when present
    .venv/bin/python benchmarks/vgg_cells_protocol.py --n-train 64 --seeds 0 1 2 --epochs 300
    .venv/bin/python benchmarks/vgg_cells_protocol.py --models density   # the density U-Net only

The last lines are the headline figures, one per model:
``vgg_cells_mae_n32_<model>: <mean> cells (sd <sd> over <k> draws)``.

**On a laptop** (``--cpu``): the density U-Net alone, at the size of a CPU (3 levels, 16 channels, 128 px crops),
trained with the steady recipe of :mod:`course_lib.counting.steady_training` (a fixed number of Adam steps, warm-up
then cosine decay, an average of the weights, validation on whole images in the second half and the best check
kept), then one count scale fitted on the validation images (sum of true over sum of predicted counts). The
model and the scale are chosen on the N validation images only. Each draw is
:func:`course_lib.counting.vgg_protocol.run_steady_draw`, which ch03b's full mode runs too. ``--synthetic`` writes
200 VGG-like images (:mod:`course_lib.counting.synthetic_vgg`: 256 px, 174 +- 64 cells, blue cells, red dots) to a
temporary folder and runs the same protocol on them, for a machine without the real files::

    .venv/bin/python benchmarks/vgg_cells_protocol.py --cpu                  # the real set, seeds 0-2
    .venv/bin/python benchmarks/vgg_cells_protocol.py --cpu --synthetic      # VGG-like synthetic images

The draws train side by side, each in its own process of one torch thread (``--jobs``, default all draws at once;
``--jobs 1`` trains them one after another in this process, with the same numbers). The weights and activations are
in ``torch.channels_last`` (NHWC), where oneDNN's CPU convolutions run without converting every activation; ``--nchw``
trains in PyTorch's default layout, slower, the same function summed in another order.

Measured with ``--cpu --synthetic`` on an idle 2-core AMD EPYC with AVX-512 (2026-12-04), the three draws side by
side: **255 s wall in all** (161-163 s of CPU time per draw), test MAE 1.02, 0.88 and 0.83 cells (mean 0.91, sd
0.10); the same best checks (steps 210, 360, 270) as with ``--nchw``, which took 346 s (218-223 s of CPU time per
draw; MAE 1.04, 0.79, 0.85, mean 0.89, sd 0.13). The earlier measurements below are all in NCHW.

Measured with ``--cpu --synthetic`` (seeds 0, 1, 2, one process each, one torch thread, on a shared 2-core machine
with a load average of 5-9, so the wall times of 680-1270 s per draw say little): 237-245 s of CPU time per draw,
hence at most about 4 min per draw on an idle core and about 12 min for the three draws. Test MAE 1.04, 0.79 and
0.85 cells (mean 0.89, sd 0.13; mean count 172), before the validation scale 3.95, 6.05 and 5.04 (mean 5.01): the
net under-counts, by 2-3.5 % on these images. The validation MAE of the averaged weights (before the scale) moved
by 4-5 cells between checks in the first half of the checks and by at most 1.4 cells in the last three. These
numbers are on synthetic images; the real set has not been run with this recipe. Two torch threads did not help on
the shared machine: seed 0 with ``OMP_NUM_THREADS=2`` at a load average of about 3 took 814 s wall and 870 s of CPU
time (test MAE 0.92; the thread count changes the floating-point sums, so not the 1.04 of one thread). Run it with
``OMP_NUM_THREADS=1`` where other jobs share the cores.

Side by side, on an idle 2-core 2 GHz EPYC with AVX2 and no AVX-512 (2026-12-04): the three draws took 836 s wall in
all (279 s of the two cores per draw), 525-538 s of CPU time each, twice the AVX-512 machine's. Test MAE 1.04, 0.80
and 0.81 (mean 0.88, sd 0.14); the sequential run above, on the AVX-512 machine (other kernels, other rounding),
gave 1.04, 0.79 and 0.85.

References
----------
Lempitsky & Zisserman (2010). Learning to count objects in images. NeurIPS — the data set and the protocol.
Xie, Noble & Zisserman (2018). Microscopy cell counting and detection with fully convolutional regression networks.
Cohen, Boucher, Glastonbury, Lo & Bengio (2017). Count-ception: counting by fully convolutional redundant counting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import config
from course_lib.counting.datasets import read_vgg_cells, vgg_cells_split
from course_lib.counting.models import CountCeptionNet, DensityFCN
from course_lib.counting.synthetic_vgg import write_vgg_like
from course_lib.counting.training import predict_counts, train_density_model
from course_lib.counting.vgg_protocol import STEADY_RECIPE, load_vgg_images, run_steady_draw

MODELS = ("density", "countception")
CPU_SEEDS = [0, 1, 2]  # three draws of the N images: a mean with its spread


def build(name: str, *, width: int, window: int):
    """The density U-Net (depth 3) or a Count-ception net with a ``window`` px receptive field."""
    if name == "density":
        return DensityFCN(1, 1, depth=3, width=width)
    if name == "countception":
        return CountCeptionNet(1, 1, window=window, width=width)
    raise ValueError(f"model must be one of {MODELS}, got {name!r}")


def run(root: Path, *, n_train: int, seed: int, epochs: int, width: int, sigma: float, crop: int,
        batch_size: int, lr: float, device, models=MODELS, window: int = 32) -> dict:
    """Train every model of ``models`` on one draw of ``n_train`` images; returns each one's test MAE and more."""
    split = vgg_cells_split(read_vgg_cells(root), n_train=n_train, seed=seed)
    (train_x, train_dots), (val_x, val_dots), (test_x, test_dots) = (load_vgg_images(split[k])
                                                                  for k in ("train", "val", "test"))
    truth = np.array([len(d) for d in test_dots], dtype=float)
    out = {}
    for name in models:
        config.seed_everything(seed)  # the same draw and the same seed for both models
        model = build(name, width=width, window=window)
        start = time.perf_counter()
        history = train_density_model(model, train_x, train_dots, val_x, val_dots, sigma=sigma, crop=crop,
                                      epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device)
        predicted = predict_counts(model, test_x, device=device)[:, 0]
        out[name] = {"mae": float(np.mean(np.abs(predicted - truth))), "best_epoch": history.best_epoch,
                     "val_mae": min(history["val_count_mae"]), "seconds": time.perf_counter() - start,
                     "mean_count": float(truth.mean())}
    return out


def run_cpu(root: Path, *, n_train: int, seed: int, sigma: float = 2.0, recipe: dict | None = None,
            log=None) -> dict:
    """The --cpu recipe on one draw (:func:`~course_lib.counting.vgg_protocol.run_steady_draw` on the CPU): its test
    MAE, validation MAE and seconds, as plain numbers."""
    result = run_steady_draw(root, n_train=n_train, seed=seed, sigma=sigma, recipe=recipe, device="cpu", log=log)
    numbers = {k: v for k, v in result.items() if k not in ("model", "predicted", "truth", "best_step")}
    return {"density": numbers | {"where": f"step {result['best_step']}"}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="prepared VGG cells (default COURSE_DATA/vgg_cells)")
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--window", type=int, default=32, help="Count-ception window (the paper's 32 px)")
    parser.add_argument("--cpu", action="store_true", help="the 2-core recipe (density U-Net, steady training)")
    parser.add_argument("--steps", type=int, default=STEADY_RECIPE["steps"], help="--cpu: Adam steps per draw")
    parser.add_argument("--nchw", action="store_true",
                        help="--cpu: train in PyTorch's default NCHW layout instead of channels_last (slower on CPUs)")
    parser.add_argument("--synthetic", action="store_true", help="VGG-like synthetic images instead of the real set")
    parser.add_argument("--verbose", action="store_true", help="--cpu: print every validation check")
    parser.add_argument("--jobs", type=int, default=None,
                        help="--cpu: draws trained side by side, one process of one torch thread each (default: all)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one draw's result, for --jobs
    args = parser.parse_args(argv)
    if args.synthetic:
        with tempfile.TemporaryDirectory() as folder:
            print("writing 200 VGG-like synthetic images (course_lib.counting.synthetic_vgg): numbers measured on "
                  "them are synthetic, not the real set's")
            return _main(args, write_vgg_like(Path(folder) / "vgg_like", 200, seed=0))
    return _main(args, args.root or config.data_dir("vgg_cells"))


def _main(args, root: Path) -> int:
    if args.cpu:
        seeds = args.seeds if args.seeds != [0, 1, 2, 3, 4] else CPU_SEEDS  # --cpu: three draws unless told
        models, device = ["density"], "cpu"
        print(f"VGG cells from {root}, N = {args.n_train}, seeds {seeds}, CPU recipe "
              f"{STEADY_RECIPE | _cpu_options(args)}, {torch.get_num_threads()} torch threads")
    else:
        seeds, models, device = args.seeds, args.models, config.device()
        print(f"VGG cells from {root}, N = {args.n_train}, seeds {seeds}, {args.epochs} epochs, models "
              f"{models}, device {device}")
    maes = {name: [] for name in models}
    start = time.perf_counter()
    jobs = min(args.jobs or len(seeds), len(seeds)) if args.cpu else 1
    if jobs > 1:
        print(f"{len(seeds)} draws side by side in {jobs} processes of one torch thread each")
        by_seed = _cpu_draws_side_by_side(args, root, seeds, jobs)
    for seed in seeds:
        if jobs > 1:
            results = by_seed[seed]
        elif args.cpu:
            results = run_cpu(root, n_train=args.n_train, seed=seed, sigma=args.sigma,
                              recipe=_cpu_options(args), log=print if args.verbose else None)
            if args.json:
                print("RESULT " + json.dumps(results))
                return 0
        else:
            results = run(root, n_train=args.n_train, seed=seed, epochs=args.epochs, width=args.width,
                          sigma=args.sigma, crop=args.crop, batch_size=args.batch_size, lr=args.lr, device=device,
                          models=models, window=args.window)
        for name, result in results.items():
            maes[name].append(result["mae"])
            print(f"seed {seed} {name:12s}: test MAE {result['mae']:.2f} cells "
                  f"(mean count {result['mean_count']:.1f}), "
                  f"best validation MAE {result['val_mae']:.2f} at "
                  f"{result.get('where', 'epoch ' + str(result.get('best_epoch')))}, "
                  f"{result['seconds']:.0f} s" + (f" ({result['cpu_seconds']:.0f} s of CPU time, bias "
                                                   f"{result['bias']:+.2f}; before the validation scale "
                                                   f"x{result['scale']:.3f}: MAE {result['raw_mae']:.2f})"
                                                   if "cpu_seconds" in result else ""))
    for name, values in maes.items():
        sd = np.std(values, ddof=1) if len(values) > 1 else float("nan")  # the sample sd over draws
        print(f"vgg_cells_mae_n{args.n_train}_{name}: {np.mean(values):.2f} cells "
              f"(sd {sd:.2f} over {len(values)} draws, {time.perf_counter() - start:.0f} s wall in all)")
    return 0


def _cpu_options(args) -> dict:
    """What the command line changes in STEADY_RECIPE."""
    return {"steps": args.steps, "crop": args.crop, "channels_last": not args.nchw}


def _cpu_draws_side_by_side(args, root: Path, seeds: list[int], jobs: int) -> dict[int, dict]:
    """Each draw of the --cpu recipe in its own process (this script, ``--json``), ``jobs`` at a time, one torch
    thread each: on 2 cores three single-thread processes finish sooner than the draws one after another on two
    threads. Results by seed; a draw that fails stops the others and the run, with its output. With ``--verbose``
    each draw's checks are printed when the draw ends."""
    command = [sys.executable, __file__, "--cpu", "--json", "--root", str(root), "--n-train", str(args.n_train),
               "--sigma", str(args.sigma), "--steps", str(args.steps), "--crop", str(args.crop),
               *(["--verbose"] if args.verbose else []), *(["--nchw"] if args.nchw else [])]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    results, waiting, running = {}, list(seeds), {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                seed = waiting.pop(0)
                running[seed] = subprocess.Popen([*command, "--seeds", str(seed)], env=env, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True)
            seed = next(iter(running))  # drawn in order; the others keep running meanwhile
            out, _ = running.pop(seed).communicate()
            lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
            if not lines:
                raise RuntimeError(f"the draw of seed {seed} failed:\n{out[-3000:]}")
            if args.verbose:
                print(f"seed {seed}:\n" + "\n".join(line for line in out.splitlines() if line.startswith("  step")))
            results[seed] = json.loads(lines[-1][len("RESULT "):])
    finally:
        for process in running.values():  # left only when a draw failed: no orphan keeps training
            process.kill()
            process.wait()
    return results


if __name__ == "__main__":
    raise SystemExit(main())
