"""Figures of chapter 5, so the notebooks show results without long plotting cells.

Every function takes its data as arguments and draws on a new or given figure; none reads notebook globals.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from course_lib.confounders.site_probe import mean_images

__all__ = ["show_sites", "show_mean_images", "show_saliency", "draw_confound_frame", "plot_saliency_vs_accuracy",
           "format_table"]

METHOD_COLORS = {"baseline": "tab:gray", "range_norm": "tab:olive", "centred": "tab:brown", "subspace": "tab:cyan",
                 "grl": "tab:purple", "rrr": "tab:blue", "gradmask": "tab:orange", "actdiff": "tab:green"}


def show_sites(data, n_per_cell: int = 3):
    """A grid of images: rows (site, label), ``n_per_cell`` each, with the ROI outlined in red."""
    fig, axes = plt.subplots(4, n_per_cell, figsize=(1.8 * n_per_cell, 7.4))
    for row, (site, label) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        index = np.flatnonzero((data.sites == site) & (data.labels == label))[:n_per_cell]
        for col in range(n_per_cell):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(index):
                ax.imshow(data.images[index[col], 0], cmap="gray", vmin=0, vmax=1.4)
                ax.contour(data.roi[index[col], 0], levels=[0.5], colors="red", linewidths=0.8)
        axes[row, 0].set_title(f"site {site}, {'lesion' if label else 'no lesion'}", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def show_mean_images(sets: dict):
    """One row per named :class:`~course_lib.confounders.synthetic_sites.SiteData`: the average image of site 0, of
    site 1, and their difference (site 1 minus site 0; red: brighter in site 1), with the average ROI outlined.

    The differences share one colour scale, so a row whose sites have the same average image looks empty.
    """
    means = {name: mean_images(data)[:, 0] for name, data in sets.items()}  # (2, C, S, S) -> (2, S, S), channel 0
    limit = max(float(np.abs(m[1] - m[0]).max()) for m in means.values())
    fig, axes = plt.subplots(len(sets), 3, figsize=(7.8, 2.6 * len(sets)), squeeze=False)
    for row, (name, data) in enumerate(sets.items()):
        site0, site1 = means[name]
        for col, (image, title) in enumerate(((site0, f"{name}\nsite 0"), (site1, "site 1"),
                                              (site1 - site0, "site 1 − site 0"))):
            ax = axes[row, col]
            if col < 2:
                ax.imshow(image, cmap="gray", vmin=0, vmax=1.4)
            else:
                shown = ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
                fig.colorbar(shown, ax=ax, fraction=0.046)
            ax.contour(data.roi[:, 0].mean(axis=0), levels=[0.5], colors="gold", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def show_saliency(images: np.ndarray, maps: dict[str, np.ndarray], roi: np.ndarray, titles=None):
    """Images (N, 1, S, S) in the first row, then one row of |maps| per entry of ``maps``, ROI outlined."""
    n = len(images)
    fig, axes = plt.subplots(1 + len(maps), n, figsize=(2.0 * n, 2.0 * (1 + len(maps))), squeeze=False)
    for col in range(n):
        axes[0, col].imshow(images[col, 0], cmap="gray", vmin=0, vmax=1.4)
        if titles is not None:
            axes[0, col].set_title(titles[col], fontsize=8)
        for row, (name, values) in enumerate(maps.items(), start=1):
            axes[row, col].imshow(np.abs(values[col]).sum(0), cmap="magma")
            if col == 0:
                axes[row, col].set_ylabel(name, fontsize=9)
        for row in range(1 + len(maps)):
            axes[row, col].contour(roi[col, 0], levels=[0.5], colors="cyan", linewidths=0.7)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
    fig.tight_layout()
    return fig


def draw_confound_frame(results: dict, index: int):
    """The widget's drawing: shifted-test accuracy / AUROC against confound strength, and the saliency maps
    of the baseline trained at ``results["confounds"][index]``."""
    confounds = results["confounds"]
    n = results["images"].shape[0]
    fig = plt.figure(figsize=(12, 3.2))
    grid = fig.add_gridspec(1, 2 + n, width_ratios=[2.4, 0.2] + [1] * n)
    ax = fig.add_subplot(grid[0, 0])
    for name, style in (("removed", "-o"), ("reversed", "--s")):
        ax.plot(confounds, results[name][:, 0], style, color="tab:blue", label=f"accuracy, {name}")
        ax.plot(confounds, results[name][:, 1], style, color="tab:orange", label=f"AUROC, {name}")
    ax.axvline(confounds[index], color="k", lw=0.8)
    ax.set_xlabel("confound: P(site = label) in training")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("baseline on the shifted tests", fontsize=9)
    for k in range(n):
        axs = fig.add_subplot(grid[0, 2 + k])
        axs.imshow(np.abs(results["saliency"][index, k, 0]), cmap="magma")
        axs.contour(results["roi"][k, 0], levels=[0.5], colors="cyan", linewidths=0.7)
        axs.set_xticks([])
        axs.set_yticks([])
        axs.set_title(f"probe {k}", fontsize=8)
    fig.suptitle(f"trained at confound {confounds[index]:.2f}: saliency share in ROI on the removed test "
                 f"{results['removed'][index, 2]:.2f}", fontsize=9)
    return fig


def plot_saliency_vs_accuracy(table: pd.DataFrame, split: str = "reversed", metric: str = "auroc", ax=None):
    """One point per (method, hyper-parameter, seed): saliency share in the ROI against ``metric`` on ``split``.

    Returns
    -------
    (ax, rho, p) : the axes, Spearman's rank correlation over all points and its p-value.
    """
    rows = table[table.split == split]
    ax = ax or plt.subplots(figsize=(5.5, 4))[1]
    for method, group in rows.groupby("method", sort=False):
        ax.scatter(group.saliency_in_roi, group[metric], s=22, label=method, color=METHOD_COLORS.get(method))
    rho, p = stats.spearmanr(rows.saliency_in_roi, rows[metric])
    ax.set_xlabel("share of input-gradient saliency inside the ROI")
    ax.set_ylabel(f"{metric} on the {split} test")
    ax.set_title(f"Spearman rank correlation {rho:.2f} (p = {p:.2g}, {len(rows)} runs)", fontsize=9)
    ax.legend(fontsize=7)
    return ax, float(rho), float(p)


def _candidates(grid, chosen) -> str:
    """``100 · [1000] · 10000``: the grid with the chosen value bracketed, and ``(edge)`` when it is first or last."""
    if grid is None or len(grid) == 0 or pd.isna(chosen):
        return "—"
    marked = [f"[{h:g}]" if h == chosen else f"{h:g}" for h in grid]
    edge = len(grid) > 1 and chosen in (grid[0], grid[-1])
    return " · ".join(marked) + (" (edge)" if edge else "")


def format_table(summary: pd.DataFrame, metrics=("accuracy", "auroc", "saliency_in_roi"), grids=None) -> pd.DataFrame:
    """``mean ± sd`` strings of :func:`~course_lib.confounders.experiment.summarise`'s table, one column per
    (test split, metric).

    ``grids`` (``SweepSettings.grids``), if given, adds the candidates of each method with the chosen one in
    brackets, marked ``(edge)`` when it is the first or last. The ``site label`` column says whether a method reads
    the site label at test time, in training only, or never.
    """
    out = pd.DataFrame(index=summary.index)
    out["hyper"] = summary[("hyper", "", "")].map(lambda h: "—" if pd.isna(h) else f"{h:g}")
    if grids is not None:
        grids = dict(grids)
        out["candidates"] = [_candidates(grids.get(m), h) for m, h in zip(summary.index, summary[("hyper", "", "")],
                                                                        strict=True)]
    if ("site label", "", "") in summary.columns:
        out["site label"] = summary[("site label", "", "")]
    for split in ("kept", "removed", "reversed"):
        for metric in metrics:
            mean, sd = summary[(split, metric, "mean")], summary[(split, metric, "sd")]
            out[f"{split} {metric}"] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(mean, sd, strict=True)]
    return out
