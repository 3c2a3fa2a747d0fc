"""Skill plots: the Taylor diagram (Taylor 2001, J. Geophys. Res. 106(D7), 7183–7192).

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, never through pyplot,
so importing or using this module changes no global matplotlib state (backend, rcParams, the
pyplot figure registry) and works headless.

In a Taylor diagram a simulation is a point at radius σ_sim/σ_obs (normalised standard deviation)
and polar angle arccos(r) (r: Pearson correlation with the observations); the observations are the
reference point (1, 0). The distance from the reference point is then the normalised centred RMS
difference E′/σ_obs, since E′² = σ_sim² + σ_obs² − 2 σ_sim σ_obs r (law of cosines); its contours
are circles around the reference point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.projections.polar import PolarAxes
from matplotlib.transforms import offset_copy

from emulators.metrics import MetricError

#: Correlations labelled on the angular axis (Taylor 2001, Fig. 2); mirrored when r < 0 occurs.
CORRELATION_TICKS: tuple[float, ...] = (
    0.0,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    0.95,
    0.99,
)
#: The ``gid`` of each plotted point is ``taylor:<label>``; the reference point's is REFERENCE_GID.
GID_PREFIX = "taylor:"
REFERENCE_GID = "taylor-reference"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")


def taylor_points(
    stats: Mapping[str, tuple[float, float]] | pd.DataFrame,
) -> dict[str, tuple[float, float]]:
    """``{label: (std_ratio, r)}`` from a mapping or a table with ``std_ratio`` and ``pearson_r``
    columns (e.g. :func:`emulators.metrics.skill_table`; row labels are joined with "/").

    Raises :class:`~emulators.metrics.MetricError` naming the label for a std ratio that is not
    finite and ≥ 0 or a correlation outside [−1, 1].
    """
    if isinstance(stats, pd.DataFrame):
        missing = [c for c in ("std_ratio", "pearson_r") if c not in stats.columns]
        if missing:
            raise MetricError(
                "stats", "columns", f"stats: Taylor diagram table lacks columns {missing}"
            )
        items: list[tuple[str, tuple[float, float]]] = []
        for key, row in stats.iterrows():
            label = "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
            items.append((label, (float(row["std_ratio"]), float(row["pearson_r"]))))
    else:
        items = [(str(k), (float(v[0]), float(v[1]))) for k, v in stats.items()]
    if not items:
        raise MetricError("stats", "non_empty", "stats: Taylor diagram needs at least one point")
    points: dict[str, tuple[float, float]] = {}
    for label, (sd, r) in items:
        if not (math.isfinite(sd) and sd >= 0.0):
            raise MetricError(label, "std_ratio", f"{label}: std ratio {sd} is not finite and >= 0")
        if not (math.isfinite(r) and -1.0 - 1e-9 <= r <= 1.0 + 1e-9):
            raise MetricError(label, "pearson_r", f"{label}: correlation {r} is not in [-1, 1]")
        if label in points:
            raise MetricError(label, "unique_label", f"{label}: duplicate label")
        points[label] = (sd, min(1.0, max(-1.0, r)))
    return points


def taylor_diagram(
    stats: Mapping[str, tuple[float, float]] | pd.DataFrame,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    max_std: float | None = None,
    rmsd_levels: Sequence[float] | None = None,
    reference_label: str = "observations",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Draw a normalised Taylor diagram and return its figure.

    stats: ``{label: (std_ratio, r)}`` or a skill table (see :func:`taylor_points`).
    ax: a polar axes to draw into (``fig.add_subplot(projection="polar")``); default: a new
    figure of ``figsize`` inches with an Agg canvas. max_std: radius limit (default: covers every
    point, at least 1.5).
    rmsd_levels: normalised centred RMS difference contours (default 0.25, 0.5, ... inside).
    The quadrant 0 ≤ r ≤ 1 is shown, extended to −1 ≤ r when any correlation is negative. Each
    point is a :class:`~matplotlib.lines.Line2D` at (θ = arccos r, ρ = std ratio) whose ``gid``
    is ``"taylor:" + label``.
    """
    points = taylor_points(stats)
    negative = any(r < 0 for _, r in points.values())
    if ax is None:
        new = Figure(figsize=figsize or ((8.5, 5.0) if negative else (6.5, 6.0)))
        new.set_layout_engine("constrained")
        FigureCanvasAgg(new)
        ax = new.add_subplot(projection="polar")
    if not isinstance(ax, PolarAxes):
        raise MetricError("ax", "polar", f"ax: Taylor diagram needs a polar axes, got {ax.name!r}")
    fig = ax.get_figure(root=True)
    if not isinstance(fig, Figure):
        raise MetricError("ax", "figure", "ax: the axes is not attached to a figure")
    theta_max = math.pi if negative else math.pi / 2
    largest = max(sd for sd, _ in points.values())
    rmax = max_std if max_std is not None else max(1.5, math.ceil(largest * 1.1 / 0.25) * 0.25)
    if not (math.isfinite(rmax) and rmax > 0):
        raise MetricError("max_std", "positive", f"max_std: must be finite and > 0, got {rmax}")

    ax.set_thetamin(0.0)
    ax.set_thetamax(math.degrees(theta_max))
    ax.set_rlim(0.0, rmax)
    ticks = [*CORRELATION_TICKS, 1.0]
    if negative:  # fewer labels per unit angle on the half disc, mirrored
        ticks = [t for t in ticks if t not in (0.1, 0.3, 0.5, 0.7)]
        ticks = sorted({*ticks, *(-t for t in ticks)})
    ax.set_thetagrids([math.degrees(math.acos(t)) for t in ticks], labels=[f"{t:g}" for t in ticks])
    below = offset_copy(ax.transData, fig=fig, y=-24, units="points")
    ax.text(
        0.0,
        rmax / 2,
        "normalised standard deviation  σ_sim / σ_obs",
        ha="center",
        va="top",
        transform=below,
    )
    ax.text(
        theta_max / 2,
        rmax * (1.2 if negative else 1.13),
        "correlation",
        ha="center",
        va="center",
        rotation=math.degrees(theta_max / 2) - 90.0,
        transform=ax.transData,
    )
    ax.grid(True, alpha=0.35)

    # centred RMS difference contours around the reference point (1, 0)
    theta, rho = np.meshgrid(np.linspace(0.0, theta_max, 181), np.linspace(0.0, rmax, 121))
    e = np.sqrt(rho**2 + 1.0 - 2.0 * rho * np.cos(theta))
    levels = rmsd_levels or [x for x in np.arange(0.25, rmax + 1.0, 0.25) if x < e.max()]
    if levels:
        contours = ax.contour(
            theta, rho, e, levels=sorted(levels), colors="0.55", linestyles="dotted", linewidths=0.9
        )
        ax.clabel(contours, fmt="%.2g", fontsize=7)
    arc = np.linspace(0.0, theta_max, 200)
    ax.plot(arc, np.ones_like(arc), color="0.3", linestyle="--", linewidth=0.9)
    ax.plot(
        [0.0],
        [1.0],
        marker="*",
        markersize=13,
        color="k",
        linestyle="none",
        label=reference_label,
        gid=REFERENCE_GID,
        clip_on=False,
    )

    for i, (label, (sd, r)) in enumerate(points.items()):
        ax.plot(
            [math.acos(r)],
            [sd],
            marker=_MARKERS[i % len(_MARKERS)],
            markersize=8,
            linestyle="none",
            label=label,
            gid=GID_PREFIX + label,
        )
    ax.legend(
        loc="center left" if negative else "upper right",
        bbox_to_anchor=(1.02, 0.5) if negative else (1.02, 1.0),
        fontsize=8,
        frameon=False,
        numpoints=1,
    )
    if title:
        ax.set_title(title)
    return fig


def plotted_points(ax: Axes) -> dict[str, tuple[float, float]]:
    """Read back ``{label: (std_ratio, r)}`` of the points a Taylor diagram drew on ``ax``."""
    out: dict[str, tuple[float, float]] = {}
    for line in ax.get_lines():
        gid = line.get_gid()
        if isinstance(line, Line2D) and gid and gid.startswith(GID_PREFIX):
            theta = float(np.asarray(line.get_xdata())[0])
            out[gid.removeprefix(GID_PREFIX)] = (
                float(np.asarray(line.get_ydata())[0]),
                math.cos(theta),
            )
    return out


def save_png(fig: Figure, path: str | Path, *, dpi: int = 150, **fs_options: Any) -> str:
    """Write ``fig`` as PNG to a local path (parents created) or an fsspec URL; returns the path."""
    url = str(path)
    if "://" not in url:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with fsspec.open(url, "wb", **fs_options) as f:
        fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    return url
