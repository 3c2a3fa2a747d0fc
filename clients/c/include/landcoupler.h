/*
 * landcoupler.h — C client of the landcoupler gRPC service (protocol landcoupler.v1).
 *
 * A thin C API over a C++/grpc++ library (liblandcoupler). It speaks the same wire as the
 * Python client coupler.client.CouplerClient (docs/wire.md): fields travel as raw little-endian
 * bytes with a dtype and a shape, each step carries its index, and a resent index returns the
 * stored reply without advancing the session.
 *
 * Lifecycle
 *   lc_session *s = lc_session_new("127.0.0.1:50051", NULL);   // channel only, no call yet
 *   if (lc_open(s, cells, lat, lon, "2001-01-01T05:00:00Z", 3600, "reference", "grass",
 *               "hfls,hfss", "run-1", rank, NULL, NULL, 0) != LC_OK) {
 *       fprintf(stderr, "%s\n", lc_error_message(s));
 *   }
 *   for (k = 0; k < nsteps; k++)
 *       lc_step(s, k, "tas,huss,ps,sfcWind,pr,rsds,rlds", forcing, cells, "hfls,hfss", out);
 *   lc_checkpoint(s, NULL, url, sizeof url);
 *   lc_close(s);
 *   lc_session_free(s);
 *
 * Arrays are owned by the caller and never retained. A list of names is ONE string of
 * comma-separated names ("tas,huss"); the matching array is field-major and contiguous:
 * values[f * n + c] is cell c of the f-th named field (in Fortran: an array (n, nfields)).
 * Forcing is sent in the registry's units (those the server lists in Describe; the caller
 * promises them, exactly like the Python client's default).
 *
 * Errors
 *   Every function returning int returns LC_OK (0) on success, else the gRPC status code
 *   (LC_INVALID_ARGUMENT = 3, LC_FAILED_PRECONDITION = 9, LC_UNAVAILABLE = 14, ...) or
 *   LC_CLIENT_ERROR (100) for a problem found in this library before or after the call (bad
 *   arguments, a reply that does not fit the caller's buffer). Nothing aborts or exits.
 *   After a failure, lc_error_code/field/rule/message/request_id describe it: field and rule
 *   are the server's `landcoupler-field` / `landcoupler-rule` trailing metadata ("" when
 *   absent), message its status details. They stay valid until the next call on the session.
 *
 * Retries
 *   lc_step and lc_checkpoint retry UNAVAILABLE up to `retries` times (default 5) with
 *   exponential backoff (backoff * 2^attempt * U(0.5, 1.5), default backoff 0.05 s), resending
 *   the same index: safe, because the server answers a resent index with the stored reply.
 *
 * Thread safety: one session per thread (an MPI rank typically owns one session).
 */
#ifndef LANDCOUPLER_H
#define LANDCOUPLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LC_OK 0
#define LC_CANCELLED 1
#define LC_UNKNOWN 2
#define LC_INVALID_ARGUMENT 3
#define LC_DEADLINE_EXCEEDED 4
#define LC_NOT_FOUND 5
#define LC_PERMISSION_DENIED 7
#define LC_RESOURCE_EXHAUSTED 8
#define LC_FAILED_PRECONDITION 9
#define LC_INTERNAL 13
#define LC_UNAVAILABLE 14
#define LC_UNAUTHENTICATED 16
#define LC_CLIENT_ERROR 100

typedef struct lc_session lc_session;

/* A client handle on `target` ("host:port", plaintext). token: bearer token or NULL/"".
 * Returns NULL only when out of memory. Nothing is sent until lc_open / lc_resume. */
lc_session *lc_session_new(const char *target, const char *token);

/* Optional settings (call before lc_open): per-call deadline in seconds (default 300, <= 0 =
 * none), UNAVAILABLE retries and first backoff delay for steps and checkpoints, and the
 * x-landcoupler-client owner name on servers without auth (NULL = none: "anonymous"). */
void lc_set_timeout(lc_session *s, double seconds);
void lc_set_retries(lc_session *s, int retries, double backoff_seconds);
void lc_set_client_name(lc_session *s, const char *name);

