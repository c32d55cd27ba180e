"""Report figures: posterior heatmap, learning curve, policy comparison, per-step metrics.

Figures are drawn on the Agg canvas directly (``matplotlib.figure.Figure`` with
``FigureCanvasAgg``), never through ``pyplot``, so plotting does not touch the global backend
or figure registry of other matplotlib users; each figure is cleared after saving. Each
``plot_*`` function draws one table to ``path``, the PNG to write (its folder is created), and
returns ``path``; a table that is empty or lacks a column the plot needs is a ``ValueError``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

logger = logging.getLogger(__name__)

_DPI = 150
_DOLLARS = FuncFormatter(lambda v, _: f"${v:,.0f}")
_STYLE = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_Z95 = 1.96


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    """Raise ``ValueError`` if ``frame`` is empty or lacks any of ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what}: missing column(s) {', '.join(missing)}; got {', '.join(map(str, frame))}"
        )
    if frame.empty:
        raise ValueError(f"{what}: the table is empty")


@contextmanager
def _figure(path: Path, size: tuple[float, float]) -> Iterator[Figure]:
    """Yield an Agg-backed figure with the report style; save it to ``path`` on exit."""
    path = Path(path)
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        try:
            yield fig
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=_DPI, format="png")
        finally:
            fig.clear()
    logger.info("wrote %s", path)


def plot_response_heatmap(table: pd.DataFrame, path: Path, level: float | None = None) -> Path:
    """Heatmap of the posterior mean response rate per persona x campaign.

    Parameters
    ----------
    table
        Columns ``persona_id, campaign_id, mean, p_low, p_high`` (rates in [0, 1]).
    level
        Credible level of ``p_low``/``p_high``, shown in the title when given.
    """
    _require(table, ["persona_id", "campaign_id", "mean", "p_low", "p_high"], "heatmap")
    personas = list(dict.fromkeys(table["persona_id"].astype(str)))
    campaigns = list(dict.fromkeys(table["campaign_id"].astype(str)))
    grids = {
        col: table.assign(persona_id=table["persona_id"].astype(str),
                          campaign_id=table["campaign_id"].astype(str))
        .pivot_table(index="persona_id", columns="campaign_id", values=col, aggfunc="mean")
        .reindex(index=personas, columns=campaigns)
        .to_numpy(dtype=float)
        for col in ("mean", "p_low", "p_high")
    }
    mean = grids["mean"]
    width = max(5.0, 1.5 * len(campaigns) + 2.5)
    height = max(3.5, 0.9 * len(personas) + 1.8)
    with _figure(path, (width, height)) as fig:
        ax = fig.add_subplot()
        finite = mean[np.isfinite(mean)]
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        image = ax.imshow(np.ma.masked_invalid(mean), cmap="viridis", vmin=0.0, vmax=vmax,
                          aspect="auto")
        cmap = image.get_cmap()
        for i in range(len(personas)):
            for j in range(len(campaigns)):
                m = mean[i, j]
                if not np.isfinite(m):
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=9, color="0.4")
                    continue
                label = (f"{100 * m:.1f}%\n"
                         f"[{100 * grids['p_low'][i, j]:.1f}–{100 * grids['p_high'][i, j]:.1f}]")
                r, g, b, _ = cmap(m / vmax)
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(j, i, label, ha="center", va="center", fontsize=9,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(campaigns)), campaigns, rotation=30, ha="right")
        ax.set_yticks(range(len(personas)), personas)
        ax.spines[:].set_visible(False)
        ax.set_xlabel("Campaign")
        ax.set_ylabel("Persona")
        interval = f"{level:.0%} credible interval" if level is not None else "credible interval"
        ax.set_title(f"Posterior response rate (mean [{interval}])")
        bar = fig.colorbar(image, ax=ax)
        bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
        bar.set_label("P(response)")
    return Path(path)


