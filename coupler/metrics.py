"""Prometheus metrics of one coupler service instance.

:class:`ServiceMetrics` is a ``coupler.core.telemetry.MetricsSink`` (the calls the core makes)
plus what the wire reports (refusals, decode/encode phases) and the HTTP exporter. It imports
nothing of the core or of ``coupler.assimilation``: an analysis arrives as plain numbers.

Every :class:`ServiceMetrics` owns its own ``CollectorRegistry`` (never the process-global one),
so several servers in one process (tests) do not collide, and nothing is registered at import
time. ``serve()`` exposes the registry over HTTP on its own port.

Families (all prefixed ``landcoupler_``):

- ``step_phase_seconds{phase}``: histogram of per-step latency by phase, buckets from 0.1 ms to
  10 s: ``decode``/``encode`` (wire), ``validate``, ``land`` (backend step + ensemble statistics),
  ``record`` (handing the step to the record queue, including any wait for room),
  ``checkpoint`` (a periodic or requested checkpoint write), and ``record_write`` (the record's
  background writer storing one time chunk; off the step's critical path).
- ``cells_total``: counter of land cells stepped (``rate()`` of it is cells per second).
- ``steps_total``: counter of new (non-retry) steps; ``step_retries_total``: retries answered from
  the stored reply.
- ``open_sessions``: gauge.
- ``refusals_total{code}``: counter of refused requests by gRPC status name.
- ``energy_residual_w_m2`` / ``water_residual_kg_m2``: histograms of the per-step maximum
  closure residuals, plus ``*_last`` gauges; buckets from float round-off to gross violations.
- ``recorder_queue_full_total``: counter of record writes that had to wait for a full queue
  (data is never dropped); ``recorder_blocked_seconds_total``: how long they waited.
- ``checkpoints_total``: counter of checkpoints written.
- ``batch_sessions``: histogram of the sessions whose steps one backend call computed, and
  ``batch_cells_total`` their cells (micro-batching, ``coupler.core.batching``; only with a
  batch window: mean batch = ``_sum / _count``).

Assimilation (sessions with ``assimilation``; labels ``session`` = session id and ``obs_type``
= observed registry variable; a session's series are removed when it closes):

- ``step_phase_seconds{phase="assimilation"}``: the analysis and the forcing perturbation
  before the backend step;
- ``assimilation_analyses_total{session}``: analyses run;
- ``assimilation_observations_total{session,obs_type,outcome}``: observations by outcome:
  ``received`` (queued by Assimilate), ``used``, rejected at the analysis by screening
  (``nonfinite_forward``, ``zero_spread``, ``gross_error``), or ``window`` (a file observation
  whose window began before the session's history);
- ``assimilation_innovation_mean{session,obs_type}`` / ``assimilation_innovation_rms``: of the
  last analysis's used observations (observation units);
- ``assimilation_obs_spread{session,obs_type}``: prior ensemble spread in observation space;
- ``assimilation_state_spread{session,stage}``: ensemble spread of the state vector before
  (``prior``, inflated) and after (``posterior``) the last analysis;
- ``assimilation_inflation_mean{session}``: mean variance inflation of the last analysis.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_http_server

#: Step-phase latency buckets, seconds: 0.1 ms to 10 s, roughly 1-2.5-5 per decade.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
    10.0,
)  # fmt: skip

#: Closure-residual buckets: round-off (1e-12) up to gross violations (100).
RESIDUAL_BUCKETS: tuple[float, ...] = (
    1e-12,
    1e-10,
    1e-8,
    1e-6,
    1e-4,
    1e-3,
    1e-2,
    0.1,
    1.0,
    10.0,
    100.0,
)

#: Sessions per batched backend call (``landcoupler serve --batch-window-ms``).
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128)

PHASES: tuple[str, ...] = (
    "decode",
    "validate",
    "land",
    "encode",
    "record",
    "record_write",
    "checkpoint",
    "assimilation",
)


class ServiceMetrics:
    """The metrics of one service instance (see the module docstring for the families)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self._phase = Histogram(
            "landcoupler_step_phase_seconds",
            "Latency of one step, by phase",
            ["phase"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._cells = Counter("landcoupler_cells", "Land cells stepped", registry=r)
        self._steps = Counter("landcoupler_steps", "New steps computed", registry=r)
        self._retries = Counter(
            "landcoupler_step_retries", "Retried steps answered from the stored reply", registry=r
        )
        self._sessions = Gauge("landcoupler_open_sessions", "Open sessions", registry=r)
        self._refusals = Counter(
            "landcoupler_refusals", "Refused requests by gRPC status code", ["code"], registry=r
        )
        self._energy = Histogram(
            "landcoupler_energy_residual_w_m2",
            "Per-step max |rns - hfls - hfss - hfdsl|, W m-2",
            buckets=RESIDUAL_BUCKETS,
            registry=r,
        )
        self._water = Histogram(
            "landcoupler_water_residual_kg_m2",
            "Per-step max |dW - (pr - evspsbl - mrro) dt|, kg m-2",
            buckets=RESIDUAL_BUCKETS,
            registry=r,
        )
        self._energy_last = Gauge(
            "landcoupler_energy_residual_last_w_m2", "Energy residual of the last step", registry=r
        )
        self._water_last = Gauge(
            "landcoupler_water_residual_last_kg_m2", "Water residual of the last step", registry=r
        )
        self._queue_full = Counter(
            "landcoupler_recorder_queue_full",
            "Record writes that waited for a full queue (never dropped)",
            registry=r,
        )
        self._blocked = Counter(
            "landcoupler_recorder_blocked_seconds",
            "Time steps spent waiting for a full record queue",
            registry=r,
        )
        self._checkpoints = Counter("landcoupler_checkpoints", "Checkpoints written", registry=r)
        self._batch = Histogram(
            "landcoupler_batch_sessions",
            "Sessions whose steps one backend call computed (micro-batching)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._batch_cells = Counter(
            "landcoupler_batch_cells", "Cells of the batched backend calls", registry=r
        )
        by_type = ["session", "obs_type"]
        self._analyses = Counter(
            "landcoupler_assimilation_analyses", "Analyses run", ["session"], registry=r
        )
        self._obs = Counter(
            "landcoupler_assimilation_observations",
            "Observations by outcome (received, used, rejected by reason)",
            [*by_type, "outcome"],
            registry=r,
        )
        self._innov_mean = Gauge(
            "landcoupler_assimilation_innovation_mean",
            "Mean innovation y - mean(hE) of the last analysis's used observations",
            by_type,
            registry=r,
        )
        self._innov_rms = Gauge(
            "landcoupler_assimilation_innovation_rms",
            "RMS innovation of the last analysis's used observations",
            by_type,
            registry=r,
        )
        self._obs_spread = Gauge(
            "landcoupler_assimilation_obs_spread",
            "Prior ensemble spread in observation space (last analysis)",
            by_type,
            registry=r,
        )
        self._state_spread = Gauge(
            "landcoupler_assimilation_state_spread",
            "Ensemble spread of the state vector before/after the last analysis",
            ["session", "stage"],
            registry=r,
        )
        self._inflation = Gauge(
            "landcoupler_assimilation_inflation_mean",
            "Mean variance inflation of the last analysis",
            ["session"],
            registry=r,
        )
        self._da_labels: dict[str, set[tuple[str, ...]]] = {}
        self._da_lock = threading.Lock()
        self._http: WSGIServer | None = None

    # ---- the contract ------------------------------------------------------------------------
    def observe_phase(self, phase: str, seconds: float) -> None:
        """Record ``seconds`` (s) spent in ``phase`` (one of :data:`PHASES`)."""
        if phase not in PHASES:
            raise ValueError(f"phase {phase!r} is not one of {', '.join(PHASES)}")
        self._phase.labels(phase=phase).observe(max(0.0, float(seconds)))

    def count_cells(self, n: int) -> None:
        """Add ``n`` stepped cells (one new step of ``n`` cells)."""
        self._cells.inc(int(n))
        self._steps.inc()

    def set_open_sessions(self, n: int) -> None:
        self._sessions.set(int(n))

    def count_refusal(self, code: str) -> None:
        """Count one refused request; ``code`` is the gRPC status name, e.g. INVALID_ARGUMENT."""
        self._refusals.labels(code=str(code)).inc()

    def observe_residuals(self, energy_w_m2: float, water_kg_m2: float) -> None:
        """Per-step maximum closure residuals (W m-2, kg m-2). A NaN means "not available this
        step" (e.g. the water balance on a session's first step) and is not recorded."""
        if not math.isnan(energy_w_m2):
            self._energy.observe(float(energy_w_m2))
            self._energy_last.set(float(energy_w_m2))
        if not math.isnan(water_kg_m2):
            self._water.observe(float(water_kg_m2))
            self._water_last.set(float(water_kg_m2))

    def serve(self, port: int = 0, addr: str = "127.0.0.1") -> int:
        """Start the HTTP exporter (a daemon thread) and return the bound port."""
        if self._http is not None:
            raise RuntimeError("the metrics exporter is already serving")
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._http = server
        return int(server.server_port)

    # ---- extensions ----------------------------------------------------------------------------
    def count_retry(self) -> None:
        self._retries.inc()

    def count_recorder_block(self, seconds: float) -> None:
        """A record write waited ``seconds`` (s) for room in a full queue."""
        self._queue_full.inc()
        self._blocked.inc(max(0.0, float(seconds)))

    def count_checkpoint(self) -> None:
        self._checkpoints.inc()

    def observe_batch(self, sessions: int, cells: int) -> None:
        """One backend call for the steps of ``sessions`` sessions, ``cells`` cells in all."""
        self._batch.observe(int(sessions))
        self._batch_cells.inc(int(cells))

    # ---- assimilation ------------------------------------------------------------------------
    def observe_analysis(
        self,
        session: str,
        by_type: Mapping[str, Mapping[str, float]],
        prior_spread: float,
        posterior_spread: float,
        inflation_mean: float,
    ) -> None:
        """Export one analysis's diagnostics (see the module docstring; the arguments are
        those of ``MetricsSink.observe_analysis``)."""
        self._analyses.labels(session=session).inc()
        self._remember(session, ("analyses",))
        for var, stats in by_type.items():
            for key, value in stats.items():
                if key == "n_used":
                    self.count_observations(session, var, "used", int(value))
                elif key.startswith("rejected_") and value:
                    self.count_observations(session, var, key.removeprefix("rejected_"), int(value))
            for gauge, key in (
                (self._innov_mean, "innovation_mean"),
                (self._innov_rms, "innovation_rms"),
                (self._obs_spread, "obs_prior_spread"),
            ):
                gauge.labels(session=session, obs_type=var).set(float(stats[key]))
            self._remember(session, ("by_type", var))
        self._state_spread.labels(session=session, stage="prior").set(prior_spread)
        self._state_spread.labels(session=session, stage="posterior").set(posterior_spread)
        self._inflation.labels(session=session).set(inflation_mean)
        self._remember(session, ("session",))

    def count_observations(self, session: str, obs_type: str, outcome: str, n: int) -> None:
        """Add ``n`` observations of ``obs_type`` with ``outcome`` for ``session``."""
        self._obs.labels(session=session, obs_type=obs_type, outcome=outcome).inc(int(n))
        self._remember(session, ("obs", obs_type, outcome))

    def forget_session(self, session: str) -> None:
        """Remove a closed session's assimilation series (label cardinality stays bounded)."""
        with self._da_lock:
            keys = self._da_labels.pop(session, set())
        for key in keys:
            match key:
                case ("analyses",):
                    self._analyses.remove(session)
                case ("obs", obs_type, outcome):
                    self._obs.remove(session, obs_type, outcome)
                case ("by_type", obs_type):
                    for gauge in (self._innov_mean, self._innov_rms, self._obs_spread):
                        gauge.remove(session, obs_type)
                case ("session",):
                    self._state_spread.remove(session, "prior")
                    self._state_spread.remove(session, "posterior")
                    self._inflation.remove(session)

    def _remember(self, session: str, key: tuple[str, ...]) -> None:
        with self._da_lock:
            self._da_labels.setdefault(session, set()).add(key)

    def exposition(self) -> str:
        """The text exposition format of the registry (what ``/metrics`` serves)."""
        return generate_latest(self.registry).decode()

    def stop(self) -> None:
        """Stop the HTTP exporter if it is serving."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
