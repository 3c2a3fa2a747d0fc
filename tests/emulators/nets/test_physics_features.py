"""``flux_lstm`` with ``physics=True``: Penman–Monteith terms derived inside the network from the
raw features (closed forms against FAO-56, the pressure and wind dependence they exist for, and
the served forms equal to the eager module)."""

from __future__ import annotations

import math

import pytest
import torch

import emulators.nets.flux  # noqa: F401  (registers flux_lstm)
from emulators import export, physics
from emulators.compiled.features import (
    DERIVED_FLUX_FEATURES,
    DERIVED_FROM,
    FLUX_FEATURES,
    N_DERIVED_FLUX_FEATURES,
    N_FLUX_FEATURES,
    derived_flux_features,
)
from emulators.nets import registry

COL = {f.name: i for i, f in enumerate(FLUX_FEATURES)}
PM_WEIGHT, RN, LE_EQ, LE_AERO, LOG_GA = range(N_DERIVED_FLUX_FEATURES)


def raw(tas: list[float], ps: list[float], wind: list[float], rh: float = 0.5) -> torch.Tensor:
    """Raw features (float64) with consistent humidity: huss at ``rh`` of saturation."""
    t = torch.tensor(tas, dtype=torch.float64)
    p = torch.tensor(ps, dtype=torch.float64)
    x = torch.zeros(len(tas), N_FLUX_FEATURES, dtype=torch.float64)
    qs, _ = physics.saturation_specific_humidity(t, p)
    x[:, COL["tas"]], x[:, COL["ps"]] = t, p
    x[:, COL["huss"]], x[:, COL["qdef"]] = rh * qs, (1.0 - rh) * qs
    x[:, COL["sfcWind"]] = torch.tensor(wind, dtype=torch.float64)
    x[:, COL["rsns"]], x[:, COL["rlds"]] = 400.0, 350.0
    return x


def test_weight_is_fao56_slope_over_slope_plus_psychrometric_constant() -> None:
    """s = ε/(ε + 1) is FAO-56's Δ/(Δ + γ) (eqs. 8, 13; γ = c_p p/(0.622 λ) with λ(T) rather
    than FAO-56's fixed 2.45 MJ kg-1) to within the q-vs-e approximation."""
    tas = [278.15, 293.15, 303.15, 293.15]
    ps = [101_325.0, 101_325.0, 101_325.0, 78_800.0]
    s = derived_flux_features(raw(tas, ps, [2.0] * 4), DERIVED_FROM)[:, PM_WEIGHT] * 0.25 + 0.5
    for k, (t, p) in enumerate(zip(tas, ps, strict=True)):
        tc = t - 273.15
        delta = 4098.0 * 0.6108 * math.exp(17.27 * tc / (tc + 237.3)) / (tc + 237.3) ** 2
        lam = 2.501e6 - 2361.0 * tc
        gamma = 1004.64 * (p / 1000.0) / (0.622 * lam)  # kPa K-1
        assert float(s[k]) == pytest.approx(delta / (delta + gamma), rel=0.005)


def test_lower_pressure_weights_radiation_more_and_wind_drives_the_drying_term() -> None:
    d = derived_flux_features(
        raw([293.15] * 3, [101_325.0, 78_800.0, 101_325.0], [2.0, 2.0, 4.0]), DERIVED_FROM
    )
    assert d[1, PM_WEIGHT] > d[0, PM_WEIGHT]  # γ ∝ p: thin air, larger Δ/(Δ + γ)
    assert float(d[2, LE_AERO] / d[0, LE_AERO]) == pytest.approx(2.0, rel=1e-12)  # g_a ∝ u
    assert float(d[2, LOG_GA] - d[0, LOG_GA]) == pytest.approx(math.log(2.0), rel=1e-12)
    # the equilibrium term is the weight times the net radiation estimate
    s = d[:, PM_WEIGHT] * 0.25 + 0.5
    assert torch.allclose(d[:, LE_EQ], s * d[:, RN])
    # calm air: the wind floor keeps g_a finite
    assert torch.isfinite(derived_flux_features(raw([293.15], [1e5], [0.0]), DERIVED_FROM)).all()


def test_physics_network_takes_the_same_inputs_and_exports_bitwise() -> None:
    torch.manual_seed(0)
    plain = registry.build("flux_lstm", {"hidden": 8})
    model = registry.build("flux_lstm", {"hidden": 8, "physics": True}).eval()
    assert model.wx.in_features == plain.wx.in_features + N_DERIVED_FLUX_FEATURES
    assert len(DERIVED_FLUX_FEATURES) == N_DERIVED_FLUX_FEATURES
    x = raw([280.0, 295.0, 305.0], [101_325.0, 90_000.0, 78_800.0], [0.5, 2.0, 6.0]).float()
    h, c = torch.zeros(3, 8), torch.zeros(3, 8)
    want = model(x, h, c)
    with export.torchscript_quiet():
        scripted = torch.jit.script(model)
    exported = torch.export.export(model, (x, h, c)).module()
    for got in (scripted(x, h, c), exported(x, h, c)):
        for a, b in zip(want, got, strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"physics": 1}, "physics must be true or false"),
        ({"physics": True, "n_features": 10}, "physics needs"),
    ],
)
def test_bad_physics_option_is_refused(options: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        registry.config("flux_lstm", options)


def test_without_physics_the_scripted_network_has_no_derived_features() -> None:
    """``physics`` is a TorchScript constant: the branch is compiled out, not carried along."""
    with export.torchscript_quiet():
        plain = torch.jit.script(registry.build("flux_lstm", {"hidden": 8}).eval())
        hybrid = torch.jit.script(
            registry.build("flux_lstm", {"hidden": 8, "physics": True}).eval()
        )
    assert "derived_flux_features" not in str(plain.forward.graph)
    assert "derived_flux_features" in str(hybrid.forward.graph)
