// Internals shared by the liblandcoupler sources (not installed): the session and options
// structs and the call/error plumbing. landcoupler.cc: session, unary calls, steps, checkpoint,
// close; options.cc: lc_options, open/resume, channel and TLS; stream.cc: the Exchange stream;
// wire.cc / reply.cc: step encoding / reply parsing; recover.cc: surviving a server restart.
#ifndef LANDCOUPLER_INTERNAL_H
#define LANDCOUPLER_INTERNAL_H

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "landcoupler.h"
#include "landcoupler/v1/landcoupler.grpc.pb.h"

namespace pb = landcoupler::v1;

namespace lc {
// One open Exchange call (stream transport): its context and reader-writer. Requests are
// hand-encoded byte buffers (wire.cc), replies read from the received buffers (reply.cc).
struct Stream {
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> rw;
};

// A reply field as located in the received buffers (reply.cc): data is bytes [off, off + len)
// of buffer `buf`.
struct FieldRef {
  std::string name;
  int dtype = 0;
  bool raw = true;  // codec absent or "none"
  size_t buf = 0, off = 0, len = 0;
};

// A step's reply: the received buffers (referenced, not copied) and what they hold.
struct Reply {
  std::vector<std::vector<grpc::Slice>> bufs;
  std::vector<FieldRef> fields;
  std::string time;
  uint64_t trailing = 0;
  // Parse one received message: a StepReply (exchange false), or an ExchangeReply. Returns 1
  // for a StepReply / step frame, 2 for a Field frame, -1 for bytes that do not parse.
  int add(const grpc::ByteBuffer &bb, bool exchange);
  // Copy field f's data into dst (float64), or convert it into dst as float32 (to_float).
  void copy_output(const FieldRef &f, void *dst, bool to_float) const;
};

// One forcing array of a step, as it goes on the wire (wire.cc).
struct WireField {
  std::string name, units;
  int dtype;
  const void *data;  // the caller's array, referenced by the request's slices, never copied
  size_t bytes;
  uint64_t count;
};

// Counts the grpc slices that reference caller arrays; its destructor waits (bounded) until
// grpc has dropped them all, so that nothing references the caller's memory after a step.
struct SliceGuard {
  std::atomic<int> outstanding{0};
  grpc::Slice ref(const void *data, size_t bytes);
  static void release(void *user_data);
  ~SliceGuard();
};

// Accumulates a message as slices: header bytes (copied, a few per field) and caller data.
struct Builder {
  SliceGuard *guard;
  std::string pending;
  std::vector<grpc::Slice> slices;
  void bytes(const std::string &s);
  void data(const void *p, size_t n);
  void flush();
  grpc::ByteBuffer take();
};

// The step as byte buffers: unary, one StepRequest; stream, one ExchangeRequest (the step with
// its fields), or (split) a header ExchangeRequest announcing trailing_fields then one per field.
std::vector<grpc::ByteBuffer> encode_step(const std::string &session_id, int64_t index,
                                          const std::vector<WireField> &fields, bool stream,
                                          bool split, SliceGuard *guard);
// StepRequest.session_id (field 1) alone: prepended to a kept step's bytes when it is resent.
std::string session_id_field(const std::string &session_id);

// A step kept for resending after a server restart (recover.cc): its StepRequest encoding
// without the session id (field 1 omitted; a restarted server may give the session a new id),
// owned: the one copy of the forcing that armed sessions make.
struct KeptStep {
  int64_t index;
  std::string bytes;
};

// Restart recovery state of a session opened with checkpoint_url and checkpoint_every > 0.
struct Recovery {
  bool armed = false;
  pb::OpenSessionRequest open_req;  // as lc_open/lc_open_with sent it: to re-open
  std::string prefix;               // checkpoint_url
  int32_t every = 0;                // checkpoint_every
  int64_t ckpt_index = -1;          // next_index of the last default-URL checkpoint, -1 = none
  std::deque<KeptStep> since;       // steps after that checkpoint, in index order
  std::vector<std::string> spare;   // buffers of dropped kept steps, reused (no page faults)
  int64_t count = 0;                // lc_recover_count
};
}  // namespace lc

struct lc_session {
  // channel (created at the first call, so that lc_set_tls can come after lc_session_new)
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::LandCoupler::Stub> stub;
  std::unique_ptr<grpc::internal::RpcMethod> step_method, exchange_method;  // byte-buffer calls
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
  lc::Recovery rec;  // recover.cc
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
// CANCELLED like unary steps; the reply (header and trailing field frames) goes to `reply`.
int stream_step(lc_session *s, int64_t index, const std::vector<grpc::ByteBuffer> &frames,
                Reply *reply);
// Half-close the stream and collect its status (cancel: drop it at once). No-op without one.
void end_stream(lc_session *s, bool cancel);
void took_open(lc_session *s, const pb::OpenSessionReply &rep);
// One unary Step of an encoded request (UNAVAILABLE retried); the reply goes to `reply`.
int unary_step(lc_session *s, const grpc::ByteBuffer &request, Reply *reply);

// Restart recovery (recover.cc). arm: after lc_open/lc_open_with (armed only when `req` has a
// checkpoint_url and checkpoint_every > 0); disarm: after lc_resume.
void arm_recovery(lc_session *s, pb::OpenSessionRequest &&req);
void disarm_recovery(lc_session *s);
bool recovery_armed(const lc_session *s);
// After step `index` (the session's next new one) succeeded: keep a copy of it, or drop the
// kept ones when the server has just written its periodic checkpoint.
void keep_step(lc_session *s, int64_t index, const std::vector<WireField> &fields);
// After a successful lc_checkpoint to the default URL: nothing before it needs resending.
void checkpoint_written(lc_session *s);
// A step `index` got NOT_FOUND session_id: resume from the checkpoint (or re-open), resend the
// kept steps up to index - 1. LC_OK: the caller sends step `index` again (with the session id,
// which may have changed).
int recover(lc_session *s, int64_t index);
void set_field(pb::Field *f, const std::string &name, const std::string &units, pb::DType dtype,
               const void *data, int64_t n, size_t itemsize);

// Unary call `invoke(&ctx)` with the session's metadata and deadline; UNAVAILABLE retried when
// `retry`.
template <class Invoke>
int call_with(lc_session *s, Invoke invoke, bool retry) {
  int rc = ensure_channel(s);
  if (rc != LC_OK) return rc;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    prepare(s, ctx);
    grpc::Status st = invoke(&ctx);
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

// A unary call of the generated stub.
template <class Req, class Rep, class Fn>
int call(lc_session *s, Fn fn, const Req &req, Rep *rep, bool retry) {
  return call_with(
      s, [&](grpc::ClientContext *ctx) { return ((*s->stub).*fn)(ctx, req, rep); }, retry);
}

}  // namespace lc

#endif  // LANDCOUPLER_INTERNAL_H
