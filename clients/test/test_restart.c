/* C client across a server kill (SIGKILL) and restart, driven by clients/test/restart_checks.py.
 *   test_restart TARGET DIR [stream]
 * DIR holds grid.bin and forcing.bin; DIR/restart/ receives the checkpoints and r_out_X.bin.
 * With "stream" every session steps over the Exchange stream (B and D split into one frame per
 * field) and DIR/restart-stream/ is used instead (below, "restart/" stands for either).
 * Four sessions (4 cells each, checkpoints under file://DIR/restart/ckpt) step 0..23, then this
 * program asks for the kill (creates DIR/restart/kill), waits for DIR/restart/killed (the server
 * is dead; the harness restarts it on the same port meanwhile) and goes on:
 *   A  checkpoint_every 1,   resends index 23 blindly (as after a lost reply): stored reply
 *   B  checkpoint_every 5,   sends index 24 (resumed at 20, steps 20-23 resent)
 *   C  checkpoint_every 5,   resends index 23 (resumed at 20, steps 20-22 resent, 23 recomputed)
 *   D  checkpoint_every 100, sends index 24 (no checkpoint yet: re-opened, steps 0-23 resent)
 * then steps on to 47. The reply at the resent index must equal the one received before the
 * kill. A fifth session (E) then has a step in flight when the server is killed (see below).
 * r_out_X.bin holds the 48 replies (48 x 4 outputs x 4 cells, float64) as delivered, for
 * the harness to compare with an uninterrupted Python-client run. Exit status 0 = all held. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "landcoupler.h"
#include "scenario.h"

#define NS 4
#define KILL_AFTER 23 /* last step before the kill */
static double lat[NCALL], lon[NCALL], forcing[NT][NV][NCALL];
static double out[NS][NT][NO * NC];
static int failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
  fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); failures++; } } while (0)

static void step_forcing(int t, double *f) {
  for (int v = 0; v < NV; v++)
    for (int c = 0; c < NC; c++) f[v * NC + c] = forcing[t][v][c];
}

static int read_all(const char *path, void *buf, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  return got == n ? 0 : -1;
}

static int exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

