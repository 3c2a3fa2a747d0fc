"""Experiments (applications ring): studies built on the assimilation library
(``coupler.assimilation``), which itself knows nothing of them.

- ``twin``: the land data-assimilation twin experiment (``landcoupler twin``); its settings in
  ``twin_config``, its statistics in ``twin_metrics``, its JSON/Markdown/PNG report in
  ``twin_report``.
- ``lorenz96``: the Lorenz-96 validation of the filters (``landcoupler lorenz96``).

See docs/assimilation.md.
"""
