"""The MdPL twin experiment end to end: sites → fit → evaluation with the *reference model* run
with each method's parameters against the reference with the hidden parameters → identifiability
→ Taylor diagram, calibrated parameter map (Zarr, CF attributes) and a JSON report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from emulators import io
from emulators import parameters as P
from emulators.calibration.fit import FitConfig, fit
from emulators.calibration.sites import Sites, TwinConfig, make_sites, run_reference
from emulators.calibration.surrogate import Surrogate

Tensor = torch.Tensor
METHODS = ("default", "calibrated", "loocv", "direct")
#: Taylor-diagram labels of methods other than ``METHODS``
LABELS = {"filter": "filter (state augm.)"}
#: a method run by the caller on the twin's sites (the ensemble filter's estimate lives in
#: ``coupler``, which ``emulators`` never imports): returns {method: (site, 12) parameters}
#: and what the report keeps of the run (``report[<method>]``)
Extra = Callable[[Sites], tuple[dict[str, np.ndarray], dict[str, Any]]]


def flux_rmse(sites: Sites, params: np.ndarray) -> dict[str, Any]:
    """RMSE [W m-2] of the reference model with ``params`` vs the reference with the hidden
    parameters (daily LE, H of the year, all sites pooled; and per class in ``by_class``),
    with the correlation and standard-deviation ratio (Taylor diagram)."""
    ref = run_reference(sites.forcing, sites.time, sites.lat, sites.lon, sites.tile, params)
    out: dict[str, Any] = {"by_class": {}}
    for c in np.unique(sites.tile):
        cols = sites.tile == c
        out["by_class"][P.LandCover(int(c)).short] = {
            k: float(
                np.sqrt(((ref[k][sites.spinup :, cols] - sites.truth[k][:, cols]) ** 2).mean())
            )
            for k in ("hfls", "hfss")
        }
    for k in ("hfls", "hfss"):
        sim = ref[k][sites.spinup :]
        out[k] = float(np.sqrt(((sim - sites.truth[k]) ** 2).mean()))
        c = np.corrcoef(sim.ravel(), sites.truth[k].ravel())[0, 1]
        out[f"{k}_r"] = float(c)
        out[f"{k}_std_ratio"] = float(sim.std() / sites.truth[k].std())
    return out


def emulator_floor(sites: Sites) -> dict[str, float]:
    """RMSE [W m-2] of the frozen emulator run *with the hidden parameters* vs the reference with
    them: the error no calibration through the emulator can remove."""
    with torch.no_grad():
        out = Surrogate(sites).rollout(torch.as_tensor(sites.hidden))
    return {
        k: float(np.sqrt(((out[k].double().numpy() - sites.truth[k]) ** 2).mean()))
        for k in ("hfls", "hfss")
    }


def sensitivity(sites: Sites, delta: float = 0.1) -> np.ndarray:
    """(12,) RMS change [W m-2] of daily LE and H of the frozen emulator when one parameter is
    moved by ``delta`` of its range from the class defaults (towards the range's middle)."""
    n = sites.n
    rows = np.tile(np.arange(n), P.N_PARAMETERS + 1)
    sur = Surrogate(sites.subset(rows))
    low, high = P.bounds()
    base = P.default_table()[torch.as_tensor(sites.tile)]
    u = (base - low) / (high - low)
    params = [base]
    for p in range(P.N_PARAMETERS):
        up = u.clone()
        up[:, p] = up[:, p] + torch.where(up[:, p] < 0.5, delta, -delta)
        params.append(low + (high - low) * up)
    with torch.no_grad():
        out = sur.rollout(torch.cat(params))
    s = np.zeros(P.N_PARAMETERS)
    for k in ("hfls", "hfss"):
        v = out[k].reshape(out[k].shape[0], P.N_PARAMETERS + 1, n).double()
        s += ((v[:, 1:] - v[:, :1]) ** 2).mean(dim=(0, 2)).numpy()
    return np.sqrt(s / 2)


def recovery(sites: Sites, methods: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per parameter: sensitivity and the mean |error| (fraction of the range) of each method's
    (site, 12) parameters vs the hidden ones; identifiable = the calibration (g_z on every
    site) halves the default's error."""
    low, high = (t.numpy() for t in P.bounds())
    sens = sensitivity(sites)
    rows = []
    for i, spec in enumerate(P.PARAMETERS):
        err = {
            m: float(np.abs((p[:, i] - sites.hidden[:, i]) / (high[i] - low[i])).mean())
            for m, p in methods.items()
        }
        rows.append(
            {
                "parameter": spec.name,
                "sensitivity_wm2": float(sens[i]),
                **{f"error_{m}": v for m, v in err.items()},
                "identifiable": bool(err["calibrated"] <= 0.5 * err["default"]),
            }
        )
    return rows


def albedo_error(sites: Sites, params: np.ndarray) -> float:
    """Mean |albedo(params) − albedo(hidden)| over the sites and the year's days (the reference
    leaf carbon, soil water at 3/4 of capacity): how well the *combination* of the optical
    parameters and the cover (rlfv, rlfn, tlfn, vgcov) is recovered."""
    from emulators import landstep
    from emulators.reference.soil import SoilConfig

    soil = SoilConfig()
    const = {k: v[torch.as_tensor(sites.tile)] for k, v in landstep.class_constants(soil).items()}
    cleaf = torch.as_tensor(sites.cleaf[sites.spinup :])
    w = 0.75 * const["capacity"].expand_as(cleaf)

    def albedo(p: np.ndarray) -> Tensor:
        return landstep.surface(w, cleaf, torch.as_tensor(p), const, soil).albedo

    return float((albedo(params) - albedo(sites.hidden)).abs().mean())


def parameter_map(sites: Sites, params: np.ndarray, method: str) -> xr.Dataset:
    """A calibrated parameter map (the session option ``parameters_url``, docs/calibration.md):
    one variable per parameter on (cell,) — the sites in order — CF attributes."""
    data = {}
    for i, spec in enumerate(P.PARAMETERS):
        data[spec.name] = xr.Variable(
            ("cell",),
            params[:, i].astype(np.float64),
            {
                "long_name": spec.long_name,
                "units": spec.units,
                "valid_min": spec.low,
                "valid_max": spec.high,
            },
        )
    coords = {
        "lat": xr.Variable(
            ("cell",), sites.lat, {"standard_name": "latitude", "units": "degrees_north"}
        ),
        "lon": xr.Variable(
            ("cell",), sites.lon, {"standard_name": "longitude", "units": "degrees_east"}
        ),
        "land_cover": xr.Variable(
            ("cell",),
            sites.tile.astype(np.int32),
            {
                "long_name": "land-cover class index (emulators.landcover.LandCover)",
                "flag_values": list(range(P.N_CLASSES)),
                "flag_meanings": " ".join(lc.name.lower() for lc in P.LandCover),
            },
        ),
        "site_name": xr.Variable(("cell",), np.array(sites.names, dtype=object)),
    }
    return xr.Dataset(
        data,
        coords=coords,
        attrs={
            "Conventions": "CF-1.10",
            "title": f"MdPL calibrated land-model parameters ({method})",
            "source": "landcoupler calibrate (emulators.calibration)",
            "parameter_names": " ".join(P.PARAMETER_NAMES),
        },
    )


def run(twin: TwinConfig, cfg: FitConfig, out: Path, extra: Extra | None = None) -> dict[str, Any]:
    """The whole twin experiment; writes ``report.json``, ``taylor.png`` and
    ``parameters.zarr`` under ``out`` and returns the report. ``extra``: more methods,
    evaluated like the others (the CLI passes the ensemble filter's estimate)."""
    from emulators.plots import taylor_diagram

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sites = make_sites(twin)
    t_sites = time.perf_counter() - t0
    result = fit(sites, cfg)
    methods = {m: getattr(result, m) for m in METHODS if m != "loocv" or cfg.loocv}
    more, info = extra(sites) if extra is not None else ({}, {})
    methods.update(more)
    rmse = {m: flux_rmse(sites, p) for m, p in methods.items()}
    cut = {
        m: {k: 1.0 - rmse[m][k] / rmse["default"][k] for k in ("hfls", "hfss")}
        for m in rmse
        if m != "default"
    }
    points = {
        f"{LABELS.get(m, m)} {k}": (rmse[m][f"{k}_std_ratio"], rmse[m][f"{k}_r"])
        for m in rmse
        for k in ("hfls", "hfss")
    }
    fig = taylor_diagram(points, title="MdPL twin: daily LE (hfls) and H (hfss) vs hidden truth")
    fig.savefig(out / "taylor.png", dpi=120)
    io.write_zarr(
        parameter_map(sites, result.calibrated, "calibrated"), str(out / "parameters.zarr")
    )
    report = {
        "twin": asdict(twin),
        "fit": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "sites": list(sites.names),
        "seconds": {
            "sites": t_sites,
            "fit": result.seconds,
            "total": time.perf_counter() - t0,
        },
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "rmse_wm2": rmse,
        "rmse_cut_vs_default": cut,
        "emulator_floor_wm2": emulator_floor(sites),
        "parameters": recovery(sites, methods),
        "albedo_error": {m: albedo_error(sites, p) for m, p in methods.items()},
        **info,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
