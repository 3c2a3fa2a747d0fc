"""Surface energy balance of the Fortran MPI example's outputs, every step and rank (part of
`make test-clients`, called by run_tests.py after the example ran).

Each rank's session returns, besides hfls, hfss, ts, rlus (DIR/f_out_rankR.bin, (48, 4, 4)),
rsus, hfdsl, rns (DIR/f_energy_rankR.bin, (48, 3, 4)); the forcing gives rsds and rlds. With the
registry's sign conventions (emulators/variables.py: hfls, hfss, rsus, rlus positive up; hfdsl,
the heat flux into the ground, which is where the model stores the energy, positive down):

    Rn = rsds - rsus + rlds - rlus          net radiation, from the exchanged fields
    Rn - hfls - hfss - hfdsl = 0            the balance closes

Both the returned ``rns`` against the radiation terms and the closure are checked against
BOUND for every step, cell and rank; the largest residual is printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BOUND = 1e-6  # W m-2: float64 round-off on fluxes of O(100) W m-2 is ~1e-13
NT, NO, NE, NC = 48, 4, 3, 4  # steps, coupled outputs, energy outputs, cells per rank


def residuals(work: Path, forcing: np.ndarray, rank: int) -> dict[str, np.ndarray] | None:
    """(48, 4) residuals [W m-2] of rank ``rank``, or None if its files are missing."""
    out_path, e_path = work / f"f_out_rank{rank}.bin", work / f"f_energy_rank{rank}.bin"
    if not (out_path.exists() and e_path.exists()):
        return None
    out = np.fromfile(out_path, "<f8").reshape(NT, NO, NC)
    energy = np.fromfile(e_path, "<f8").reshape(NT, NE, NC)
    cells = slice(rank * NC, rank * NC + NC)
    rsds, rlds = forcing[:, 5, cells], forcing[:, 6, cells]
    hfls, hfss, rlus = out[:, 0], out[:, 1], out[:, 3]
    rsus, hfdsl, rns = energy[:, 0], energy[:, 1], energy[:, 2]
    rn = rsds - rsus + rlds - rlus
    return {
        "closure": rn - hfls - hfss - hfdsl,
        "rns": rns - rn,
        "rn": rn,
        "hfdsl": hfdsl,
    }


def run(work: Path, forcing: np.ndarray, ranks: int, check: Any) -> float:
    """One check per rank; returns the largest |residual| over ranks (NaN if any is missing)."""
    worst = 0.0
    for rank in range(ranks):
        r = residuals(work, forcing, rank)
        if r is None:
            check(False, f"Fortran rank {rank} energy outputs written")
            worst = float("nan")
            continue
        closure, rns = np.abs(r["closure"]), np.abs(r["rns"])
        step = int(np.unravel_index(np.argmax(closure), closure.shape)[0])
        m = max(float(closure.max()), float(rns.max()))
        worst = max(worst, m)
        # the terms are real fluxes (a night/day cycle), not zeros that close trivially
        live = np.ptp(r["rn"]) > 50.0 and np.abs(r["hfdsl"]).max() > 1.0
        check(
            bool(np.all(closure <= BOUND) and np.all(rns <= BOUND) and live),
            f"Fortran rank {rank}: energy closes every step (48 x 4 cells): "
            f"max |rsds-rsus+rlds-rlus-hfls-hfss-hfdsl| = {closure.max():.2e} W m-2 "
            f"(step {step}), max |rns - Rn| = {rns.max():.2e} (bound {BOUND:g}; "
            f"Rn {r['rn'].min():.0f}..{r['rn'].max():.0f}, hfdsl {r['hfdsl'].min():.0f}.."
            f"{r['hfdsl'].max():.0f} W m-2)",
        )
    print(f"energy balance, all ranks and steps: max residual {worst:.2e} W m-2")
    return worst
