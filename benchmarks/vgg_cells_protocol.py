"""Full-mode recipe: the standard VGG cells protocol (N = 32 training images) with the density U-Net of chapter 3.

The protocol of Lempitsky & Zisserman (2010), also reported by Xie et al. and Count-ception: train on N images,
validate on another N, count the 100 held-out test images, and report the mean absolute count error over several
random draws of the N (see :func:`course_lib.counting.datasets.vgg_cells_split` for which images are held
out). Cells are in the blue channel; each image is 256 x 256 with about 174 cells. Model selection (the epoch
kept) uses the validation images only; the test images are counted once, at the end.

Prepare the data once with ``data_scripts/vgg_cells.py`` (it lands in ``COURSE_DATA/vgg_cells``), then::

    .venv/bin/python benchmarks/vgg_cells_protocol.py                    # N = 32, seeds 0-4, GPU when present
    .venv/bin/python benchmarks/vgg_cells_protocol.py --n-train 64 --seeds 0 1 2 --epochs 300

The last line is the headline figure, ``vgg_cells_mae_n32: <mean> cells (sd <sd> over <k> draws)``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from course_lib import config
from course_lib.counting.datasets import read_image, read_vgg_cells, vgg_cells_split
from course_lib.counting.models import DensityFCN
from course_lib.counting.training import predict_counts, train_density_model

CELL_CHANNEL = 2  # the cells are drawn in the blue channel of NNNcell.png


def load(records) -> tuple[np.ndarray, list[np.ndarray]]:
    """Images (n, H, W) float32 in [0, 1] (the blue channel) and the dots (N_i, 2) of each record."""
    images = []
    for record in records:
        pixels = read_image(record.image)
        channel = pixels[..., CELL_CHANNEL] if pixels.ndim == 3 else pixels
        images.append(channel.astype(np.float32) / 255.0)
    return np.stack(images), [np.asarray(record.dots, dtype=np.float64) for record in records]


def run(root: Path, *, n_train: int, seed: int, epochs: int, width: int, sigma: float, crop: int,
        batch_size: int, lr: float, device) -> dict:
    """Train on one draw of ``n_train`` images; returns the test MAE and the counts."""
    split = vgg_cells_split(read_vgg_cells(root), n_train=n_train, seed=seed)
    (train_x, train_dots), (val_x, val_dots), (test_x, test_dots) = (load(split[k]) for k in ("train", "val", "test"))
    config.seed_everything(seed)
    model = DensityFCN(1, 1, depth=3, width=width)
    start = time.perf_counter()
    history = train_density_model(model, train_x, train_dots, val_x, val_dots, sigma=sigma, crop=crop, epochs=epochs,
                                  batch_size=batch_size, lr=lr, seed=seed, device=device)
    predicted = predict_counts(model, test_x, device=device)[:, 0]
    truth = np.array([len(d) for d in test_dots], dtype=float)
    return {"mae": float(np.mean(np.abs(predicted - truth))), "best_epoch": history.best_epoch,
            "val_mae": min(history["val_count_mae"]), "seconds": time.perf_counter() - start,
            "mean_count": float(truth.mean())}


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
    args = parser.parse_args(argv)
    root = args.root or config.data_dir("vgg_cells")
    device = config.device()
    print(f"VGG cells from {root}, N = {args.n_train}, seeds {args.seeds}, {args.epochs} epochs, device {device}")
    maes = []
    for seed in args.seeds:
        result = run(root, n_train=args.n_train, seed=seed, epochs=args.epochs, width=args.width, sigma=args.sigma,
                     crop=args.crop, batch_size=args.batch_size, lr=args.lr, device=device)
        maes.append(result["mae"])
        print(f"seed {seed}: test MAE {result['mae']:.2f} cells (mean count {result['mean_count']:.1f}), "
              f"best validation MAE {result['val_mae']:.2f} at epoch {result['best_epoch']}, "
              f"{result['seconds']:.0f} s")
    print(f"vgg_cells_mae_n{args.n_train}: {np.mean(maes):.2f} cells (sd {np.std(maes):.2f} over {len(maes)} draws)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
