"""A minimal atmospheric-model driver: 24 h of real station forcing through the coupling service.

Starts a landcoupler server on a free local port (or connects to ``--address``), opens a session
on a few cells at the station — one cell per land-cover class — steps hourly TMY3 Greensboro
forcing (shipped with pvlib, read by ``emulators.forcing``) and prints the fluxes the land
returns, with the energy-balance residual of every step.

    .venv/bin/python examples/driver.py                       # its own server
    .venv/bin/landcoupler serve --address 127.0.0.1:50051 &   # or an existing one
    .venv/bin/python examples/driver.py --address 127.0.0.1:50051 --stream
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager

import numpy as np

from coupler.client import Client, CouplerClient, local_client, tune_allocator
from emulators import forcing as forcing_sources
from emulators import parameters as P

FORCING = ("tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds")
OUTPUTS = ["hfls", "hfss", "hfdsl", "rns", "ts", "albedo"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--address", help="HOST:PORT of a running server (default: start one)")
    parser.add_argument("--token", help="bearer token, if the server wants one")
    parser.add_argument("--forcing", default="tmy3-greensboro", help="emulators.forcing source")
    parser.add_argument("--start", default="2001-07-01T00:00:00", help="UTC start (a full hour)")
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--stream", action="store_true", help="step over the Exchange stream")
    args = parser.parse_args()
    tune_allocator()

    ds = forcing_sources.load(args.forcing, timestep=3600)
    start = np.datetime64(args.start, "s")
    window = ds.sel(time=slice(start, start + np.timedelta64(args.hours - 1, "h")))
    if window.sizes["time"] != args.hours:
        parser.error(f"{args.forcing} has no {args.hours} h from {args.start}")
    classes = list(P.LandCover)
    n = len(classes)
    lat = np.full(n, float(ds.lat.values[0]))
    lon = np.full(n, float(ds.lon.values[0]))

    if args.address is None:
        print("starting a server on 127.0.0.1 (a free port)")
        connection: AbstractContextManager[Client] = local_client("grpc", name="example-driver")
    else:
        connection = CouplerClient(args.address, token=args.token, client_name="example-driver")
    with connection as client:
        session = client.open_session(
                lat=lat, lon=lon, start=str(start), timestep=3600, outputs=OUTPUTS,
                backend="reference", land_cover=np.eye(n), run_id="example", stream=args.stream,
            )  # fmt: skip
        print(f"session {session.id}: {session.cells} cells, {args.forcing} from {start}")
        names = [c.name.lower()[:10] for c in classes]
        print(f"{'UTC':>20} {'rsds':>6} | LE (hfls) W m-2 by land cover\n{'':>29}"
                  + " ".join(f"{nm:>10}" for nm in names))  # fmt: skip
        worst = 0.0
        with session:
            for i in range(args.hours):
                fields = {k: np.repeat(window[k].values[i], n) for k in FORCING}
                reply = session.step(i, fields)
                residual = reply["rns"] - reply["hfls"] - reply["hfss"] - reply["hfdsl"]
                worst = max(worst, float(np.abs(residual).max()))
                print(f"{session.last_time:>20} {fields['rsds'][0]:6.0f} | "
                          + " ".join(f"{v:10.1f}" for v in reply["hfls"]))  # fmt: skip
        print(f"max |rns - hfls - hfss - hfdsl| over {args.hours} steps: {worst:.2e} W m-2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
