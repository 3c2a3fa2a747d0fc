"""Daily leaf-carbon phenology: LAI = SLA × leaf carbon.

Once a day (or once per step for steps of a day or longer) leaf carbon C_l [kg C m-2 of
vegetated area] changes by growth minus turnover:
- growth = a_leaf · CUE · GPP_day · max(0, 1 − LAI/LAI_max), CUE = 0.5 (Waring et al. 1998);
- turnover rate 1/longevity per day, plus, for deciduous classes, a cold trigger (+0.1 d-1 when
  the daily-mean temperature falls 5 K below the onset temperature) and a drought trigger
  (+0.05 d-1 when the daily-mean water-stress factor is below 0.2) — the trigger logic of
  CLM4-CN's seasonal-deciduous and stress-deciduous phenology, much simplified (Oleson et al. 2010);
- budburst from stored reserves (not tracked as a pool), as CLM4-CN's onset transfer: in the
  spring half of the year (``spring``: the 200 days after the winter solstice of the cell's
  hemisphere; always within the tropics), where it is warm (daily mean above the onset
  temperature) and unstressed (f_w > 0.5), leaf carbon relaxes towards LAI = 0.6 LAI_max at
  0.1 d-1 (a flush of a few weeks).
Left out: allocation to stems/roots, nitrogen, crop sowing and harvest, fire.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor
CARBON_USE_EFFICIENCY = 0.5
BUDBURST_FRACTION = 0.6  # of LAI_max
BUDBURST_RATE = 0.1  # d-1
SPRING_DAYS = 200


def spring(lat_deg: Tensor, day_of_year: int) -> Tensor:
    """1.0 where ``day_of_year`` lies within SPRING_DAYS after the hemisphere's winter solstice
    (21 Dec north, 21 Jun south), or the cell is within the tropics (|lat| < 23.44 deg)."""
    north = (day_of_year - 355) % 365 < SPRING_DAYS
    south = (day_of_year - 172) % 365 < SPRING_DAYS
    hemi = torch.where(lat_deg >= 0, torch.tensor(north), torch.tensor(south))
    return (hemi | (lat_deg.abs() < 23.44)).to(lat_deg.dtype)


def daily_leaf_carbon(
    cleaf: Tensor,
    gpp_day: Tensor,
    t_mean: Tensor,
    fw_mean: Tensor,
    days: float,
    *,
    in_spring: Tensor,
    sla: Tensor,
    lai_max: Tensor,
    longevity: Tensor,
    alloc: Tensor,
    deciduous: Tensor,
    t_onset: Tensor,
    vegetated: Tensor,
) -> Tensor:
    """New leaf carbon [kg C m-2]. ``gpp_day``: kg C m-2 (vegetated area) over the period of
    ``days`` days; temperatures K; ``in_spring`` from :func:`spring`; all tensors broadcast over
    (member, cell, tile)."""
    lai = sla * cleaf
    headroom = (1.0 - lai / lai_max.clamp_min(1e-6)).clamp_min(0.0)
    growth = alloc * CARBON_USE_EFFICIENCY * gpp_day * headroom
    rate = 1.0 / longevity
    rate = rate + deciduous * 0.1 * (t_mean < t_onset - 5.0).to(cleaf.dtype)
    rate = rate + deciduous * 0.05 * (fw_mean < 0.2).to(cleaf.dtype)
    turnover = cleaf * (1.0 - torch.exp(-rate * days))
    target = BUDBURST_FRACTION * lai_max / sla
    bud_ok = (t_mean > t_onset) & (fw_mean > 0.5) & (cleaf < target) & (in_spring > 0)
    budburst = bud_ok.to(cleaf.dtype) * (target - cleaf) * (1.0 - math.exp(-BUDBURST_RATE * days))
    new = (cleaf + growth - turnover + budburst).clamp_min(0.0)
    return new * vegetated
