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
    "TMY2": "Marion, W., Urban, K. (1995) User's Manual for TMY2s, Typical Meteorological Years "
    "derived from the 1961-1990 National Solar Radiation Data Base. NREL/SP-463-7668, National "
    "Renewable Energy Laboratory, Golden, CO (WBAN 12839 Miami as shipped with pvlib).",
    "PVGIS": "Huld, T., Mueller, R., Gambardella, A. (2012) A new solar radiation database for "
    "estimating PV performance in Europe and Africa. Solar Energy 86, 1803-1815; PVGIS 5 typical "
    "meteorological year 2005-2023 at 45.0N 8.0E as shipped with pvlib (tmy_45.000_8.000_"
    "2005_2023.csv; (c) European Union, 2001-2024, reuse authorised with acknowledgement). "
    "Meteorological variables and IR(h) from the ERA5 reanalysis (Hersbach, H. et al. (2020) The "
    "ERA5 global reanalysis. Q. J. R. Meteorol. Soc. 146, 1999-2049).",
    "NSRDB": "Sengupta, M., Xie, Y., Lopez, A., Habte, A., Maclaurin, G., Shelby, J. (2018) The "
    "National Solar Radiation Data Base (NSRDB). Renewable and Sustainable Energy Reviews 89, "
    "51-60; PSM v3.2.2 half-hourly 2017, location 401182 (40.53N, 108.54W) as shipped with "
    "pvlib (test_read_psm3.csv).",
    "SOLARANYWHERE": "Clean Power Research, SolarAnywhere time series 2021 (data version 3.6) in "
    "TMY3 format, Burlington VT (44.465N, 73.205W), as shipped with pvlib (copyright 2010-2022 "
    "Clean Power Research, L.L.C.; read from the installed package, not redistributed).",
    "CGMS_STATIONS": "Daily station weather 2013-2014 from the CGMS database (JRC MARS), shipped "
    "with PCSE 6.0 as Penman-Monteith test data (pcse/tests/test_data/{8011_asturias, "
    "2297_sweden, 8443_ronda, 10870_munchen_flughafen}.csv); station coordinates and elevations "
    "from pcse/tests/test_penmanmonteith.py.",
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
