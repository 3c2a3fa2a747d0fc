"""Which of issue 14's skill targets each held-out row misses, and by how much.

Rows: a manifest's skill records of LE and H (``hfls``, ``hfss``) per held-out source, start
(continuous, fresh, resumed) and window (whole, first 48 h, after 48 h); the pooled "all
held-out" rows are not counted. Targets: NSE ≥ 0.97 and KGE ≥ 0.95, KGE as the records give it
(KGE2009, Gupta et al. 2009): 1 − √((r − 1)² + (γ − 1)² + (β − 1)²), γ = σ_sim/σ_ref,
β = μ_sim/μ_ref.

Where a row misses KGE, its r, γ and mean error (bias = μ_sim − μ_ref = μ_ref (β − 1)) fix how
far β may move: |β − 1| = √((1 − KGE)² − (r − 1)² − (γ − 1)²), so |μ_ref| = |bias| / |β − 1|,
and KGE ≥ the target needs |bias| ≤ |μ_ref| √((1 − target)² − (r − 1)² − (γ − 1)²): the mean
error the row's correlation and spread leave room for (none where r and γ alone keep KGE below
the target). A window whose reference mean is small against its spread (H in a winter week)
leaves room for a fraction of a W m⁻², which a network with an RMSE near 10 W m⁻² misses by a
mean error its NSE hardly notices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: issue 14's targets, every held-out row
NSE_MIN, KGE_MIN = 0.97, 0.95
POOLED = "all held-out"


def kge_bias_room(
    kge: float, r: float, gamma: float, bias: float, target: float = KGE_MIN
) -> tuple[float | None, float | None]:
    """(|μ_ref|, the largest |bias| with which KGE reaches ``target`` at this r and γ) of a
    row with KGE2009 ``kge``, correlation ``r``, spread ratio ``gamma`` = σ_sim/σ_ref and mean
    error ``bias`` = μ_sim − μ_ref (units of the variable). |μ_ref| is None where β = 1 (no
    bias: nothing to recover it from); the room is None where r and γ alone keep KGE below
    ``target``."""
    spread = (r - 1.0) ** 2 + (gamma - 1.0) ** 2
    beta_dev = math.sqrt(max((1.0 - kge) ** 2 - spread, 0.0))
    mean_ref = abs(bias) / beta_dev if beta_dev > 0.0 and bias != 0.0 else None
    room = (1.0 - target) ** 2 - spread
    if room < 0.0:
        return mean_ref, None
    return mean_ref, (None if mean_ref is None else mean_ref * math.sqrt(room))


@dataclass(frozen=True)
class Miss:
    """A row below a target: which one(s), the row's scores, and for KGE the mean error room."""

    source: str
    start: str
    window: str
    variable: str
    units: str
    nse: float
    kge: float
    bias: float
    mean_ref: float | None  # |μ_ref|, recovered from KGE, r, γ and the bias
    allowed_bias: float | None  # |bias| at which KGE would reach its target (None: r, γ miss)

    @property
    def fails(self) -> str:
        """ "NSE", "KGE" or "NSE and KGE"."""
        parts = [n for n, bad in (("NSE", self.nse < NSE_MIN), ("KGE", self.kge < KGE_MIN)) if bad]
        return " and ".join(parts)


def held_out_rows(
    records: Sequence[Mapping[str, Any]], variables: Sequence[str] = ("hfls", "hfss")
) -> list[Mapping[str, Any]]:
    """The per-source rows of ``variables`` among skill ``records`` (not the pooled ones)."""
    return [
        r
        for r in records
        if r.get("variable") in variables and r.get("source") != POOLED and "kge" in r
    ]


def meets(row: Mapping[str, Any]) -> bool:
    """Whether a row meets both targets."""
    return bool(row["nse"] >= NSE_MIN and row["kge"] >= KGE_MIN)


def misses(
    records: Sequence[Mapping[str, Any]], variables: Sequence[str] = ("hfls", "hfss")
) -> tuple[int, list[Miss]]:
    """(rows counted, the rows below NSE 0.97 or KGE 0.95) of skill ``records``."""
    rows = held_out_rows(records, variables)
    found = []
    for r in rows:
        if meets(r):
            continue
        mean_ref, allowed = kge_bias_room(r["kge"], r["pearson_r"], r["std_ratio"], r["bias"])
        found.append(
            Miss(
                source=r["source"],
                start=r.get("start", "continuous"),
                window=r.get("window", "whole"),
                variable=r["variable"],
                units=r.get("units", ""),
                nse=r["nse"],
                kge=r["kge"],
                bias=r["bias"],
                mean_ref=mean_ref,
                allowed_bias=allowed,
            )
        )
    return len(rows), found


def markdown(total: int, found: Sequence[Miss]) -> str:
    """The count of rows meeting both targets, what the others miss, and the misses table."""
    kge_only = [m for m in found if m.fails == "KGE"]
    by_bias = [m for m in kge_only if m.allowed_bias is not None]
    lines = [
        f"{total - len(found)} of {total} held-out rows meet NSE ≥ {NSE_MIN} and KGE ≥ "
        f"{KGE_MIN}; {len(found)} miss: {sum('NSE' in m.fails for m in found)} NSE (with or "
        f"without KGE), {len(kge_only)} KGE only, of which {len(by_bias)} by their mean "
        "error alone (r and σ ratio leave room: the last column)",
    ]
    if not found:
        return lines[0]
    lines += [
        "",
        "| source | start | window | variable | NSE | KGE | misses | bias | mean of the "
        "reference, abs | bias allowed for KGE ≥ 0.95 |",
        "|---|---|---|---|---:|---:|---|---:|---:|---:|",
    ]

    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}"

    for m in found:
        lines.append(
            f"| {m.source} | {m.start} | {m.window} | {m.variable} | {m.nse:.3f} | {m.kge:.3f} "
            f"| {m.fails} | {m.bias:+.2f} {m.units} | {num(m.mean_ref)} | "
            f"{num(m.allowed_bias) if 'KGE' in m.fails else '–'} |"
        )
    return "\n".join(lines)


#: marker colours of the starts in :func:`figure`
START_COLOURS = {"continuous": "tab:blue", "fresh": "tab:red", "resumed": "tab:green"}


def figure(found: Sequence[Miss], title: str = "") -> Figure:
    """Two panels: the KGE misses decided by the mean error (|bias| against the room r and γ
    leave, log-log; above the diagonal: missed), and the NSE misses (NSE per start, the target
    as a line). Colour: the start; marker: LE (o) or H (s). Each point's gid is
    ``source/start/window/variable``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2)
    by_bias = [m for m in found if m.fails == "KGE" and m.allowed_bias is not None]
    for m in by_bias:
        left.plot(
            m.allowed_bias, abs(m.bias), ls="", marker="o" if m.variable == "hfls" else "s",
            color=START_COLOURS.get(m.start, "black"), gid=_gid(m),
        )  # fmt: skip
    values = [v for m in by_bias for v in (m.allowed_bias or 0.0, abs(m.bias))]
    lo, hi = (min(values) / 2, max(values) * 2) if values else (0.01, 10.0)
    left.plot([lo, hi], [lo, hi], color="0.5", lw=1, gid="diagonal")
    left.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
             xlabel="|bias| allowed by r and σ ratio for KGE ≥ 0.95 [W m-2]",
             ylabel="|bias| [W m-2]",
             title=f"KGE misses decided by the mean error ({len(by_bias)})")  # fmt: skip
    nse = [m for m in found if "NSE" in m.fails]
    starts = list(START_COLOURS)
    for m in nse:
        y = starts.index(m.start) if m.start in starts else len(starts)
        right.plot(
            m.nse, y + (0.12 if m.variable == "hfss" else -0.12), ls="",
            marker="o" if m.variable == "hfls" else "s",
            color=START_COLOURS.get(m.start, "black"), gid=_gid(m),
        )  # fmt: skip
    right.axvline(NSE_MIN, color="0.5", lw=1, gid="target")
    right.set(yticks=range(len(starts)), yticklabels=starts, ylim=(-0.6, len(starts) - 0.4),
              xlabel="NSE", title=f"NSE misses ({len(nse)}; o LE, s H)")  # fmt: skip
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=c, label=s)
               for s, c in START_COLOURS.items()]  # fmt: skip
    handles += [Line2D([], [], ls="", marker=k, color="0.3", label=v)
                for k, v in (("o", "LE (hfls)"), ("s", "H (hfss)"))]  # fmt: skip
    left.legend(handles=handles, loc="lower right", fontsize="small")  # below the diagonal: empty
    if title:
        fig.suptitle(title)
    return fig


def _gid(m: Miss) -> str:
    return f"{m.source}/{m.start}/{m.window}/{m.variable}"
