"""Land-use / land-cover downscaling (AI4Land phase 1): coarse scenario class fractions plus fine
static features from real masks shipped in packages → fine class fractions that aggregate exactly
back to the coarse input.

Modules: ``grid`` (the fine 5′ global grid and windows on it), ``masks`` (readers for the real
land/lake masks and the Blue Marble image), ``features`` (fine static features), ``generator``
(the seeded land-cover truth), ``conservation`` (the exact aggregation layer), ``unet`` (the
registered network), ``skill`` (baselines and scores), ``report`` (skill tables, plots), ``data``
(held-out regions and tiles), ``train``, ``export`` and ``pipeline`` (train/export/evaluate entry
points for ``landcoupler emulators``). See docs/lulc.md.
"""
