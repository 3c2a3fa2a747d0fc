/* C client test (driven by clients/test/run_tests.py): 48 steps float64 and float32, blind
 * retry of the last index, checkpoint + resume, and bad inputs. Usage:
 *   test_c TARGET DIR      DIR holds grid.bin, forcing.bin (written by the Python side) and
 *                          receives c_out.bin, c_out_f32.bin, c_resume_out.bin, c_errors.txt */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "landcoupler.h"
#include "scenario.h"


static double lat[NCALL], lon[NCALL], forcing[NT][NV][NCALL];
static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
  fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); failures++; } } while (0)

static void step_forcing(int t, double *out) { /* (NV, NC) field-major */
  for (int v = 0; v < NV; v++)
    for (int c = 0; c < NC; c++) out[v * NC + c] = forcing[t][v][c];
}

static lc_session *open_session(const char *target, const char *run_id, const char *ckpt) {
  lc_session *s = lc_session_new(target, NULL);
  int rc = lc_open(s, NC, lat, lon, START, 3600, "reference", "grass", OUTPUTS, run_id, 0, NULL,
                   ckpt, 0);
  CHECK(rc == LC_OK, "open: %d %s", rc, lc_error_message(s));
  return s;
}

static int read_file(const char *dir, const char *name, void *buf, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  return got == n ? 0 : -1;
}

static FILE *out_file(const char *dir, const char *name, const char *mode) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return fopen(path, mode);
}

