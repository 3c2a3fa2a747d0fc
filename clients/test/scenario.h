/* The small scenario the C test programs share with run_tests.py, which writes its files (grid
 * and 48 hourly steps of real station forcing for 16 cells; the programs use the first 4): the
 * sizes, the exchanged fields and the start time. */
#ifndef LANDCOUPLER_TEST_SCENARIO_H
#define LANDCOUPLER_TEST_SCENARIO_H

#define NC 4      /* cells used here (the first 4 of the grid file) */
#define NCALL 16  /* cells in the files */
#define NV 7      /* forcing fields */
#define NT 48     /* hourly steps */
#define NO 4      /* outputs */
static const char *FORCING = "tas,huss,ps,sfcWind,pr,rsds,rlds";
static const char *OUTPUTS = "hfls,hfss,ts,rlus";
static const char *START = "2001-01-01T05:00:00Z";

#endif
