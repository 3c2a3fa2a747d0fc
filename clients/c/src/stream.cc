// liblandcoupler: steps over the bidirectional Exchange stream (lc_set_stream). Same frames as
// coupler/client/exchange.py: a StepRequest (fields inline, or `trailing_fields` Field frames
// after it); the reply is a StepReply plus its own trailing Field frames. A refusal ends the
// stream with its status; the next step opens a new one (the session itself is unchanged).
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "internal.h"

using namespace lc;

namespace {

// Cancels the stream if one step takes longer than the session's timeout (the stream itself
// has no deadline: it lives as long as the session). fired() then tells the caller.
class Watchdog {
 public:
  Watchdog(grpc::ClientContext *ctx, double seconds)
      : armed_(seconds > 0),
        until_(std::chrono::steady_clock::now() +
               std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6))) {
    if (!armed_) return;
    thread_ = std::thread([this, ctx] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_until(lock, until_, [this] { return done_; })) {
        fired_ = true;
        ctx->TryCancel();
      }
    });
  }
  ~Watchdog() { stop(); }
  bool stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return fired_;
  }
  // The deadline passed (even if the reply beat the watchdog thread to it).
  bool passed() const { return armed_ && std::chrono::steady_clock::now() > until_; }

 private:
  bool armed_;
  std::chrono::steady_clock::time_point until_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false, fired_ = false;
  std::thread thread_;
};

void open_stream(lc_session *s) {
  auto st = std::make_unique<Stream>();
  st->ctx = std::make_unique<grpc::ClientContext>();
  prepare(s, *st->ctx, false);
  st->rw.reset(grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
      s->channel.get(), *s->exchange_method, st->ctx.get()));
  s->stream = std::move(st);
}

// Send the frames and read one reply; false on a broken or ended stream (or a protocol error,
// then *protocol says what).
bool exchange(Stream &st, const std::vector<grpc::ByteBuffer> &frames, Reply *reply,
              std::string *protocol) {
  for (const auto &frame : frames)
    if (!st.rw->Write(frame)) return false;
  *reply = Reply();
  grpc::ByteBuffer in;
  if (!st.rw->Read(&in)) return false;
  if (reply->add(in, true) != 1) {
    *protocol = "Exchange: reply out of order or undecodable";
    return false;
  }
  for (uint64_t k = 0; k < reply->trailing; ++k) {
    if (!st.rw->Read(&in)) return false;
    if (reply->add(in, true) != 2) {
      *protocol = "Exchange: field frame expected";
      return false;
    }
  }
  return true;
}

}  // namespace

namespace lc {

void end_stream(lc_session *s, bool cancel) {
  if (!s->stream) return;
  std::unique_ptr<Stream> st = std::move(s->stream);
  if (cancel) st->ctx->TryCancel();
  else st->rw->WritesDone();
  st->rw->Finish();  // the server ends the call after the last step (or at once, cancelled)
}

int stream_step(lc_session *s, int64_t index, const std::vector<grpc::ByteBuffer> &frames,
                Reply *reply) {
  int rc = ensure_channel(s);
  if (rc != LC_OK) return rc;
  for (int attempt = 0;; ++attempt) {
    if (!s->stream) open_stream(s);
    Stream &st = *s->stream;
    std::string protocol;
    bool ok;
    bool expired;
    {
      Watchdog dog(st.ctx.get(), s->timeout);
      ok = exchange(st, frames, reply, &protocol);
      expired = dog.stop();
      if (ok && dog.passed()) {  // late reply: fail like a unary call past its deadline
        st.ctx->TryCancel();
        ok = false;
        expired = true;
      }
    }
    if (ok) {
      clear_error(s);
      return LC_OK;
    }
    if (!protocol.empty()) st.ctx->TryCancel();
    grpc::Status status = st.rw->Finish();
    std::unique_ptr<Stream> dead = std::move(s->stream);
    if (!protocol.empty()) {
      s->code = LC_INTERNAL;
      s->message = protocol;
      s->field.clear();
      s->rule.clear();
      return s->code;
    }
    if (status.ok())  // the server ended the stream without an answer
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server ended the Exchange stream");
    status_error(s, status, *dead->ctx);
    if (expired) {
      s->code = LC_DEADLINE_EXCEEDED;
      s->message = "step " + std::to_string(index) + " took longer than " +
                   std::to_string(s->timeout) + " s on the Exchange stream";
      return s->code;
    }
    const bool transient = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::CANCELLED;
    if (!(transient && attempt < s->retries)) return s->code;
    ++s->retried;
    backoff_wait(s, attempt);
  }
}

}  // namespace lc
