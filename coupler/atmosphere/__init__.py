"""The simplified atmosphere: a per-cell column model on any cell list, driven by scenario
forcing, that produces the land's forcing fields and consumes its fluxes through the client API
(``landcoupler run``). See docs/atmosphere.md.

Modules: ``scenario`` (RCMIP ERF/CO2 table), ``grid`` (cell lists, land fraction, diffusion),
``physics`` (the equations), ``climatology`` (SST, wind, pressure), ``transport`` (Hadley
moisture transport), ``surface`` (ocean fluxes, the bucket stand-in, the LandSurface seam),
``column`` (the stepper), ``ebm`` (global two-layer model), ``driver`` (time loops),
``calibrate`` (ECS, TCR, control balance), ``landcover`` (biomes), ``frozen`` (frozen-land
backend), ``service_land`` (sessions per rank), ``runconfig``, ``experiment``, ``diagnostics``,
``report``, ``plots``, ``coupled`` (a whole run), ``bench`` (``make bench-run``).
"""
