"""Figures of chapter 4, kept out of the notebooks: contrasts side by side, live training samples, the lecture's
translation grid and the bias curves. Every function takes its data as arguments and only draws."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["show_contrasts", "show_samples", "translation_grid", "plot_bias_curves"]


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def show_contrasts(rows: dict[str, np.ndarray], masks: np.ndarray | None = None, *, size: float = 1.6,
                   titles: list[str] | None = None):
    """A grid with one row per named image stack ``(k, S, S)``; ``masks`` (k, S, S) outlined in red on every row.

    Returns the figure.
    """
    names = list(rows)
    k = len(next(iter(rows.values())))
    fig, axes = plt.subplots(len(names), k, figsize=(size * k, size * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(rows[name][c], cmap="gray", vmin=0, vmax=1)
            if masks is not None and masks[c].any():
                ax.contour(masks[c], levels=[0.5], colors="red", linewidths=0.6)
            _off(ax)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
            if r == 0 and titles is not None:
                ax.set_title(titles[c], fontsize=8)
    fig.tight_layout()
    return fig


def show_samples(source: np.ndarray, translated: np.ndarray, reconstructed: np.ndarray, step: int, losses: dict,
                 fig=None):
    """Live training samples: rows FLAIR, G(FLAIR), H(G(FLAIR)); the title gives the step and the losses."""
    fig = fig or plt.figure(figsize=(9, 3.6))
    fig.clf()
    k = len(source)
    axes = fig.subplots(3, k, squeeze=False)
    for r, (name, images) in enumerate((("FLAIR", source), ("G(FLAIR)", translated),
                                        ("H(G(FLAIR))", reconstructed))):
        for c in range(k):
            axes[r, c].imshow(images[c], cmap="gray", vmin=0, vmax=1)
            _off(axes[r, c])
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in losses.items()), fontsize=9)
    return fig


def translation_grid(examples: dict, fractions, method: str = "cyclegan", *, size: float = 1.3):
    """The lecture's figure: rows = real FLAIR, its translation at each target tumour share, real T1.

    ``examples`` is :attr:`SweepResult.examples`; tumour outlines (red) are those of the real slices.
    """
    rows = {"real FLAIR": examples["flair"]}
    for fraction in fractions:
        rows[f"T1 @ {100 * fraction:.0f} %"] = examples["translations"][method, fraction]
    rows["real T1"] = examples["t1"]
    titles = ["tumour" if t else "healthy" for t in examples["tumour"]]
    return show_contrasts(rows, examples["mask"], size=size, titles=titles)


def plot_bias_curves(summary: pd.DataFrame, *, measures=("erased", "hallucinated"), ax=None):
    """Shares (mean +- sd over seeds) against the target domain's tumour share: CycleGAN (solid) and the paired
    control (dashed) at each share, the real T1 of the test slices (dotted) as the floor."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    colours = ("tab:blue", "tab:red", "tab:green", "tab:purple")
    for measure, colour in zip(measures, colours, strict=False):
        for method, style, label in (("cyclegan", "-", "CycleGAN"), ("paired", "--", "paired L1")):
            rows = summary[summary.method == method].sort_values("fraction")
            if len(rows):
                ax.errorbar(100 * rows.fraction, rows[f"{measure}_mean"], yerr=rows[f"{measure}_sd"], color=colour,
                            ls=style, marker="o", capsize=3, label=f"{label}: {measure}")
        real = summary[summary.method == "real_t1"]
        if len(real):
            ax.axhline(real[f"{measure}_mean"].iloc[0], color=colour, ls=":", lw=1, label=f"real T1: {measure}")
    ax.set_xlabel("tumour slices in the T1 training set (%)")
    ax.set_ylabel("share of test slices")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax
