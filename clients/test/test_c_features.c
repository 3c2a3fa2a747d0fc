/* C client test of the session options, the stream transport and TLS (driven by
 * clients/test/run_tests.py through clients/test/features.py). Usage:
 *   test_c_features cover  TARGET DIR         land-cover fractions (DIR/cover.bin, (16, 8) C
 *                                             order) + a zstd record at DIR/rec_c.zarr, 48 steps
 *                                             -> c_cover_out.bin; bad options -> c_feat_errors.txt
 *   test_c_features stream TARGET DIR CELLS NT PROXY
 *                                             DIR/big_grid.bin, big_forcing.bin ((NT, 7, CELLS))
 *                                             -> c_big_unary.bin, c_big_stream_split.bin,
 *                                             c_big_stream_whole.bin, c_big_stream_retry.bin
 *                                             (through PROXY, cut before step 2),
 *                                             stream refusals -> c_stream_errors.txt
 *   test_c_features tls TARGET DIR CA KEY CERT WRONG_CA TOKEN
 *                                             mutual TLS + token + stream, fractions, 48 steps
 *                                             -> c_tls_out.bin; failures -> c_tls_errors.txt */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "landcoupler.h"
#include "scenario.h"

#define NK 8
static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
  fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); failures++; } } while (0)

static char *path_of(const char *dir, const char *name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

static void *load(const char *dir, const char *name, size_t n) {
  void *buf = malloc(n);
  FILE *f = fopen(path_of(dir, name), "rb");
  if (!buf || !f || fread(buf, 1, n, f) != n) {
    fprintf(stderr, "cannot read %s/%s\n", dir, name);
    exit(2);
  }
  fclose(f);
  return buf;
}

static void log_error(FILE *log, const char *name, int rc, lc_session *s) {
  fprintf(log, "%s %d %s %s\n", name, rc, lc_error_field(s), lc_error_rule(s));
  printf("error case %-14s -> %d field=%s rule=%s: %s\n", name, rc, lc_error_field(s),
         lc_error_rule(s), lc_error_message(s));
}

/* grid.bin, forcing.bin (NT, NV, NCALL) and cover.bin (NCALL, NK) of the first NC cells */
static double lat[NC], lon[NC], forcing[NT][NV][NC], cover[NC * NK];

static void load_small(const char *dir) {
  double *grid = load(dir, "grid.bin", sizeof(double) * 2 * NCALL);
  double *all = load(dir, "forcing.bin", sizeof(double) * NT * NV * NCALL);
  double *frac = load(dir, "cover.bin", sizeof(double) * NCALL * NK);
  for (int c = 0; c < NC; c++) {
    lat[c] = grid[c];
    lon[c] = grid[NCALL + c];
  }
  for (int t = 0; t < NT; t++)
    for (int v = 0; v < NV; v++)
      for (int c = 0; c < NC; c++) forcing[t][v][c] = all[(t * NV + v) * NCALL + c];
  memcpy(cover, frac, sizeof cover); /* rows of the first NC cells */
  free(grid), free(all), free(frac);
}

/* 48 steps of the first NC cells, each index resent once (the stored reply), into `out` */
static void run48(lc_session *s, const char *dir, const char *out_name) {
  FILE *fo = fopen(path_of(dir, out_name), "wb");
  double out[NO * NC], again[NO * NC];
  for (int t = 0; t < NT; t++) {
    int rc = lc_step(s, t, FORCING, &forcing[t][0][0], NC, OUTPUTS, out);
    CHECK(rc == LC_OK, "%s step %d: %d %s", out_name, t, rc, lc_error_message(s));
    rc = lc_step(s, t, FORCING, &forcing[t][0][0], NC, OUTPUTS, again);
    CHECK(rc == LC_OK && !memcmp(out, again, sizeof out), "%s resend %d (%d)", out_name, t, rc);
    fwrite(out, sizeof out, 1, fo);
  }
  fclose(fo);
}

/* a session of the first NC cells opened with `o` (freed here), run48 into `out_name`, closed */
static void run48_with(const char *target, const char *dir, lc_options *o, const char *what,
                       const char *out_name) {
  lc_session *s = lc_session_new(target, NULL);
  int rc = lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o);
  CHECK(rc == LC_OK, "open %s: %d %s", what, rc, lc_error_message(s));
  lc_options_free(o);
  run48(s, dir, out_name);
  lc_close(s);
  lc_session_free(s);
}

