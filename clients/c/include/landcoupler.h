/*
 * landcoupler.h — C client of the landcoupler gRPC service (protocol landcoupler.v1).
 *
 * A thin C API over a C++/grpc++ library (liblandcoupler). It speaks the same wire as the
 * Python client coupler.client.CouplerClient (docs/wire.md): fields travel as raw little-endian
 * bytes with a dtype and a shape, each step carries its index, and a resent index returns the
 * stored reply without advancing the session.
 *
 * Lifecycle
 *   lc_session *s = lc_session_new("127.0.0.1:50051", NULL);   // no connection yet
 *   lc_set_tls(s, "ca.pem", NULL, NULL, NULL);                 // optional: TLS (mTLS: key, cert)
 *   lc_set_stream(s, 1, LC_DEFAULT_SPLIT_BYTES);               // optional: Exchange stream
 *   lc_options *o = lc_options_new();                          // optional: session settings
 *   lc_options_set_land_cover_fractions(o, cells, 8, fractions, 0);
 *   lc_options_set_record(o, "/scratch/run-1/rank0.zarr");
 *   if (lc_open_with(s, cells, lat, lon, "2001-01-01T05:00:00Z", 3600, "hfls,hfss", o) != LC_OK)
 *       fprintf(stderr, "%s\n", lc_error_message(s));
 *   lc_options_free(o);                                        // (lc_open: the short form)
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
 *   Over the stream (lc_set_stream) a failed step drops the stream and is resent on a new one,
 *   also after CANCELLED (a server draining for shutdown), exactly like the Python client.
 *
 * Copies (per step, lc_step): none of the forcing arrays. The request is a gRPC byte buffer
 *   whose data slices point at the caller's arrays (only the few header bytes before each array
 *   are written by the library); grpc++ sends from them, and lc_step returns only once grpc++
 *   holds no reference to them. The reply is read from the received buffers in place and each
 *   requested output is copied once into `outputs` (lc_step_f32: converted to float32 in that
 *   pass); outputs not asked for are not copied. The stream transport works the same way.
 *   lc_open_with copies lat, lon and the options (fractions) once, into its request.
 *   Exception: a session armed for server restarts (lc_recover_count below) copies each new
 *   step's encoded request once after its reply (at most checkpoint_every - 1 kept, dropped at
 *   each periodic checkpoint) and keeps its open request; unarmed sessions copy no forcing.
 *
 * Thread safety: one session per thread (an MPI rank typically owns one session). Over the
 *   stream, each step with a timeout runs a short-lived watchdog thread inside the library.
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

/* Steps of at least this many forcing bytes go on the stream as one frame per field. */
#define LC_DEFAULT_SPLIT_BYTES (4 * 1024 * 1024)

typedef struct lc_session lc_session;
typedef struct lc_options lc_options;

/* A client handle on `target` ("host:port"). token: bearer token (sent as "authorization:
 * Bearer TOKEN" on every call) or NULL/"". Returns NULL only when out of memory. The channel is
 * created at the first call (lc_open / lc_open_with / lc_resume), plaintext unless lc_set_tls. */
lc_session *lc_session_new(const char *target, const char *token);

/* Optional settings (call before lc_open): per-call deadline in seconds (default 300, <= 0 =
 * none), UNAVAILABLE retries and first backoff delay for steps and checkpoints, and the
 * x-landcoupler-client owner name on servers without auth (NULL = none: "anonymous"). */
void lc_set_timeout(lc_session *s, double seconds);
void lc_set_retries(lc_session *s, int retries, double backoff_seconds);
void lc_set_client_name(lc_session *s, const char *name);

/* TLS (call before the first lc_open/lc_resume; LC_CLIENT_ERROR after). Each argument is PEM
 * text ("-----BEGIN ...") or the path of a PEM file. root_ca: the CA that signed the server
 * certificate (NULL/"" = the system roots); client_key + client_cert: the client's key and
 * certificate for mutual TLS (both or neither); server_name: the name checked against the
 * server certificate when it differs from the target's host (NULL/"" = the target's host).
 * A certificate the CA did not sign fails the first call with LC_UNAVAILABLE, no abort. */
int lc_set_tls(lc_session *s, const char *root_ca, const char *client_key,
               const char *client_cert, const char *server_name);

/* Step transport: on = 0 unary Step calls (default), 1 the bidirectional Exchange stream (one
 * stream per session, opened at the first step, reopened after a failure). A step whose forcing
 * holds at least split_bytes bytes (and more than one field) is sent as a header plus one frame
 * per field (0 = always split; LC_DEFAULT_SPLIT_BYTES = the Python client's default). Same
 * lc_step calls, results and resend semantics either way. May be changed between steps. */
int lc_set_stream(lc_session *s, int on, int64_t split_bytes);

/* Session settings for lc_open_with: a builder over the OpenSessionRequest (docs/clients.md).
 * Setters return LC_OK or LC_CLIENT_ERROR (NULL options, bad sizes); the values themselves are
 * checked by the server at open (INVALID_ARGUMENT naming field and rule, e.g. land_cover
 * sums_to_one, record_options.codec known_codec). Strings and arrays are copied: the caller's
 * may be freed after the setter returns. NULL/"" strings mean "unset". */
