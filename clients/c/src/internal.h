// Internals shared by the liblandcoupler sources (not installed): the session and options
// structs and the call/error plumbing. landcoupler.cc: session, unary calls, steps, checkpoint,
// close; options.cc: lc_options, open/resume, channel and TLS; stream.cc: the Exchange stream.
#ifndef LANDCOUPLER_INTERNAL_H
#define LANDCOUPLER_INTERNAL_H

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "landcoupler.h"
#include "landcoupler/v1/landcoupler.grpc.pb.h"

namespace pb = landcoupler::v1;

namespace lc {
// One open Exchange call (stream transport): its context and reader-writer.
struct Stream {
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReaderWriter<pb::ExchangeRequest, pb::ExchangeReply>> rw;
};
}  // namespace lc

struct lc_session {
  // channel (created at the first call, so that lc_set_tls can come after lc_session_new)
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::LandCoupler::Stub> stub;
  std::string token, client_name;
  bool tls = false;
  std::string root_ca, client_key, client_cert, server_name;
  double timeout = 300.0;
  int retries = 5;
  double backoff = 0.05;
  int64_t retried = 0;
  std::mt19937_64 rng{std::random_device{}()};
  // transport of steps
  bool use_stream = false;
  int64_t split_bytes = LC_DEFAULT_SPLIT_BYTES;
  std::unique_ptr<lc::Stream> stream;
  // session
  bool open = false, closed = false;
  std::string id, start, backend, last_time;
  int64_t next_index = 0, cells = 0;
  std::vector<std::string> outputs;
  std::map<std::string, std::string> units;
  bool have_units = false;
  // last error
  int code = LC_OK;
  std::string field, rule, message, request_id;
};

// Everything of an OpenSessionRequest but the grid, start, timestep and outputs.
struct lc_options {
  pb::OpenSessionRequest req;
  bool land_cover_set = false;
};

namespace lc {

std::string str(const char *s);
std::vector<std::string> split_names(const char *names);
void clear_error(lc_session *s);
int client_error(lc_session *s, const std::string &field, const std::string &rule,
                 const std::string &msg);
int status_error(lc_session *s, const grpc::Status &st, const grpc::ClientContext &ctx);
// Metadata (token, client name) and, when with_deadline, the per-call deadline.
void prepare(lc_session *s, grpc::ClientContext &ctx, bool with_deadline = true);
// The channel and stub, created on first use (plaintext or TLS); LC_OK or a client error.
int ensure_channel(lc_session *s);
// Sleep before resend number `attempt` (backoff * 2^attempt * U(0.5, 1.5)), then wait a bounded
// time for the channel to reconnect.
void backoff_wait(lc_session *s, int attempt);
// One step over the session's Exchange stream (opened on demand), resent on UNAVAILABLE or
// CANCELLED like unary steps; the reply's inline fields are in `head`, trailing ones in `extra`.
int stream_step(lc_session *s, const std::vector<pb::ExchangeRequest> &frames,
                pb::StepReply *head, std::vector<pb::Field> *extra);
// Half-close the stream and collect its status (cancel: drop it at once). No-op without one.
void end_stream(lc_session *s, bool cancel);
void took_open(lc_session *s, const pb::OpenSessionReply &rep);
void set_field(pb::Field *f, const std::string &name, const std::string &units, pb::DType dtype,
               const void *data, int64_t n, size_t itemsize);

// Unary call with the session's metadata and deadline; UNAVAILABLE retried when `retry`.
template <class Req, class Rep, class Fn>
int call(lc_session *s, Fn fn, const Req &req, Rep *rep, bool retry) {
  int rc = ensure_channel(s);
  if (rc != LC_OK) return rc;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    prepare(s, ctx);
    grpc::Status st = ((*s->stub).*fn)(&ctx, req, rep);
    if (st.ok()) {
      clear_error(s);
      return LC_OK;
    }
    status_error(s, st, ctx);
    if (!(retry && st.error_code() == grpc::StatusCode::UNAVAILABLE && attempt < s->retries))
      return s->code;
    ++s->retried;
    backoff_wait(s, attempt);
  }
}

}  // namespace lc

#endif  // LANDCOUPLER_INTERNAL_H
