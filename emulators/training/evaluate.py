"""Skill of the shipped emulators against the reference model on held-out data: JSON, Markdown and
a PNG (Taylor diagram + time series at real stations).

Held-out sources are never used in training or early stopping: other synthetic seeds (other
random cells and weather), other stations (Greensboro, Sand Point, Payerne) and another year of
Wageningen. The flux emulator runs free (closed loop, its own soil water and temperatures) over
each whole record from the reference state at the first step, with the reference's LAI, so the
figures measure the flux emulator itself; the LAI emulator runs free over the year on daily
aggregates of the same records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from emulators import metrics
from emulators.compiled.artifacts import LoadedFlux
from emulators.compiled.lai_step import lai_timestep
from emulators.compiled.open_water import OpenWater
from emulators.export import load_torchscript
from emulators.manifest import Manifest
from emulators.training import coldstart
from emulators.training import lai as lai_training
from emulators.training.batch import Batch, rollout
from emulators.training.data import (
    DEFAULT_CACHE,
    SourceSpec,
    load_forcing,
    reference_config,
    simulate,
)

METRICS = ("nse", "kge", "rmse", "bias", "pearson_r", "std_ratio")

_NO_PR = {"missing_pr": "zero"}
_2013 = {"missing_pr": "zero", "start": "2013-01-01", "end": "2013-12-31"}
#: every other real forcing source the packages ship (docs/forcing.md), used by no training:
#: a year each (CGMS grid 31031: Dec 1999..Nov 2000; the CGMS stations: 2013), Ronda its longest
#: gap-free run (93 days)
NEW_REAL_HELD_OUT: tuple[SourceSpec, ...] = (
    SourceSpec("cgms-grid", seed=71, replicas=8, options={"end": "2000-11-30"}),
    SourceSpec("tmy2-miami", seed=72, replicas=8, options=dict(_NO_PR)),
    SourceSpec("pvgis-tmy-italy", seed=73, replicas=8, options=dict(_NO_PR)),
    SourceSpec("psm3-colorado", seed=74, replicas=8, options=dict(_NO_PR)),
    SourceSpec("solaranywhere-burlington", seed=75, replicas=8, options=dict(_NO_PR)),
    SourceSpec("cgms-asturias", seed=76, replicas=8, options=dict(_2013)),
    SourceSpec("cgms-sweden", seed=77, replicas=8, options=dict(_2013)),
    SourceSpec("cgms-munich", seed=78, replicas=8, options=dict(_2013)),
    SourceSpec("cgms-ronda", seed=79, replicas=8, options=dict(_NO_PR)),
)
#: sources shorter than a year: flux held-out only (no phenological year for the LAI emulator)
SHORT_RECORDS = ("bsrn-payerne", "cgms-ronda")

FLUX_HELD_OUT: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=31, cells=32),
    SourceSpec("tmy3-greensboro", seed=32, replicas=8),
    SourceSpec("tmy3-sandpoint", seed=33, replicas=8),
    SourceSpec("pcse-wageningen", seed=34, replicas=8, options={"years": (1995, 1995)}),
    SourceSpec("bsrn-payerne", seed=35, replicas=8, spinup_days=20, options={"missing_pr": "zero"}),
    *NEW_REAL_HELD_OUT,
)
#: held out from ``flux-lstm-daily`` (86 400 s steps): another synthetic seed (64 random land
#: cells, two years) and every real station year not in its training (Amsterdam included: the
#: daily emulator does not train on it).
FLUX_DAILY_HELD_OUT: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=61, cells=64, days=730),
    SourceSpec("tmy3-greensboro", seed=32, replicas=8),
    SourceSpec("tmy3-sandpoint", seed=33, replicas=8),
    SourceSpec("epw-amsterdam", seed=36, replicas=8, options={"missing_pr": "zero"}),
    SourceSpec("pcse-wageningen", seed=34, replicas=8, options={"years": (1995, 1995)}),
    SourceSpec("bsrn-payerne", seed=35, replicas=8, spinup_days=20, options={"missing_pr": "zero"}),
    *NEW_REAL_HELD_OUT,
)


def flux_held_out(timestep: float) -> tuple[SourceSpec, ...]:
    """The held-out sources of the flux emulator trained for ``timestep`` seconds."""
    return FLUX_DAILY_HELD_OUT if timestep >= 86_400 else FLUX_HELD_OUT


def lai_held_out(timestep: float) -> tuple[SourceSpec, ...]:
    """The held-out sources of the LAI emulator trained on land steps of ``timestep`` seconds:
    the flux emulator's of the same step without the records shorter than a year
    (``SHORT_RECORDS``: BSRN Payerne, a single June month; Ronda, 93 days)."""
    return tuple(s for s in flux_held_out(timestep) if s.source not in SHORT_RECORDS)


#: held out from ``lai`` (hourly land steps); ``lai_held_out(86400)`` for ``lai-daily``
LAI_HELD_OUT = lai_held_out(3600)

#: (source label, variable) pairs the acceptance applies to
FLUX_VARIABLES = ("hfls", "hfss", "ts", "gpp")
FLUX_UNITS = {"hfls": "W m-2", "hfss": "W m-2", "ts": "K", "gpp": "kg m-2 s-1", "lai": "1"}


def _dataset(fields: Mapping[str, np.ndarray]) -> xr.Dataset:
    return xr.Dataset(
        {
            k: (("time", "row"), np.asarray(v, np.float64), {"units": FLUX_UNITS.get(k, "")})
            for k, v in fields.items()
        }
    )


def skill(
    sim: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray], variables: Sequence[str]
) -> pd.DataFrame:
    """Pooled (over time and rows) skill table of ``variables``."""
    return metrics.skill_table(
        _dataset({k: sim[k] for k in variables}),
        _dataset({k: ref[k] for k in variables}),
        variables,
        metrics=METRICS,
    )


def report(
    tables: Mapping[str, pd.DataFrame],
    series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    out_dir: Path,
    title: str,
    taylor_variables: Sequence[str],
    preamble: str = "",
    fields: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Write ``skill.json``, ``skill.md`` and ``skill.png`` to ``out_dir``; returns the records.
    ``tables``: source label -> skill table; ``series``: panel title -> (time, emulator,
    reference) for the time-series panels; ``fields``: table label -> the record fields of its
    rows (default ``{"source": label}``; e.g. the start and window of a cold-start table, whose
    rows stay out of the Taylor diagram)."""
    fields = fields or {}
    from matplotlib.figure import Figure

    from emulators import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    md = [f"# {title}", "", preamble, ""] if preamble else [f"# {title}", ""]
    points: dict[str, tuple[float, float]] = {}
    for label, table in tables.items():
        own = fields.get(label, {"source": label})
        for rec in metrics.table_to_records(table):
            records.append({**own, **rec})
        md += [f"## {label}", "", metrics.table_to_markdown(table)]
        for rec in metrics.table_to_records(table):
            if rec["variable"] in taylor_variables and label not in fields:
                points[f"{label}/{rec['variable']}"] = (rec["std_ratio"], rec["pearson_r"])
    (out_dir / "skill.json").write_text(
        __import__("json").dumps({"title": title, "skill": records}, indent=2) + "\n"
    )
    (out_dir / "skill.md").write_text("\n".join(md) + "\n")
    n_series = len(series)
    fig = Figure(figsize=(13.0, 4.5 + 2.4 * max(1, (n_series + 1) // 2)))
    fig.set_layout_engine("constrained")
    grid = fig.add_gridspec(
        1 + max(1, (n_series + 1) // 2),
        2,
        height_ratios=[2.2] + [1.0] * max(1, (n_series + 1) // 2),
    )
    ax = fig.add_subplot(grid[0, 0], projection="polar")
    plots.taylor_diagram(points, ax=ax, title=title, reference_label="reference model")
    for i, (name, (t, sim, ref)) in enumerate(series.items()):
        a = fig.add_subplot(grid[1 + i // 2, i % 2])
        a.plot(t, ref, color="k", lw=1.2, label="reference model")
        a.plot(t, sim, color="tab:red", lw=1.0, ls="--", label="emulator")
        a.set_title(name, fontsize=9)
        a.tick_params(labelsize=7)
        a.legend(fontsize=7, frameon=False)
    plots.save_png(fig, out_dir / "skill.png", dpi=110)
    return {
        "records": records,
        "files": [str(out_dir / f) for f in ("skill.json", "skill.md", "skill.png")],
    }


Arrays = coldstart.Arrays
Pair = coldstart.Pair


def _flat_skill(pair: Pair, variables: Sequence[str]) -> pd.DataFrame:
    sim, ref = pair
    return skill(
        {k: sim[k].reshape(-1, 1) for k in variables},
        {k: ref[k].reshape(-1, 1) for k in variables},
        variables,
    )


@dataclass
class FluxSkill:
    """The held-out skill tables of a flux emulator: per source over the continuous record and
    from each cold start (``coldstart``: fresh and resumed, first 48 h vs the rest), and each
    pooled over the sources ("all held-out"). Shared by every flux evaluation so that their
    reports and manifest records have one layout."""

    variables: Sequence[str] = FLUX_VARIABLES
    continuous: dict[str, pd.DataFrame] = field(default_factory=dict)
    starts: dict[str, pd.DataFrame] = field(default_factory=dict)
    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    pooled: dict[tuple[str, str], list[Pair]] = field(default_factory=dict)

    def add(
        self, label: str, sim: Arrays, ref: Arrays, found: Mapping[tuple[str, str], Pair]
    ) -> None:
        """One source: ``sim``/``ref`` (time, row) of the continuous run; ``found``: (start,
        window) -> flattened (emulator, reference) arrays, as ``coldstart.starts`` returns."""
        v = self.variables
        self.continuous[label] = skill(sim, ref, v)
        self.pooled.setdefault(("continuous", "whole"), []).append(
            ({k: sim[k].reshape(-1) for k in v}, {k: ref[k].reshape(-1) for k in v})
        )
        for (case, window), pair in found.items():
            name = f"{label} ({case} start, {window})"
            self.starts[name] = _flat_skill(pair, v)
            self.fields[name] = {"source": label, "start": case, "window": window}
            self.pooled.setdefault((case, window), []).append(pair)

    def tables(self) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]]:
        """(label -> table, label -> record fields) for :func:`report`: the sources, the pooled
        continuous table, the starts, the pooled starts."""
        head = dict(self.continuous)
        tail: dict[str, pd.DataFrame] = {}
        fields = dict(self.fields)
        for (case, window), pairs in self.pooled.items():
            sim, ref = (
                {k: np.concatenate([p[j][k] for p in pairs]) for k in self.variables}
                for j in (0, 1)
            )
            if case == "continuous":
                head["all held-out"] = _flat_skill((sim, ref), self.variables)
            else:
                name = f"all held-out ({case} start, {window})"
                tail[name] = _flat_skill((sim, ref), self.variables)
                fields[name] = {"source": "all held-out", "start": case, "window": window}
        return {**head, **self.starts, **tail}, fields

    def write(
        self,
        manifest: Manifest,
        directory: Path,
        out_dir: Path,
        title: str,
        preamble: str,
        series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
        save: bool = True,
    ) -> Manifest:
        """Write the report to ``out_dir`` (:func:`report`); the records become the manifest's
        skill, saved to ``directory`` when ``save``."""
        tables, fields = self.tables()
        result = report(
            tables, series or {}, out_dir, title, ("hfls", "hfss"), preamble=preamble, fields=fields
        )
        manifest.skill = result["records"]
        if save:
            manifest.save(directory)
        return manifest


def acceptance(
    records: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Callable[[Mapping[str, Any]], bool]],
) -> dict[str, bool]:
    """rule name -> whether every record it applies to passes."""
    return {
        name: all(rule(r) for r in records if r.get("source") != "all")
        for name, rule in rules.items()
    }


def load_flux(directory: Path) -> LoadedFlux:
    """A shipped flux artifact's TorchScript network (CPU) with the widths and spin-up its
    manifest records."""
    manifest = Manifest.load(directory)
    net = load_torchscript(manifest.artifact_path(directory, "torchscript"))
    return LoadedFlux.of(manifest, net)


def served_water(spec: SourceSpec, dt: int) -> OpenWater:
    """The water rows from physics at ``spec``'s measurement heights, as the emulator backends
    serve them (``open_water``)."""
    return OpenWater(reference_config(load_forcing(spec, dt), spec.heights))


def evaluate_flux(
    directory: Path,
    out_dir: Path,
    cache: Path | None = DEFAULT_CACHE,
    progress: bool = True,
    specs: Sequence[SourceSpec] | None = None,
    save: bool = True,
    water: bool = True,
) -> Manifest:
    """Held-out skill of a shipped TorchScript flux emulator at the manifest's timestep (held-out
    sources: :func:`flux_held_out`, or ``specs``): free-running over each whole record, and from
    fresh and resumed starts, first 48 h vs the rest (``coldstart``); updates the manifest's skill
    (when ``save``). ``water``: the water rows from physics at the source's measurement heights,
    as the emulator backends serve them (``open_water``); False: the network alone. Every
    rollout spins the recurrent state up as the backends do (the manifest's
    ``recurrent_state.spin_up``; ``training.spin_up``)."""
    flux = load_flux(directory)
    manifest, spin_up = flux.manifest, flux.spin_up
    dt = manifest.timestep_seconds
    daily = dt >= 86_400
    held = FluxSkill()
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for spec in specs if specs is not None else flux_held_out(dt):
        traj = simulate(spec, int(dt), progress=progress, cache=cache)
        batch = Batch.of([traj], torch.float64)
        exact = served_water(spec, int(dt)) if water else None
        with torch.no_grad():
            out = rollout(
                flux.net,
                batch,
                flux.hidden,
                fields=FLUX_VARIABLES,
                c_width=flux.c_width,
                water=exact,
                spin_up=spin_up,
            )
        sim = {k: out[k].numpy() for k in FLUX_VARIABLES}
        ref = {k: batch.outputs[k].numpy() for k in FLUX_VARIABLES}
        found = coldstart.starts(
            flux.net,
            flux.hidden,
            flux.c_width,
            spec,
            int(dt),
            FLUX_VARIABLES,
            cache,
            progress,
            batch,
            exact,
            spin_up,
        )
        held.add(spec.label, sim, ref, found)
        if spec.source in ("tmy3-greensboro", "pcse-wageningen", "tmy3-sandpoint"):
            times = traj.time[: batch.steps]
            start = int(np.searchsorted(times, np.datetime64(f"{str(times[0])[:4]}-07-01")))
            sl = slice(0, batch.steps) if daily else slice(start, start + 240)
            row = int(np.nonzero(batch.tile.numpy() == 2)[0][0])  # a grassland tile
            for var in ("hfls", "hfss"):
                when = "daily, whole year" if daily else "July"
                series[f"{spec.label} grassland {var} [W m-2], {when}"] = (
                    times[sl],
                    sim[var][sl, row],
                    ref[var][sl, row],
                )
    return held.write(
        manifest,
        directory,
        out_dir,
        f"{manifest.name} vs reference model (held-out, free-running)",
        f"Pooled over all tiles and {'days' if daily else 'hours'} of each held-out "
        "source; the emulator runs closed-loop on its own soil water and temperatures from the "
        f"first step ({dt:g} s steps)"
        + (
            "; the water tile from the reference's physics, as the backends serve it"
            if water
            else "; every tile from the network (no open-water physics)"
        )
        + (
            f"; the recurrent state, zero at a start, spun up by {spin_up} network calls on the "
            "first step's inputs (recurrent_state.spin_up)"
            if spin_up
            else ""
        )
        + ". Tables named '(fresh start, …)' and '(resumed start, …)' "
        "are the cold starts of `emulators.training.coldstart` (first 48 h vs the rest).",
        series,
        save,
    )


def evaluate_lai(
    directory: Path,
    out_dir: Path,
    cache: Path | None = DEFAULT_CACHE,
    progress: bool = True,
    timestep: float | None = None,
) -> Manifest:
    """Held-out skill of the TorchScript LAI emulator in ``directory`` over free-running years
    of reference trajectories at ``timestep`` s land steps (default: the step it was trained on,
    :func:`lai_timestep`; held-out sources ``evaluate.lai_held_out``). The manifest's skill is
    updated only at the trained step; the report goes to ``out_dir`` either way."""
    manifest = Manifest.load(directory)
    trained = lai_timestep(manifest)
    dt = trained if timestep is None else float(timestep)
    net = load_torchscript(manifest.artifact_path(directory, "torchscript"))
    tables: dict[str, pd.DataFrame] = {}
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    pooled: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for spec in lai_held_out(dt):
        data = lai_training.daily([simulate(spec, int(dt), progress=progress, cache=cache)])
        with torch.no_grad():
            pred = lai_training.rollout(net, data).numpy()
        ref = data.lai[1:].numpy()
        veg = (data.vegetated > 0).numpy()
        tables[spec.label] = skill({"lai": pred[:, veg]}, {"lai": ref[:, veg]}, ("lai",))
        pooled[0].append(pred[:, veg].reshape(-1))
        pooled[1].append(ref[:, veg].reshape(-1))
        if spec.source in ("tmy3-greensboro", "pcse-wageningen"):
            days = np.arange(1, data.days + 1)
            for tile, label in ((1, "deciduous forest"), (3, "cropland")):
                row = int(np.nonzero(data.tile.numpy() == tile)[0][0])
                series[f"{spec.label} {label} LAI [m2 m-2]"] = (days, pred[:, row], ref[:, row])
    tables["all held-out"] = skill(
        {"lai": np.concatenate(pooled[0])[:, None]},
        {"lai": np.concatenate(pooled[1])[:, None]},
        ("lai",),
    )
    result = report(
        tables,
        series,
        out_dir,
        f"{manifest.name} vs reference model (held-out years, free-running, {dt:g} s land steps)",
        ("lai",),
        preamble="Vegetated tiles only (LAI of the vegetated part), daily, the emulator running "
        "on its own LAI for the whole record from the reference LAI of the first day; the "
        f"reference model and the daily aggregates at {dt:g} s land steps (the emulator was "
        f"trained at {trained:g} s).",
    )
    if dt == trained:
        manifest.skill = result["records"]
        manifest.save(directory)
    return manifest