lc_options *lc_options_new(void);   /* NULL only when out of memory */
void lc_options_free(lc_options *o);
/* backend: "reference" (default), ...; run id and MPI rank of the record/checkpoint names. */
int lc_options_set_backend(lc_options *o, const char *backend);
int lc_options_set_run(lc_options *o, const char *run_id, int32_t rank);
/* Land cover of every cell: a class name ("grass" (default), "ebf", "dfw", "crop", "shrub",
 * "bare", "urban", "water"), or per-cell fractions of the nclasses (8) classes (rows >= 0,
 * summing to 1). fractions layout: class_major = 0: fractions[c * nclasses + k] (C (cells,
 * nclasses) row-major, the wire's own order: one memcpy); class_major = 1: fractions[k * cells
 * + c] (field-major like forcing, Fortran (cells, nclasses)): transposed while copying. */
int lc_options_set_land_cover(lc_options *o, const char *name);
int lc_options_set_land_cover_fractions(lc_options *o, int64_t cells, int32_t nclasses,
                                        const double *fractions, int class_major);
/* Ensemble members (0 = 1) and whether to also return "<name>_spread" outputs. */
int lc_options_set_members(lc_options *o, int32_t members, int output_spread);
/* Checkpoints: fsspec URL prefix and period in steps (0 = only on request and at shutdown). */
int lc_options_set_checkpoint(lc_options *o, const char *url, int32_t every);
/* Zarr v3 record of every step at `url` (fsspec URL or path; "" = none). The server creates
 * the directories of a plain path, not those of a file:// URL (docs/clients.md). */
int lc_options_set_record(lc_options *o, const char *url);
/* How the record is written (proto RecordOptions): codec_id "zstd", "blosc", "pcodec", "none"
 * with config_json (e.g. "{\"level\": 3}", NULL = defaults) for every field; chunk_bytes per
 * time chunk (0 = 1 MiB); shard_chunks (0 = default); lossy_forcing: allow keepbits on forcing. */
int lc_options_set_record_options(lc_options *o, const char *codec_id, const char *config_json,
                                  uint64_t chunk_bytes, uint32_t shard_chunks, int lossy_forcing);
/* One field's record codec, with keepbits (lossy bit rounding; 0 = lossless). */
int lc_options_set_record_field(lc_options *o, const char *name, const char *codec_id,
                                const char *config_json, uint32_t keepbits);
/* Frozen vegetation from 1 January of `year` on (0 = dynamic). */
int lc_options_set_freeze_vegetation_year(lc_options *o, int32_t year);
/* Heights of the forcing above the zero-plane displacement (m): sfcWind at height_wind,
 * tas/huss at height_temperature (the model's lowest level; CLM's forc_hgt). Not called = 10 m
 * and 2 m. The server checks them: finite, in (0, 200] (rule range), and served by the backend
 * (rule backend_heights: the network emulators serve the heights their flux network was trained
 * at, docs/wire.md; reference, hybrid: any). */
int lc_options_set_heights(lc_options *o, double height_wind, double height_temperature);

/* Open a session on `cells` land cells (lat, lon: degrees, float64, `cells` each).
 * start: RFC 3339 ("2001-01-01T05:00:00Z"); timestep: seconds; backend: NULL/"" = "reference";
 * land_cover: a class name ("grass", ...), NULL/"" = "grass"; outputs: comma-separated registry
 * names returned by every step; run_id / record_url / checkpoint_url: NULL or "" = none;
 * rank: the caller's MPI rank (recorded with the run id); checkpoint_every: steps, 0 = only on
 * request. The server validates everything (INVALID_ARGUMENT naming field and rule).
 * The short form of lc_open_with (which adds land-cover fractions, record options, ...). */
int lc_open(lc_session *s, int64_t cells, const double *lat, const double *lon,
            const char *start, int64_t timestep, const char *backend, const char *land_cover,
            const char *outputs, const char *run_id, int32_t rank, const char *record_url,
            const char *checkpoint_url, int32_t checkpoint_every);

/* Open a session on `cells` cells (lat, lon: degrees, float64) from `start` (RFC 3339) with
 * steps of `timestep` seconds returning `outputs` (comma-separated), everything else from `o`
 * (NULL = all defaults). `o` is not retained (free it after the call or reuse it). */
int lc_open_with(lc_session *s, int64_t cells, const double *lat, const double *lon,
                 const char *start, int64_t timestep, const char *outputs, const lc_options *o);

/* Open by resuming the checkpoint at `url` (grid and configuration come from it). */
int lc_resume(lc_session *s, const char *url);

/* How many times calls on this session were resent after UNAVAILABLE (for tests/logs). */
int64_t lc_retry_count(const lc_session *s);

/* How many times a session was rebuilt after a server restart (docs/clients.md, "Server
 * restarts"): a session opened by lc_open / lc_open_with with a checkpoint_url and
 * checkpoint_every > 0 is armed: it keeps an owned copy of the steps sent since the server's
 * last periodic checkpoint (see "Copies" above); when a step is refused with NOT_FOUND
 * session_id (a restarted server does not know the session), it is resumed from
 * <checkpoint_url>/<session id>.ckpt (or re-opened before the first checkpoint), the kept steps
 * are resent (unary Step calls) and the step goes through, on either transport. Sessions opened
 * by lc_resume are not armed. */
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

/* Close the session on the server (flushes its record; ends the stream first). Idempotent. */
int lc_close(lc_session *s);

/* Free the handle (does not close the session: call lc_close first; cancels an open stream).
 * NULL is fine. */
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
