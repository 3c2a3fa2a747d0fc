"""Citations of the data sets and derivation methods used by the forcing sources, keyed once.

A dataset's ``references`` attribute lists exactly the entries its source used (see ``cite``).
"""

from __future__ import annotations

from collections.abc import Iterable

REFERENCES: dict[str, str] = {
    "FAO56": "Allen, R.G., Pereira, L.S., Raes, D., Smith, M. (1998) Crop evapotranspiration: "
    "guidelines for computing crop water requirements. FAO Irrigation and Drainage Paper 56, "
    "FAO, Rome (eqs. 7, 11, 14, 21-25, 37, 47; 2 m/s default wind).",
    "BRUTSAERT1975": "Brutsaert, W. (1975) On a derivable formula for long-wave radiation from "
    "clear skies. Water Resources Research 11(5), 742-744.",
    "CRAWFORD_DUCHON1999": "Crawford, T.M., Duchon, C.E. (1999) An improved parameterization for "
    "estimating effective atmospheric emissivity for use in calculating daytime downwelling "
    "longwave radiation. Journal of Applied Meteorology 38, 474-480.",
    "SPENCER1971": "Spencer, J.W. (1971) Fourier series representation of the position of the "
    "Sun. Search 2(5), 172.",
    "IQBAL1983": "Iqbal, M. (1983) An Introduction to Solar Radiation. Academic Press, Toronto "
    "(equation of time, eq. 1.4.1; hour-angle integration of extraterrestrial irradiance, 1.5).",
    "PVLIB": "Holmgren, W.F., Hansen, C.W., Mikofski, M.A. (2018) pvlib python: a python package "
    "for modeling solar energy systems. Journal of Open Source Software 3(29), 884 "
    "(pvlib 0.11.2 iotools readers and the data files shipped in pvlib/data).",
    "TMY3": "Wilcox, S., Marion, W. (2008) Users Manual for TMY3 Data Sets. NREL/TP-581-43156, "
    "National Renewable Energy Laboratory, Golden, CO.",
    "IWEC": "ASHRAE (2001) International Weather for Energy Calculations (IWEC Weather Files) "
    "Users Manual and CD-ROM. ASHRAE, Atlanta; distributed in EnergyPlus Weather (EPW) format.",
    "CLARK_ALLEN1978": "Clark, G., Allen, C. (1978) The estimation of atmospheric radiation for "
    "clear and cloudy skies. Proc. 2nd National Passive Solar Conference (AS/ISES), 675-678; "
    "with the cloud factor of Walton, G.N. (1983) Thermal Analysis Research Program Reference "
    "Manual, NBSIR 83-2655 (as used by the EnergyPlus Weather Converter).",
    "BSRN": "Driemel, A. et al. (2018) Baseline Surface Radiation Network (BSRN): structure and "
    "data description (1992-2017). Earth System Science Data 10, 1491-1501. Station Payerne "
    "(PAY, no. 21, MeteoSwiss), station-to-archive file for June 2016 as shipped with pvlib.",
    "CABO": "van Kraalingen, D.W.G., Stol, W., Uithol, P.W.J., Verbeek, M. (1991) User manual "
    "of CABO/TPE Weather System. CABO/TPE internal communication, Wageningen "
    "(http://edepot.wur.nl/43010); Wageningen (Haarweg) station NL1 1976-1999 as shipped with "
    "PCSE 6.0 (pcse/tests/test_data/NL1.*).",
    "PCSE": "de Wit, A. et al. (2019) 25 years of the WOFOST cropping systems model. "
    "Agricultural Systems 168, 154-167 (Python Crop Simulation Environment, PCSE 6.0).",
    "CGMS": "Supit, I., Hooijer, A.A., van Diepen, C.A. (1994) System description of the "
    "WOFOST 6.0 crop simulation model implemented in CGMS. EUR 15956 EN, European Commission; "
    "grid weather from the PCSE 6.0 demo database dump pcse/tests/test_data/pcse_dump.sql.",
    "REICOSKY1989": "Reicosky, D.C., Winkelman, L.J., Baker, J.M., Baker, D.G. (1989) Accuracy "
    "of hourly air temperatures calculated from daily minima and maxima. Agricultural and Forest "
    "Meteorology 46, 193-209 (the cosine 'WAVE' interpolation between Tmin at sunrise and Tmax "
    "at 14:00).",
    "GOUDRIAAN_VANLAAR1994": "Goudriaan, J., van Laar, H.H. (1994) Modelling Potential Crop "
    "Growth Processes. Kluwer, Dordrecht (diurnal course of temperature from Tmin and Tmax).",
    "KASTEN_CZEPLAK1980": "Kasten, F., Czeplak, G. (1980) Solar and terrestrial radiation "
    "dependent on the amount and type of cloud. Solar Energy 24, 177-189.",
    "NORTH1981": "North, G.R., Cahalan, R.F., Coakley, J.A. (1981) Energy balance climate models. "
    "Reviews of Geophysics and Space Physics 19(1), 91-121 (zonal-mean surface temperature as a "
    "second Legendre polynomial in sin(latitude)).",
    "HARTMANN2016": "Hartmann, D.L. (2016) Global Physical Climatology, 2nd ed. Elsevier "
    "(ch. 2: daily and annual insolation).",
    "RICHARDSON1981": "Richardson, C.W. (1981) Stochastic simulation of daily precipitation, "
    "temperature, and solar radiation. Water Resources Research 17(1), 182-190 (two-state "
    "Markov chain occurrence, gamma-distributed amounts, AR(1) weather residuals).",
    "JUSTUS1978": "Justus, C.G., Hargraves, W.R., Mikhail, A., Graber, D. (1978) Methods for "
    "estimating wind speed frequency distributions. Journal of Applied Meteorology 17, 350-353 "
    "(Weibull wind-speed distribution, shape k near 2).",
}


def cite(keys: Iterable[str]) -> str:
    """The ``references`` attribute text for ``keys`` (in order, one per line, no duplicates)."""
    seen: list[str] = []
    for key in keys:
        if key not in REFERENCES:
            raise KeyError(f"unknown reference key {key!r}")
        if key not in seen:
            seen.append(key)
    return "\n".join(f"[{k}] {REFERENCES[k]}" for k in seen)