static int do_step(lc_session *s, int k, int t, double *dst) {
  double f[NV * NC];
  step_forcing(t, f);
  int rc = lc_step(s, t, FORCING, f, NC, OUTPUTS, dst);
  CHECK(rc == LC_OK, "session %c step %d: %d %s %s: %s", 'A' + k, t, rc, lc_error_field(s),
        lc_error_rule(s), lc_error_message(s));
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: test_restart TARGET DIR [stream]\n"); return 2; }
  const char *target = argv[1], *dir = argv[2];
  const int stream = argc > 3 && strcmp(argv[3], "stream") == 0;
  const char *sub = stream ? "restart-stream" : "restart";
  char path[4096], ckpt[4096];
  double grid[2 * NCALL];
  snprintf(path, sizeof path, "%s/grid.bin", dir);
  int bad = read_all(path, grid, sizeof grid);
  snprintf(path, sizeof path, "%s/forcing.bin", dir);
  if (bad || read_all(path, forcing, sizeof forcing)) { fprintf(stderr, "no inputs in %s\n", dir); return 2; }
  memcpy(lat, grid, sizeof lat);
  memcpy(lon, grid + NCALL, sizeof lon);
  snprintf(ckpt, sizeof ckpt, "file://%s/%s/ckpt", dir, sub);

  const int every[NS] = {1, 5, 5, 100};
  const int resend[NS] = {1, 0, 1, 0}; /* after the kill: resend KILL_AFTER, or send the next */
  lc_session *s[NS];
  for (int k = 0; k < NS; k++) {
    s[k] = lc_session_new(target, NULL);
    lc_set_retries(s[k], 12, 0.05); /* up to ~200 s of backoff: the server restarts meanwhile */
    if (stream) lc_set_stream(s[k], 1, k % 2 ? 0 : LC_DEFAULT_SPLIT_BYTES);
    char run_id[32];
    snprintf(run_id, sizeof run_id, "c-restart-%c", 'A' + k);
    int rc = lc_open(s[k], NC, lat, lon, "2001-01-01T05:00:00Z", 3600, "reference", "grass",
                     OUTPUTS, run_id, 0, NULL, ckpt, every[k]);
    CHECK(rc == LC_OK, "open %c: %d %s", 'A' + k, rc, lc_error_message(s[k]));
    if (rc != LC_OK) return 1;
  }
  for (int t = 0; t <= KILL_AFTER; t++)
    for (int k = 0; k < NS; k++)
      if (do_step(s[k], k, t, out[k][t]) != LC_OK) return 1;

  snprintf(path, sizeof path, "%s/%s/kill", dir, sub);
  FILE *trigger = fopen(path, "w");
  if (trigger) fclose(trigger);
  snprintf(path, sizeof path, "%s/%s/killed", dir, sub);
  for (int i = 0; i < 6000 && !exists(path); i++) {
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  CHECK(exists(path), "the harness did not kill the server within 60 s");
  printf("server killed after step %d; continuing (%s)\n", KILL_AFTER,
         stream ? "stream" : "unary");

  for (int k = 0; k < NS; k++) {
    double again[NO * NC];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (resend[k]) {
      if (do_step(s[k], k, KILL_AFTER, again) == LC_OK)
        CHECK(memcmp(again, out[k][KILL_AFTER], sizeof again) == 0,
              "session %c: the reply to resent index %d differs from the one before the kill",
              'A' + k, KILL_AFTER);
    } else {
      do_step(s[k], k, KILL_AFTER + 1, out[k][KILL_AFTER + 1]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("session %c (checkpoint_every %d): %s index %d after the kill: %.2f s, %lld resends "
           "on UNAVAILABLE, %lld recoveries, next index %lld, session %s\n",
           'A' + k, every[k], resend[k] ? "resent" : "sent", KILL_AFTER + !resend[k], secs,
           (long long)lc_retry_count(s[k]), (long long)lc_recover_count(s[k]),
           (long long)lc_next_index(s[k]), lc_session_id(s[k]));
    CHECK(lc_recover_count(s[k]) == 1, "session %c recovered %lld times", 'A' + k,
          (long long)lc_recover_count(s[k]));
    for (int t = KILL_AFTER + 1 + !resend[k]; t < NT; t++)
      if (do_step(s[k], k, t, out[k][t]) != LC_OK) break;
    CHECK(lc_next_index(s[k]) == NT, "session %c next index %lld", 'A' + k,
          (long long)lc_next_index(s[k]));
    CHECK(lc_close(s[k]) == LC_OK, "close %c: %s", 'A' + k, lc_error_message(s[k]));
    lc_session_free(s[k]);
    snprintf(path, sizeof path, "%s/%s/r_out_%c.bin", dir, sub, 'A' + k);
    FILE *fo = fopen(path, "wb");
    if (fo) {
      fwrite(out[k], sizeof out[k], 1, fo);
      fclose(fo);
    }
  }
  /* E: a step in flight when the server dies. checkpoint_every 1; after step 23 the harness
   * freezes the server (SIGSTOP, on DIR/restart/stop) and says so (DIR/restart/stopped); step 24
   * is sent into the frozen server, which the harness then kills (SIGKILL, 0.5 s later) and
   * restarts: the call fails under way, is resent, finds no session, resumes at 24. */
  lc_session *e = lc_session_new(target, NULL);
  lc_set_retries(e, 12, 0.05);
  if (stream) lc_set_stream(e, 1, LC_DEFAULT_SPLIT_BYTES);
  int rc = lc_open(e, NC, lat, lon, "2001-01-01T05:00:00Z", 3600, "reference", "grass", OUTPUTS,
                   "c-restart-E", 0, NULL, ckpt, 1);
  CHECK(rc == LC_OK, "open E: %d %s", rc, lc_error_message(e));
  static double out_e[NT][NO * NC];
  for (int t = 0; t <= KILL_AFTER && rc == LC_OK; t++) rc = do_step(e, 4, t, out_e[t]);
  snprintf(path, sizeof path, "%s/%s/stop", dir, sub);
  trigger = fopen(path, "w");
  if (trigger) fclose(trigger);
  snprintf(path, sizeof path, "%s/%s/stopped", dir, sub);
  for (int i = 0; i < 6000 && !exists(path); i++) {
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  CHECK(exists(path), "the harness did not stop the server within 60 s");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  rc = do_step(e, 4, KILL_AFTER + 1, out_e[KILL_AFTER + 1]);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("session E (checkpoint_every 1): index %d in flight when the server was killed: "
         "%.2f s, %lld resends on UNAVAILABLE, %lld recoveries\n", KILL_AFTER + 1,
         (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
         (long long)lc_retry_count(e), (long long)lc_recover_count(e));
  CHECK(lc_retry_count(e) >= 1 && lc_recover_count(e) == 1,
        "session E: %lld resends, %lld recoveries", (long long)lc_retry_count(e),
        (long long)lc_recover_count(e));
  for (int t = KILL_AFTER + 2; t < NT && rc == LC_OK; t++) rc = do_step(e, 4, t, out_e[t]);
  CHECK(lc_close(e) == LC_OK, "close E: %s", lc_error_message(e));
  lc_session_free(e);
  snprintf(path, sizeof path, "%s/%s/r_out_E.bin", dir, sub);
  FILE *fe = fopen(path, "wb");
  if (fe) {
    fwrite(out_e, sizeof out_e, 1, fe);
    fclose(fe);
  }

  printf(failures ? "C RESTART FAILED (%s): %d\n" : "C RESTART OK (%s)%.0d\n", sub, failures);
  return failures ? 1 : 0;
}