/* Open a session on `cells` land cells (lat, lon: degrees, float64, `cells` each).
 * start: RFC 3339 ("2001-01-01T05:00:00Z"); timestep: seconds; backend: NULL/"" = "reference";
 * land_cover: a class name ("grass", ...), NULL/"" = "grass"; outputs: comma-separated registry
 * names returned by every step; run_id / record_url / checkpoint_url: NULL or "" = none;
 * rank: the caller's MPI rank (recorded with the run id); checkpoint_every: steps, 0 = only on
 * request. The server validates everything (INVALID_ARGUMENT naming field and rule). */
int lc_open(lc_session *s, int64_t cells, const double *lat, const double *lon,
            const char *start, int64_t timestep, const char *backend, const char *land_cover,
            const char *outputs, const char *run_id, int32_t rank, const char *record_url,
            const char *checkpoint_url, int32_t checkpoint_every);

/* Open by resuming the checkpoint at `url` (grid and configuration come from it). */
int lc_resume(lc_session *s, const char *url);

/* How many times calls on this session were resent after UNAVAILABLE (for tests/logs). */
int64_t lc_retry_count(const lc_session *s);

/* How many times a session was rebuilt after a server restart (docs/clients.md, "Server
 * restarts"): a session opened by lc_open with a checkpoint_url and checkpoint_every > 0 keeps
 * the steps since the server's last periodic checkpoint; when a step is refused with
 * NOT_FOUND session_id (a restarted server does not know the session), it is resumed from
 * <checkpoint_url>/<session id>.ckpt (or re-opened before the first checkpoint), the kept
 * steps are resent and the step goes through. Sessions opened by lc_resume are not armed. */
int64_t lc_recover_count(const lc_session *s);

/* Session facts after lc_open / lc_resume. */
int64_t lc_cells(const lc_session *s);
int64_t lc_next_index(const lc_session *s);       /* the index the next new step must carry */
int lc_output_count(const lc_session *s);
const char *lc_output_name(const lc_session *s, int i);   /* NULL when out of range */
const char *lc_session_id(const lc_session *s);
const char *lc_last_time(const lc_session *s);    /* start of the last computed step, RFC 3339 */

/* One coupled step. forcing_names: comma-separated (e.g. "tas,huss,ps,sfcWind,pr,rsds,rlds");
 * forcing: nfields * n values, field-major (see above), n = values per field (normally
 * lc_cells; anything else is sent as is and refused by the server, rule shape/size).
 * output_names: comma-separated subset/order of the session's outputs, NULL or "" = all of them
 * in session order; outputs: noutputs * cells values written field-major. index == next index
 * advances; index == next index - 1 returns the stored reply again. */
int lc_step(lc_session *s, int64_t index, const char *forcing_names, const double *forcing,
            int64_t n, const char *output_names, double *outputs);

/* The same with float32 forcing (sent as float32) and outputs converted to float32. */
int lc_step_f32(lc_session *s, int64_t index, const char *forcing_names, const float *forcing,
                int64_t n, const char *output_names, float *outputs);

/* Write a checkpoint to `url` (NULL/"" = the session's checkpoint_url). The URL written is
 * copied to url_out (NUL-terminated, truncated to url_out_len) when url_out is not NULL. */
int lc_checkpoint(lc_session *s, const char *url, char *url_out, size_t url_out_len);

/* Close the session on the server (flushes its record). Idempotent. */
int lc_close(lc_session *s);

/* Free the handle (does not close the session: call lc_close first). NULL is fine. */
void lc_session_free(lc_session *s);

/* The last error on this session (code LC_OK and empty strings after a success). */
int lc_error_code(const lc_session *s);
const char *lc_error_field(const lc_session *s);
const char *lc_error_rule(const lc_session *s);
const char *lc_error_message(const lc_session *s);
const char *lc_error_request_id(const lc_session *s);

/* The library version, "MAJOR.MINOR.PATCH". */
const char *lc_version(void);

#ifdef __cplusplus
}
#endif
#endif /* LANDCOUPLER_H */