static int cover_test(const char *target, const char *dir) {
  load_small(dir);
  char url[4096];
  snprintf(url, sizeof url, "%s", path_of(dir, "rec_c.zarr"));
  lc_options *o = lc_options_new();
  CHECK(lc_options_set_land_cover_fractions(o, NC, NK, cover, 0) == LC_OK, "fractions");
  CHECK(lc_options_set_run(o, "c-cover", 0) == LC_OK, "run");
  CHECK(lc_options_set_record(o, url) == LC_OK, "record");
  CHECK(lc_options_set_record_options(o, "zstd", "{\"level\": 3}", 0, 0, 0) == LC_OK, "record options");
  CHECK(lc_options_set_land_cover_fractions(o, -1, NK, cover, 0) == LC_CLIENT_ERROR, "cells < 0");
  lc_session *s = lc_session_new(target, NULL);
  int rc = lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o);
  CHECK(rc == LC_OK, "open with fractions + record: %d %s", rc, lc_error_message(s));
  lc_options_free(o);
  run48(s, dir, "c_cover_out.bin");
  CHECK(lc_close(s) == LC_OK, "close: %s", lc_error_message(s));
  lc_session_free(s);

  /* the same fractions given class-major ((cells, 8) in Fortran order): same session */
  double by_class[NK * NC];
  for (int c = 0; c < NC; c++)
    for (int k = 0; k < NK; k++) by_class[k * NC + c] = cover[c * NK + k];
  o = lc_options_new();
  lc_options_set_land_cover_fractions(o, NC, NK, by_class, 1);
  run48_with(target, dir, o, "class-major", "c_cover_classmajor_out.bin");

  /* the forcing measured at 30 m (wind) and 20 m (temperature): the model's lowest level */
  o = lc_options_new();
  lc_options_set_land_cover_fractions(o, NC, NK, cover, 0);
  CHECK(lc_options_set_heights(o, 30.0, 20.0) == LC_OK, "heights");
  run48_with(target, dir, o, "at 30 m / 20 m", "c_heights_out.bin");

  /* refused options: the server's code/field/rule (compared with the Python client) */
  FILE *log = fopen(path_of(dir, "c_feat_errors.txt"), "w");
  s = lc_session_new(target, NULL);
  double bad[NC * NK];
  memcpy(bad, cover, sizeof bad);
  bad[0] += 0.5;
  o = lc_options_new();
  lc_options_set_land_cover_fractions(o, NC, NK, bad, 0);
  log_error(log, "cover_sum", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_options_free(o);
  o = lc_options_new();
  lc_options_set_land_cover_fractions(o, NC, NK - 1, cover, 0);
  log_error(log, "cover_shape", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_options_free(o);
  o = lc_options_new();
  lc_options_set_land_cover(o, "jungle");
  log_error(log, "cover_class", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_options_free(o);
  o = lc_options_new();
  lc_options_set_record(o, url);
  lc_options_set_record_options(o, "lzma", NULL, 0, 0, 0);
  log_error(log, "record_codec", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_options_set_record_options(o, NULL, NULL, 0, 0, 0);
  lc_options_set_record_field(o, "tas", "zstd", NULL, 10);
  log_error(log, "record_keepbits", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_options_free(o);
  o = lc_options_new();
  lc_options_set_heights(o, 0.0, 2.0);
  log_error(log, "height_range", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_options_set_heights(o, 10.0, 2.0);
  lc_options_set_backend(o, "torchscript");
  lc_session *t = lc_session_new(target, NULL);
  rc = lc_open_with(t, NC, lat, lon, START, 3600, OUTPUTS, o);
  CHECK(rc == LC_OK, "torchscript at the default heights, named: %d %s", rc, lc_error_message(t));
  CHECK(lc_close(t) == LC_OK, "close: %s", lc_error_message(t));
  lc_session_free(t);
  lc_options_set_heights(o, 10.0, 1.0); /* flux-lstm was trained at 1.5-60 m */
  log_error(log, "height_backend", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_options_free(o);
  lc_session_free(s);
  fclose(log);
  printf(failures ? "C FEATURES cover FAILED (%d)\n" : "C FEATURES cover OK\n", failures);
  return failures ? 1 : 0;
}

/* NT steps of CELLS cells: unary, stream split into one frame per field, stream whole,
 * stream through a proxy that cuts the connection before step 2 */
static int stream_test(const char *target, const char *dir, int64_t cells, int nt,
                       const char *proxy) {
  double *grid = load(dir, "big_grid.bin", sizeof(double) * 2 * cells);
  double *big = load(dir, "big_forcing.bin", sizeof(double) * nt * NV * cells);
  double *out = malloc(sizeof(double) * NO * cells), *again = malloc(sizeof(double) * NO * cells);
  const char *names[] = {"c_big_unary.bin", "c_big_stream_split.bin", "c_big_stream_whole.bin",
                         "c_big_stream_retry.bin"};
  for (int mode = 0; mode < 4; mode++) {
    lc_session *s = lc_session_new(mode == 3 ? proxy : target, NULL);
    if (mode > 0) lc_set_stream(s, 1, mode == 2 ? LC_DEFAULT_SPLIT_BYTES : 0);
    int rc = lc_open(s, cells, grid, grid + cells, START, 3600, NULL, NULL, OUTPUTS, "c-big", 0,
                     NULL, NULL, 0);
    CHECK(rc == LC_OK, "open %s: %d %s", names[mode], rc, lc_error_message(s));
    FILE *fo = fopen(path_of(dir, names[mode]), "wb");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int t = 0; t < nt; t++) {
      if (mode == 3 && t == 2) {
        fclose(fopen(path_of(dir, "outage"), "w"));
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
      }
      const double *f = big + (size_t)t * NV * cells;
      rc = lc_step(s, t, FORCING, f, cells, NULL, out);
      CHECK(rc == LC_OK, "%s step %d: %d %s", names[mode], t, rc, lc_error_message(s));
      if (mode == 1) { /* blind resend over the stream: the stored reply */
        rc = lc_step(s, t, FORCING, f, cells, NULL, again);
        CHECK(rc == LC_OK && !memcmp(out, again, sizeof(double) * NO * cells),
              "stream resend %d (%d)", t, rc);
      }
      fwrite(out, sizeof(double), NO * cells, fo);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fclose(fo);
    printf("%s: %d steps of %lld cells, %.1f ms per step%s; %lld resend(s) after UNAVAILABLE\n",
           names[mode], nt, (long long)cells,
           ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / nt,
           mode == 1 ? " (each sent twice)" : "", (long long)lc_retry_count(s));
    if (mode == 3) CHECK(lc_retry_count(s) > 0, "the outage caused no stream resend");
    CHECK(lc_close(s) == LC_OK, "close %s: %s", names[mode], lc_error_message(s));
    lc_session_free(s);
  }
  /* refusals on the stream: same code/field/rule as unary; the session is unchanged */
  FILE *log = fopen(path_of(dir, "c_stream_errors.txt"), "w");
  lc_session *s = lc_session_new(target, NULL);
  lc_set_stream(s, 1, 0);
  lc_open(s, cells, grid, grid + cells, START, 3600, NULL, NULL, OUTPUTS, "c-big-errors", 0,
          NULL, NULL, 0);
  double *f = malloc(sizeof(double) * NV * cells);
  memcpy(f, big, sizeof(double) * NV * cells);
  f[cells + 3] = NAN; /* huss of cell 3 */
  log_error(log, "nan", lc_step(s, 0, FORCING, f, cells, NULL, out), s);
  log_error(log, "order", lc_step(s, 5, FORCING, big, cells, NULL, out), s);
  log_error(log, "size", lc_step(s, 0, FORCING, big, cells - 1, NULL, out), s);
  lc_set_timeout(s, 1e-6); /* the per-step watchdog cancels the stream */
  log_error(log, "deadline", lc_step(s, 0, FORCING, big, cells, NULL, out), s);
  lc_set_timeout(s, 300);
  int rc = lc_step(s, 0, FORCING, big, cells, NULL, again);
  CHECK(rc == LC_OK, "stream step 0 after refusals: %d %s", rc, lc_error_message(s));
  lc_close(s);
  lc_session_free(s);
  fclose(log);
  free(f), free(grid), free(big), free(out), free(again);
  printf(failures ? "C FEATURES stream FAILED (%d)\n" : "C FEATURES stream OK\n", failures);
  return failures ? 1 : 0;
}

static int tls_test(const char *target, const char *dir, const char *ca, const char *key,
                    const char *cert, const char *wrong_ca, const char *token) {
  load_small(dir);
  FILE *log = fopen(path_of(dir, "c_tls_errors.txt"), "w");
  lc_options *o = lc_options_new();
  lc_options_set_land_cover_fractions(o, NC, NK, cover, 0);
  lc_options_set_run(o, "c-tls", 0);
  /* mutual TLS (CA file, client key and certificate files) + bearer token + stream */
  lc_session *s = lc_session_new(target, token);
  int rc = lc_set_tls(s, ca, key, cert, NULL);
  CHECK(rc == LC_OK, "set tls: %d %s", rc, lc_error_message(s));
  lc_set_stream(s, 1, 0);
  rc = lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o);
  CHECK(rc == LC_OK, "open over mTLS: %d %s", rc, lc_error_message(s));
  if (rc == LC_OK) run48(s, dir, "c_tls_out.bin");
  CHECK(lc_set_tls(s, ca, NULL, NULL, NULL) == LC_CLIENT_ERROR, "TLS changed after open");
  CHECK(lc_close(s) == LC_OK, "close: %s", lc_error_message(s));
  lc_session_free(s);
  /* a server certificate the given CA did not sign: a clean status */
  s = lc_session_new(target, token);
  lc_set_tls(s, wrong_ca, key, cert, NULL);
  log_error(log, "wrong_ca", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_session_free(s);
  /* a server name the certificate does not carry (lc_set_tls server_name): refused */
  s = lc_session_new(target, token);
  lc_set_tls(s, ca, key, cert, "other.example");
  log_error(log, "server_name", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_session_free(s);
  /* the certificate's DNS name instead of its IP address: accepted */
  s = lc_session_new(target, token);
  lc_set_tls(s, ca, key, cert, "localhost");
  rc = lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o);
  CHECK(rc == LC_OK, "server_name localhost: %d %s", rc, lc_error_message(s));
  lc_close(s);
  lc_session_free(s);
  /* no token: the server's UNAUTHENTICATED with field and rule */
  s = lc_session_new(target, NULL);
  lc_set_tls(s, ca, key, cert, NULL);
  log_error(log, "no_token", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_session_free(s);
  /* plaintext to a TLS server */
  s = lc_session_new(target, token);
  lc_set_timeout(s, 10);
  log_error(log, "plaintext", lc_open_with(s, NC, lat, lon, START, 3600, OUTPUTS, o), s);
  lc_session_free(s);
  /* unreadable CA file, key without certificate: found locally */
  s = lc_session_new(target, token);
  log_error(log, "ca_missing", lc_set_tls(s, path_of(dir, "no-such-ca.pem"), NULL, NULL, NULL), s);
  log_error(log, "key_alone", lc_set_tls(s, ca, key, NULL, NULL), s);
  lc_session_free(s);
  lc_options_free(o);
  fclose(log);
  printf(failures ? "C FEATURES tls FAILED (%d)\n" : "C FEATURES tls OK\n", failures);
  return failures ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && !strcmp(argv[1], "cover")) return cover_test(argv[2], argv[3]);
  if (argc >= 7 && !strcmp(argv[1], "stream"))
    return stream_test(argv[2], argv[3], atoll(argv[4]), atoi(argv[5]), argv[6]);
  if (argc >= 9 && !strcmp(argv[1], "tls"))
    return tls_test(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8]);
  fprintf(stderr, "usage: test_c_features cover|stream|tls TARGET DIR ... (see the source)\n");
  return 2;
}
