"""Cover change (``emulators.landstep.cover``): water, heat and leaf carbon conserved per cell to
round-off, the closed form on a two-tile change, and the no-change identity bitwise."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators import parameters as P
from emulators.landstep import class_constants
from emulators.landstep.cover import T_REF, cell_totals, remap
from emulators.reference.soil import SoilConfig

L = P.LandCover
SOIL = SoilConfig()
CONST = class_constants(SOIL)
K = P.N_CLASSES


def _state(gen: torch.Generator, m: int, n: int) -> dict[str, torch.Tensor]:
    cap = CONST["capacity"]
    cmax = CONST["lai_max"] / CONST["sla"] * CONST["vegetated"]
    u = lambda *s: torch.rand(*s, generator=gen, dtype=torch.float64)  # noqa: E731
    return {
        "w": u(m, n, K) * cap,
        "ts": 260.0 + 40.0 * u(m, n, K),
        "tsoil": 260.0 + 40.0 * u(m, n, K, 3),
        "cleaf": u(m, n, K) * cmax,
        "nleaf": u(m, n, K) * cmax / 25.0,
        "acc_gpp": u(m, n, K),
        "lstm_h": torch.rand(m, n, K, 4, generator=gen).float(),
    }


def _fractions(gen: torch.Generator, n: int, zeros: float) -> torch.Tensor:
    f = torch.rand(n, K, generator=gen, dtype=torch.float64)
    f = torch.where(torch.rand(n, K, generator=gen, dtype=torch.float64) < zeros, 0.0, f)
    f[:, 0] += 1e-3
    return f / f.sum(-1, keepdim=True)


def test_closed_form_forest_to_crop() -> None:
    """Half the forest becomes new cropland: the crop tile gets the forest's saturation (its
    capacity is smaller, so it fills and the rest of the water is released), the forest's soil
    temperatures, carbon up to its LAI_max capacity."""
    ebf, crop = int(L.EVERGREEN_BROADLEAF_FOREST), int(L.CROPLAND)
    f_old = torch.zeros(1, K, dtype=torch.float64)
    f_old[0, ebf] = 1.0
    f_new = torch.zeros(1, K, dtype=torch.float64)
    f_new[0, ebf] = f_new[0, crop] = 0.5
    st0 = {
        "w": torch.zeros(1, 1, K, dtype=torch.float64),
        "tsoil": torch.full((1, 1, K, 3), 280.0, dtype=torch.float64),
        "cleaf": torch.zeros(1, 1, K, dtype=torch.float64),
    }
    st0["w"][0, 0, ebf] = 600.0
    st0["tsoil"][0, 0, ebf] = torch.tensor([300.0, 295.0, 290.0], dtype=torch.float64)
    st0["cleaf"][0, 0, ebf] = 0.4
    out = remap(st0, f_old, f_new, CONST, SOIL)
    cap_crop = float(CONST["capacity"][crop])  # 0.8 m × 0.451 × 1000 = 360.8 kg m-2
    # pool 0.5 × 600 = 300 kg m-2 of cell; crop room 0.5 × 360.8 = 180.4 → full, 119.6 released
    assert out.state["w"][0, 0, crop].item() == cap_crop
    torch.testing.assert_close(
        out.released["water"], torch.tensor([[300.0 - 0.5 * cap_crop]], dtype=torch.float64)
    )
    torch.testing.assert_close(
        out.state["tsoil"][0, 0, crop], torch.tensor([300.0, 295.0, 290.0], dtype=torch.float64)
    )
    assert out.released["heat"].abs().max() < 1e-6  # equal heat capacities: nothing leaves
    cmax_crop = float(CONST["lai_max"][crop] / CONST["sla"][crop])  # 5.5/35 = 0.157 kg C m-2
    torch.testing.assert_close(out.state["cleaf"][0, 0, crop].item(), cmax_crop)
    torch.testing.assert_close(out.released["carbon"].item(), 0.5 * 0.4 - 0.5 * cmax_crop)
    assert out.state["w"][0, 0, ebf].item() == 600.0  # the shrinking tile keeps its state


def test_unchanged_cells_are_bitwise_identical() -> None:
    gen = torch.Generator().manual_seed(3)
    state = _state(gen, 2, 5)
    f = _fractions(gen, 5, 0.3)
    f_new = f.clone()
    f_new[2] = _fractions(gen, 1, 0.3)[0]
    out = remap(state, f, f_new, CONST, SOIL)
    keep = [0, 1, 3, 4]
    for k, v in state.items():
        assert torch.equal(out.state[k][:, keep], v[:, keep]), k
        assert out.state[k].dtype == v.dtype
    assert all(torch.equal(r[:, keep], torch.zeros_like(r[:, keep])) for r in out.released.values())
    same = remap(state, f, f, CONST, SOIL)
    assert all(torch.equal(same.state[k], v) for k, v in state.items())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), members=st.integers(1, 3), cells=st.integers(1, 40),
       zeros=st.sampled_from([0.0, 0.3, 0.7]))  # fmt: skip
def test_conserved_to_round_off(seed: int, members: int, cells: int, zeros: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    state = _state(gen, members, cells)
    f_old, f_new = _fractions(gen, cells, zeros), _fractions(gen, cells, zeros)
    out = remap(state, f_old, f_new, CONST, SOIL)
    before = cell_totals(state, f_old, CONST, SOIL)
    after = cell_totals(out.state, f_new, CONST, SOIL)
    scale = {"water": 2000.0, "heat": 8 * 2e6 * 2.0 * 30.0, "carbon": 1.0, "nitrogen": 0.1}
    for key, b in before.items():
        err = (after[key] + out.released[key] - b).abs().max().item()
        assert err <= 1e-13 * scale[key], (key, err)
        assert out.residual[key].max().item() == err
    # bounds: water within capacity, carbon within LAI_max, soil temperatures within the
    # range of the old ones, released water and carbon never negative
    assert (out.state["w"] <= CONST["capacity"] * (1 + 1e-12)).all()
    assert (out.state["w"] >= 0).all() and (out.state["cleaf"] >= 0).all()
    cmax = CONST["lai_max"] / CONST["sla"] * CONST["vegetated"]
    assert (out.state["cleaf"] <= torch.maximum(cmax, state["cleaf"]) * (1 + 1e-12)).all()
    assert out.state["tsoil"].min() >= state["tsoil"].min() - 1e-9
    assert out.state["tsoil"].max() <= state["tsoil"].max() + 1e-9
    assert (out.released["water"] >= -1e-12).all() and (out.released["carbon"] >= -1e-12).all()
    # nitrogen moves with carbon: the released shares agree
    share_c = out.released["carbon"] / before["carbon"].clamp_min(1e-300)
    assert torch.isfinite(share_c).all()
    assert out.state["lstm_h"].dtype == torch.float32


def test_heat_relative_to_reference_temperature() -> None:
    """Urban (heat capacity ×1.5) replaced by grass (×1): the grass receives the urban soil's
    temperature and the heat that no longer fits, 0.5 × c_s dz (T − T_ref) per unit area moved,
    leaves the cell."""
    urb, grass = int(L.URBAN), int(L.GRASSLAND)
    f_old = torch.zeros(1, K, dtype=torch.float64)
    f_old[0, urb] = 1.0
    f_new = torch.zeros(1, K, dtype=torch.float64)
    f_new[0, grass] = 1.0
    st0 = {
        "w": torch.zeros(1, 1, K, dtype=torch.float64),
        "tsoil": torch.full((1, 1, K, 3), 290.0, dtype=torch.float64),
        "cleaf": torch.zeros(1, 1, K, dtype=torch.float64),
    }
    out = remap(st0, f_old, f_new, CONST, SOIL)
    assert torch.equal(out.state["tsoil"][0, 0, grass], st0["tsoil"][0, 0, urb])
    expected = 0.5 * SOIL.heat_capacity * sum(SOIL.layer_thickness) * (290.0 - T_REF)
    torch.testing.assert_close(out.released["heat"].item(), expected)