def _seed_band(curve: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Across-seed mean and 95% band on the union of timesteps (per-seed interpolation)."""
    grid = np.unique(curve["timesteps"].to_numpy(dtype=float))
    rows = []
    for _, run in curve.sort_values("timesteps").groupby("seed", sort=True):
        x = run["timesteps"].to_numpy(dtype=float)
        y = run["mean_return"].to_numpy(dtype=float)
        inside = (grid >= x.min()) & (grid <= x.max())
        rows.append(np.where(inside, np.interp(grid, x, y), np.nan))
    values = np.vstack(rows)
    count = np.isfinite(values).sum(axis=0)
    mean = np.nanmean(values, axis=0)
    sq = np.nansum((values - mean) ** 2, axis=0)
    std = np.sqrt(np.divide(sq, count - 1, out=np.zeros_like(sq), where=count > 1))
    half = _Z95 * std / np.sqrt(np.maximum(count, 1))
    return grid, mean, mean - half, mean + half


def _smoothed(x: np.ndarray, y: np.ndarray, points: int = 60
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A rolling mean of a noisy curve with a 95% band, on at most ``points`` windows."""
    window = max(1, len(y) // points)
    n = len(y) // window * window
    blocks = y[:n].reshape(-1, window)
    mean = blocks.mean(axis=1)
    half = (_Z95 * blocks.std(axis=1, ddof=1) / np.sqrt(window) if window > 1
            else np.zeros_like(mean))
    centres = x[:n].reshape(-1, window).mean(axis=1)
    return centres, mean, mean - half, mean + half


def plot_learning_curve(curve: pd.DataFrame, path: Path, horizon: int | None = None) -> Path:
    """Episode return against training timesteps, with a shaded band.

    Parameters
    ----------
    curve
        Columns ``timesteps, mean_return``; optional ``ci_low, ci_high`` (band for one run)
        and ``seed``. With several seeds the across-seed mean is drawn with a 95% band
        (normal approximation) and each seed as a thin line; a single long, noisy run is
        drawn faint, under its smoothed mean with a 95% band.
    horizon
        Weeks per episode, for the axis label (returns are dollars per season).
    """
    _require(curve, ["timesteps", "mean_return"], "learning curve")
    seeds = curve["seed"].nunique() if "seed" in curve.columns else 1
    with _figure(path, (7.5, 4.5)) as fig:
        ax = fig.add_subplot()
        if seeds > 1:
            for seed, run in curve.sort_values("timesteps").groupby("seed", sort=True):
                ax.plot(run["timesteps"], run["mean_return"], lw=0.8, alpha=0.35,
                        color="tab:blue", label="_nolegend_")
                logger.debug("learning curve: seed %s has %d points", seed, len(run))
            x, y, low, high = _seed_band(curve)
            label, band = f"mean of {seeds} seeds", "95% CI across seeds"
        else:
            run = curve.sort_values("timesteps")
            x = run["timesteps"].to_numpy(dtype=float)
            y = run["mean_return"].to_numpy(dtype=float)
            has_ci = {"ci_low", "ci_high"} <= set(run.columns)
            low = run["ci_low"].to_numpy(dtype=float) if has_ci else None
            high = run["ci_high"].to_numpy(dtype=float) if has_ci else None
            label, band = "mean return", "confidence band"
            if not has_ci and len(x) > 60:
                ax.plot(x, y, lw=0.6, alpha=0.3, color="tab:blue", label="each episode")
                x, y, low, high = _smoothed(x, y)
                label, band = "smoothed mean", "95% CI of the mean"
        ax.plot(x, y, lw=2.0, color="tab:blue", marker="o" if len(x) <= 30 else None,
                ms=4, label=label)
        if low is not None and high is not None:
            ax.fill_between(x, low, high, color="tab:blue", alpha=0.2, lw=0, label=band)
        ax.set_xlabel("Training timesteps")
        ax.set_ylabel(f"Return (dollars per {_season(horizon)})")
        ax.yaxis.set_major_formatter(_DOLLARS)
        ax.set_title("Learning curve: return of the training episodes")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    return Path(path)


def plot_policy_comparison(evaluation: pd.DataFrame, path: Path,
                           horizon: int | None = None,
                           title: str = "Policies compared on the same evaluation seasons "
                                        "(95% CI)",
                           ylabel: str = "Policy", highlight: str | None = None) -> Path:
    """Mean return per policy with 95% confidence intervals, best on top.

    Parameters
    ----------
    evaluation
        Columns ``policy, mean_return, ci_low, ci_high``.
    horizon
        Weeks per episode, for the axis label (returns are dollars per season).
    title, ylabel
        The figure's title and the label of the axis of names.
    highlight
        The name drawn in colour (default: the best).
    """
    _require(evaluation, ["policy", "mean_return", "ci_low", "ci_high"], "policy comparison")
    table = evaluation.sort_values(["mean_return", "policy"], ascending=[True, True])
    names = table["policy"].astype(str).tolist()
    mean = table["mean_return"].to_numpy(dtype=float)
    low = table["ci_low"].to_numpy(dtype=float)
    high = table["ci_high"].to_numpy(dtype=float)
    errors = np.vstack([np.clip(mean - low, 0, None), np.clip(high - mean, 0, None)])
    y = np.arange(len(names))
    with _figure(path, (7.5, max(3.0, 0.6 * len(names) + 1.6))) as fig:
        ax = fig.add_subplot()
        chosen = highlight if highlight in names else names[-1]
        colors = ["tab:green" if name == chosen else "tab:gray" for name in names]
        ax.barh(y, mean, color=colors, alpha=0.35, height=0.6)
        ax.errorbar(mean, y, xerr=errors, fmt="o", color="black", ecolor="black",
                    capsize=4, lw=1.2, label="mean (95% CI)")
        span = float(np.nanmax(high) - np.nanmin(np.minimum(low, 0)))
        for yi, (m, h) in enumerate(zip(mean, high, strict=True)):
            ax.text(h + 0.01 * (span or 1.0), yi, f"${m:,.0f}", va="center", fontsize=9)
        ax.set_yticks(y, names)
        ax.axvline(0.0, color="0.5", lw=0.8)
        ax.set_xlabel(f"Mean return (dollars per {_season(horizon)})")
        ax.xaxis.set_major_formatter(_DOLLARS)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right")
    return Path(path)


STEP_UNITS = {
    "sends": ("Messages sent", "messages"),
    "responses": ("Responses", "recipients who responded"),
    "response_rate": ("Response rate", "share of the audience"),
    "mean_fatigue": ("Mean fatigue", "logit penalty per recipient"),
    "spend": ("Spend", "dollars"),
    "value": ("Value of responses", "dollars"),
    "reward": ("Reward (value minus spend)", "dollars"),
    "budget_remaining": ("Budget remaining", "dollars"),
}
"""Title and y-axis unit of each weekly metric the simulation collects."""


def _season(horizon: int | None) -> str:
    return f"{horizon}-week season" if horizon else "season"


def plot_step_metrics(metrics: pd.DataFrame, path: Path, hue: str | None = None) -> Path:
    """Small multiples of per-step metrics (one panel per numeric column).

    Parameters
    ----------
    metrics
        Column ``step`` and numeric metric columns (e.g. ``response_rate, mean_fatigue,
        spend``). Several rows per step (e.g. seeds) are averaged, with a 95% band.
    hue
        Optional column whose values get one line each (default: ``policy`` if present).
    """
    _require(metrics, ["step"], "step metrics")
    if hue is None and "policy" in metrics.columns:
        hue = "policy"
    if hue is not None:
        _require(metrics, [hue], "step metrics")
    skip = {"step", "seed", "episode", hue}
    names = [c for c in metrics.columns
             if c not in skip and pd.api.types.is_numeric_dtype(metrics[c])
             and not pd.api.types.is_bool_dtype(metrics[c])]
    if not names:
        raise ValueError("step metrics: no numeric metric columns besides 'step'")
    groups = (list(metrics.groupby(hue, sort=True)) if hue is not None
              else [(None, metrics)])
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    with _figure(path, (4.2 * ncols, 3.2 * nrows + 0.6)) as fig:
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, name in zip(axes, names, strict=False):
            for label, part in groups:
                stats = part.groupby("step")[name].agg(["mean", "std", "count"])
                x = stats.index.to_numpy(dtype=float)
                line = ax.plot(x, stats["mean"], lw=1.8,
                               label=str(label) if label is not None else name)[0]
                if (stats["count"] > 1).any():
                    half = _Z95 * stats["std"].fillna(0) / np.sqrt(stats["count"])
                    ax.fill_between(x, stats["mean"] - half, stats["mean"] + half,
                                    color=line.get_color(), alpha=0.2, lw=0)
            title, unit = STEP_UNITS.get(name, (name.replace("_", " ").capitalize(), name))
            ax.set_title(title)
            ax.set_xlabel("Week")
            ax.set_ylabel(unit)
            if unit == "dollars":
                ax.yaxis.set_major_formatter(_DOLLARS)
            ax.grid(alpha=0.3)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        if hue is not None:
            axes[0].legend(title=hue, loc="best")
        fig.suptitle("The deployed policy, week by week (one evaluation season)")
    return Path(path)