static void error_case(FILE *log, const char *target, const char *name, int64_t index,
                       const char *names, int nan, int64_t n, int nv) {
  lc_session *s = open_session(target, "c-errors", NULL);
  double f[(NV + 1) * NC], out[NO * NC];
  for (int v = 0; v < nv; v++)
    for (int c = 0; c < NC; c++) f[v * NC + c] = forcing[0][v < NV ? v : 0][c];
  if (n < NC) { /* wrong size: pack the first n values of each field */
    double g[(NV + 1) * NC];
    for (int v = 0; v < nv; v++)
      for (int c = 0; c < n; c++) g[v * n + c] = f[v * NC + c];
    memcpy(f, g, sizeof g);
  }
  if (nan) f[0] = NAN;
  int rc = lc_step(s, index, names, f, n, NULL, out);
  fprintf(log, "%s %d %s %s\n", name, rc, lc_error_field(s), lc_error_rule(s));
  printf("error case %-8s -> %d field=%s rule=%s: %s\n", name, rc, lc_error_field(s),
         lc_error_rule(s), lc_error_message(s));
  CHECK(rc != LC_OK, "%s was accepted", name);
  /* a refused step leaves the session unchanged: step 0 still works */
  step_forcing(0, f);
  rc = lc_step(s, 0, FORCING, f, NC, NULL, out);
  CHECK(rc == LC_OK, "%s: step 0 after refusal: %d %s", name, rc, lc_error_message(s));
  lc_close(s);
  lc_session_free(s);
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: test_c TARGET DIR [PROXY]\n"); return 2; }
  const char *target = argv[1], *dir = argv[2];
  double grid[2 * NCALL];
  if (read_file(dir, "grid.bin", grid, sizeof grid) || read_file(dir, "forcing.bin", forcing, sizeof forcing)) {
    fprintf(stderr, "cannot read %s/grid.bin or forcing.bin\n", dir);
    return 2;
  }
  memcpy(lat, grid, sizeof lat);
  memcpy(lon, grid + NCALL, sizeof lon);
  printf("liblandcoupler %s\n", lc_version());

  /* 1. float64, 48 steps, plus a blind resend of every index */
  char ckpt_dir[4096], url[4096];
  snprintf(ckpt_dir, sizeof ckpt_dir, "file://%s/ckpt", dir);
  lc_session *s = open_session(target, "c-test", ckpt_dir);
  CHECK(lc_cells(s) == NC && lc_output_count(s) == NO, "cells %lld outputs %d",
        (long long)lc_cells(s), lc_output_count(s));
  FILE *fo = out_file(dir, "c_out.bin", "wb");
  double f[NV * NC], out[NO * NC], again[NO * NC];
  for (int t = 0; t < NT; t++) {
    step_forcing(t, f);
    int rc = lc_step(s, t, FORCING, f, NC, OUTPUTS, out);
    CHECK(rc == LC_OK, "step %d: %d %s", t, rc, lc_error_message(s));
    rc = lc_step(s, t, FORCING, f, NC, OUTPUTS, again); /* resend: stored reply */
    CHECK(rc == LC_OK && memcmp(out, again, sizeof out) == 0, "resend %d differs (%d)", t, rc);
    fwrite(out, sizeof out, 1, fo);
    if (t == 23) {
      rc = lc_checkpoint(s, NULL, url, sizeof url);
      CHECK(rc == LC_OK, "checkpoint: %d %s", rc, lc_error_message(s));
      printf("checkpoint after step 23: %s\n", url);
    }
  }
  fclose(fo);
  CHECK(lc_next_index(s) == NT, "next index %lld", (long long)lc_next_index(s));
  CHECK(lc_close(s) == LC_OK, "close: %s", lc_error_message(s));
  CHECK(lc_close(s) == LC_OK, "second close");
  lc_session_free(s);

  /* 2. resume from the checkpoint, steps 24..47 must equal the uninterrupted run */
  s = lc_session_new(target, NULL);
  int rc = lc_resume(s, url);
  CHECK(rc == LC_OK && lc_next_index(s) == 24, "resume: %d next %lld %s", rc,
        (long long)lc_next_index(s), lc_error_message(s));
  fo = out_file(dir, "c_resume_out.bin", "wb");
  for (int t = 24; t < NT && rc == LC_OK; t++) {
    step_forcing(t, f);
    rc = lc_step(s, t, FORCING, f, NC, NULL, out);
    CHECK(rc == LC_OK, "resumed step %d: %d %s", t, rc, lc_error_message(s));
    fwrite(out, sizeof out, 1, fo);
  }
  fclose(fo);
  lc_close(s);
  lc_session_free(s);

  /* 3. float32 forcing and outputs */
  s = open_session(target, "c-f32", NULL);
  fo = out_file(dir, "c_out_f32.bin", "wb");
  float f32[NV * NC], o32[NO * NC];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int t = 0; t < NT; t++) {
    step_forcing(t, f);
    for (int i = 0; i < NV * NC; i++) f32[i] = (float)f[i];
    rc = lc_step_f32(s, t, FORCING, f32, NC, OUTPUTS, o32);
    CHECK(rc == LC_OK, "f32 step %d: %d %s", t, rc, lc_error_message(s));
    fwrite(o32, sizeof o32, 1, fo);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("float32 run: %.2f ms per step (48 steps, 4 cells, 7 fields in, 4 out, loopback)\n",
         ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / NT);
  fclose(fo);
  lc_close(s);
  lc_session_free(s);

  /* 4. bad input: the server's code, field and rule */
  FILE *log = out_file(dir, "c_errors.txt", "w");
  error_case(log, target, "nan", 0, FORCING, 1, NC, NV);
  error_case(log, target, "unknown", 0, "tas,huss,ps,sfcWind,pr,rsds,rlds,foo", 0, NC, NV + 1);
  error_case(log, target, "order", 5, FORCING, 0, NC, NV);
  error_case(log, target, "size", 0, FORCING, 0, NC - 1, NV);
  /* a bad session: timestep 7000 s (must divide 86400) and an unknown output */
  s = lc_session_new(target, NULL);
  rc = lc_open(s, NC, lat, lon, START, 7000, NULL, NULL, OUTPUTS, NULL, 0, NULL, NULL, 0);
  fprintf(log, "open_timestep %d %s %s\n", rc, lc_error_field(s), lc_error_rule(s));
  printf("error case open_timestep -> %d: %s\n", rc, lc_error_message(s));
  rc = lc_open(s, NC, lat, lon, START, 3600, NULL, NULL, "hfls,nope", NULL, 0, NULL, NULL, 0);
  fprintf(log, "open_output %d %s %s\n", rc, lc_error_field(s), lc_error_rule(s));
  printf("error case open_output -> %d: %s\n", rc, lc_error_message(s));
  lc_session_free(s);
  fclose(log);

  /* 5. no server: UNAVAILABLE after the retries, no abort */
  s = lc_session_new("127.0.0.1:1", NULL);
  lc_set_retries(s, 2, 0.01);
  lc_set_timeout(s, 5);
  rc = lc_open(s, NC, lat, lon, START, 3600, NULL, NULL, OUTPUTS, NULL, 0, NULL, NULL, 0);
  printf("no server -> %d: %s\n", rc, lc_error_message(s));
  CHECK(rc == LC_UNAVAILABLE, "no server gave %d", rc);
  lc_session_free(s);

  /* 6. through a proxy that cuts the connection before step 24 (DIR/outage asks for it):
   *    the step is resent blindly with backoff on UNAVAILABLE and the run goes on unchanged */
  if (argc > 3) {
    s = open_session(argv[3], "c-retry", NULL);
    fo = out_file(dir, "c_retry_out.bin", "wb");
    for (int t = 0; t < NT; t++) {
      if (t == 24) {
        FILE *trigger = out_file(dir, "outage", "w");
        fclose(trigger);
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL); /* the proxy cuts every connection and refuses new ones */
      }
      step_forcing(t, f);
      rc = lc_step(s, t, FORCING, f, NC, NULL, out);
      CHECK(rc == LC_OK, "retry run step %d: %d %s", t, rc, lc_error_message(s));
      fwrite(out, sizeof out, 1, fo);
    }
    fclose(fo);
    printf("outage before step 24: %lld resend(s) after UNAVAILABLE, 48 steps done\n",
           (long long)lc_retry_count(s));
    CHECK(lc_retry_count(s) > 0, "the outage caused no retry");
    lc_close(s);
    lc_session_free(s);
  }

  printf(failures ? "C TEST FAILED (%d)\n" : "C TEST OK\n", failures);
  return failures ? 1 : 0;
}
