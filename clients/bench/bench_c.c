/* The C client's per-step time for `make bench-clients` (clients/bench/bench_clients.py).
 *   bench_c TARGET CELLS f32|f64 STEPS DIR [EVERY]
 * DIR/grid.bin: lat then lon (CELLS float64 each); DIR/base.bin: (STEPS, 7) float64 station
 * forcing (tas, huss, ps, sfcWind, pr, rsds, rlds). Cell c gets tas + 0.001 * (c % 100) K, the
 * rest as is (bench_clients.py builds the Python client's arrays with the same operations).
 * One session (reference backend, outputs hfls, hfss, ts, rlus), STEPS steps; each lc_step /
 * lc_step_f32 call is timed (the forcing is filled outside the timed call). Prints one JSON
 * line; writes the last step's outputs to DIR/c_last_f32.bin or c_last_f64.bin (float64).
 * EVERY > 0 opens the session armed for server restarts (checkpoint_url file://DIR/ckpt,
 * checkpoint_every EVERY): the library then copies each step's request it keeps. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "landcoupler.h"

#define NV 7
#define NO 4

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int read_all(const char *dir, const char *name, void *buf, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  return got == n ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 6 && argc != 7) {
    fprintf(stderr, "usage: bench_c TARGET CELLS f32|f64 STEPS DIR [EVERY]\n");
    return 2;
  }
  const char *target = argv[1], *dir = argv[5];
  int every = argc == 7 ? atoi(argv[6]) : 0;
  char ckpt[4096];
  snprintf(ckpt, sizeof ckpt, "file://%s/ckpt", dir);
  long n = atol(argv[2]), steps = atol(argv[4]);
  int f32 = strcmp(argv[3], "f32") == 0;
  double *grid = malloc(2 * n * sizeof(double)), *base = malloc(steps * NV * sizeof(double));
  double *f = malloc(NV * n * sizeof(double)), *out = malloc(NO * n * sizeof(double));
  float *g = malloc(NV * n * sizeof(float)), *o32 = malloc(NO * n * sizeof(float));
  double *secs = malloc(steps * sizeof(double));
  if (!grid || !base || !f || !out || !g || !o32 || !secs) return 3;
  if (read_all(dir, "grid.bin", grid, 2 * n * sizeof(double)) ||
      read_all(dir, "base.bin", base, steps * NV * sizeof(double))) {
    fprintf(stderr, "cannot read %s/grid.bin, base.bin\n", dir);
    return 2;
  }
  lc_session *s = lc_session_new(target, NULL);
  int rc = lc_open(s, n, grid, grid + n, "2001-01-01T05:00:00Z", 3600, "reference", "grass",
                   "hfls,hfss,ts,rlus", "bench-c", 0, NULL, every > 0 ? ckpt : NULL, every);
  if (rc != LC_OK) { fprintf(stderr, "open: %d %s\n", rc, lc_error_message(s)); return 1; }
  for (long t = 0; t < steps; t++) {
    for (int v = 0; v < NV; v++)
      for (long c = 0; c < n; c++)
        f[v * n + c] = v == 0 ? base[t * NV + v] + 0.001 * (double)(c % 100) : base[t * NV + v];
    if (f32)
      for (long i = 0; i < NV * n; i++) g[i] = (float)f[i];
    double t0 = now();
    rc = f32 ? lc_step_f32(s, t, "tas,huss,ps,sfcWind,pr,rsds,rlds", g, n, NULL, o32)
             : lc_step(s, t, "tas,huss,ps,sfcWind,pr,rsds,rlds", f, n, NULL, out);
    secs[t] = now() - t0;
    if (rc != LC_OK) { fprintf(stderr, "step %ld: %d %s\n", t, rc, lc_error_message(s)); return 1; }
  }
  if (f32)
    for (long i = 0; i < NO * n; i++) out[i] = o32[i];
  char path[4096];
  snprintf(path, sizeof path, "%s/c_last_%s.bin", dir, f32 ? "f32" : "f64");
  FILE *fo = fopen(path, "wb");
  if (fo) { fwrite(out, sizeof(double), NO * n, fo); fclose(fo); }
  lc_close(s);
  lc_session_free(s);
  printf("{\"seconds\": [");
  for (long t = 0; t < steps; t++) printf("%s%.6f", t ? ", " : "", secs[t]);
  printf("]}\n");
  return 0;
}
