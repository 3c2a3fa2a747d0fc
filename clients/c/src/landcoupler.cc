// liblandcoupler: the C API of landcoupler.h over grpc++ (landcoupler.v1). Never throws across
// the C boundary; every failure is an int status plus field/rule/message on the session.
// This file: the session handle, errors, unary plumbing, steps, checkpoint, close
// (options.cc: lc_options, open/resume, channel/TLS; stream.cc: the Exchange transport;
// recover.cc: surviving a server restart).
#include <chrono>
#include <cmath>
#include <cstring>
#include <new>
#include <thread>

#include "internal.h"

namespace lc {

std::string str(const char *s) { return s ? std::string(s) : std::string(); }

std::vector<std::string> split_names(const char *names) {
  std::vector<std::string> out;
  if (!names) return out;
  std::string cur;
  for (const char *p = names;; ++p) {
    if (*p == ',' || *p == '\0') {
      size_t a = cur.find_first_not_of(" \t"), b = cur.find_last_not_of(" \t");
      if (a != std::string::npos) out.push_back(cur.substr(a, b - a + 1));
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur.push_back(*p);
    }
  }
  return out;
}

void clear_error(lc_session *s) {
  s->code = LC_OK;
  s->field.clear();
  s->rule.clear();
  s->message.clear();
  s->request_id.clear();
}

int client_error(lc_session *s, const std::string &field, const std::string &rule,
                 const std::string &msg) {
  s->code = LC_CLIENT_ERROR;
  s->field = field;
  s->rule = rule;
  s->message = "field '" + field + "': rule " + rule + ": " + msg;
  s->request_id.clear();
  return s->code;
}

void prepare(lc_session *s, grpc::ClientContext &ctx, bool with_deadline) {
  if (!s->token.empty()) ctx.AddMetadata("authorization", "Bearer " + s->token);
  if (!s->client_name.empty()) ctx.AddMetadata("x-landcoupler-client", s->client_name);
  if (with_deadline && s->timeout > 0)
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>(s->timeout * 1e6)));
}

int status_error(lc_session *s, const grpc::Status &st, const grpc::ClientContext &ctx) {
  s->code = static_cast<int>(st.error_code());
  s->message = st.error_message();
  s->field.clear();
  s->rule.clear();
  s->request_id.clear();
  for (const auto &kv : ctx.GetServerTrailingMetadata()) {
    std::string key(kv.first.data(), kv.first.size());
    std::string value(kv.second.data(), kv.second.size());
    if (key == "landcoupler-field") s->field = value;
    else if (key == "landcoupler-rule") s->rule = value;
    else if (key == "x-request-id") s->request_id = value;
  }
  return s->code;
}

void backoff_wait(lc_session *s, int attempt) {
  std::uniform_real_distribution<double> u(0.5, 1.5);
  double delay = s->backoff * std::pow(2.0, attempt) * u(s->rng);
  std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(delay * 1e6)));
  // then give the channel a bounded chance to reconnect, so the resend is not failed fast by a
  // channel still in TRANSIENT_FAILURE (grpc++ 1.51 stays there for seconds after a dropped
  // connection; measured in clients/test, where fail-fast resends all failed)
  s->channel->GetState(true);
  s->channel->WaitForConnected(
      std::chrono::system_clock::now() +
      std::chrono::microseconds(static_cast<int64_t>((2 * delay + 0.1) * 1e6)));
}

void set_field(pb::Field *f, const std::string &name, const std::string &units, pb::DType dtype,
               const void *data, int64_t n, size_t itemsize) {
  f->set_name(name);
  f->set_units(units);
  f->set_dtype(dtype);
  f->add_shape(static_cast<uint64_t>(n < 0 ? 0 : n));
  // lat/lon at open (steps are encoded by wire.cc without copying): little-endian as on the host
  // (this library is built for little-endian hosts only, see CMake)
  f->set_data(data, n > 0 ? static_cast<size_t>(n) * itemsize : 0);
}

void took_open(lc_session *s, const pb::OpenSessionReply &rep) {
  s->open = true;
  s->closed = false;
  s->id = rep.session_id();
  s->next_index = rep.next_index();
  s->cells = rep.cells();
  s->start = rep.start_rfc3339();
  s->backend = rep.backend();
  s->outputs.assign(rep.outputs().begin(), rep.outputs().end());
}

namespace {

int fetch_units(lc_session *s) {
  if (s->have_units) return LC_OK;
  pb::DescribeRequest req;
  pb::DescribeReply rep;
  int rc = call(s, &pb::LandCoupler::Stub::Describe, req, &rep, true);
  if (rc != LC_OK) return rc;
  for (const auto &v : rep.variables()) s->units[v.name()] = v.units();
  s->have_units = true;
  return LC_OK;
}

template <class In, class Out>
int step_impl(lc_session *s, int64_t index, const char *forcing_names, const In *forcing,
              int64_t n, const char *output_names, Out *outputs, pb::DType dtype) {
  if (!s) return LC_CLIENT_ERROR;
  clear_error(s);
  if (!s->open) return client_error(s, "session", "open", "the session is not open");
  std::vector<std::string> names = split_names(forcing_names);
  if (!names.empty() && (!forcing || n < 0))
    return client_error(s, "forcing", "required", "forcing array is NULL or n < 0");
  std::vector<std::string> want =
      output_names && *output_names ? split_names(output_names) : s->outputs;
  if (!want.empty() && !outputs)
    return client_error(s, "outputs", "required", "outputs array is NULL");
  int rc = fetch_units(s);
  if (rc != LC_OK) return rc;
  // The request references the caller's arrays (wire.cc); `guard`, declared first, outlives
  // every buffer and waits until grpc has let go of them.
  SliceGuard guard;
  std::vector<WireField> wire;
  for (size_t f = 0; f < names.size(); ++f) {
    auto it = s->units.find(names[f]);
    wire.push_back({names[f], it == s->units.end() ? "" : it->second, dtype,
                    forcing + static_cast<int64_t>(f) * n,
                    static_cast<size_t>(n) * sizeof(In), static_cast<uint64_t>(n)});
  }
  const bool split = s->use_stream && names.size() > 1 && n > 0 &&
                     static_cast<int64_t>(names.size()) * n * static_cast<int64_t>(sizeof(In)) >=
                         s->split_bytes;
  Reply reply;
  std::vector<grpc::ByteBuffer> frames;
  auto send = [&] {  // encoded with the current session id (a recovery may change it)
    frames = encode_step(s->id, index, wire, s->use_stream, split, &guard);
    return s->use_stream ? stream_step(s, index, frames, &reply)
                         : unary_step(s, frames[0], &reply);
  };
  rc = send();
  if (rc == LC_NOT_FOUND && s->field == "session_id" && recovery_armed(s)) {
    rc = recover(s, index);  // a restarted server: rebuild the session (recover.cc)
    if (rc == LC_OK) rc = send();
  }
  frames.clear();
  if (rc != LC_OK) return rc;
  // the server has the step now (whatever the checks of the outputs below say): keep it
  if (index == s->next_index) keep_step(s, index, wire);
  for (size_t o = 0; o < want.size(); ++o) {
    const FieldRef *hit = nullptr;
    for (const auto &f : reply.fields)
      if (f.name == want[o]) hit = &f;
    if (!hit) return client_error(s, want[o], "unknown_output", "not among the reply's fields");
    if (hit->dtype != pb::DTYPE_FLOAT64 || !hit->raw)
      return client_error(s, want[o], "dtype", "reply field is not raw float64");
    if (hit->len != static_cast<size_t>(s->cells) * sizeof(double))
      return client_error(s, want[o], "size", "reply field does not hold one value per cell");
    reply.copy_output(*hit, outputs + static_cast<int64_t>(o) * s->cells, sizeof(Out) != 8);
  }
  s->last_time = reply.time;
  if (index + 1 > s->next_index) s->next_index = index + 1;
  return LC_OK;
}

}  // namespace

int unary_step(lc_session *s, const grpc::ByteBuffer &request, Reply *reply) {
  return call_with(
      s,
      [&](grpc::ClientContext *ctx) {
        grpc::ByteBuffer in;
        grpc::Status st = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer,
                                                            grpc::ByteBuffer, grpc::ByteBuffer>(
            s->channel.get(), *s->step_method, ctx, request, &in);
        *reply = Reply();
        if (st.ok() && reply->add(in, false) != 1)
          return grpc::Status(grpc::StatusCode::INTERNAL, "Step: undecodable reply");
        return st;
      },
      true);
}

}  // namespace lc

using namespace lc;

extern "C" {

lc_session *lc_session_new(const char *target, const char *token) {
  try {
    auto *s = new lc_session();
    s->target = str(target);
    s->token = str(token);
    return s;
  } catch (...) {
    return nullptr;
  }
}

void lc_set_timeout(lc_session *s, double seconds) { if (s) s->timeout = seconds; }
void lc_set_retries(lc_session *s, int retries, double backoff) {
  if (s) { s->retries = retries < 0 ? 0 : retries; s->backoff = backoff < 0 ? 0 : backoff; }
}
void lc_set_client_name(lc_session *s, const char *name) { if (s) s->client_name = str(name); }

int lc_set_stream(lc_session *s, int on, int64_t split_bytes) {
  if (!s) return LC_CLIENT_ERROR;
  clear_error(s);
  if (split_bytes < 0) return client_error(s, "split_bytes", "valid_range", "must be >= 0");
  if (!on) end_stream(s, false);
  s->use_stream = on != 0;
  s->split_bytes = split_bytes;
  return LC_OK;
}

int64_t lc_retry_count(const lc_session *s) { return s ? s->retried : 0; }
int64_t lc_recover_count(const lc_session *s) { return s ? s->rec.count : 0; }
int64_t lc_cells(const lc_session *s) { return s ? s->cells : 0; }
int64_t lc_next_index(const lc_session *s) { return s ? s->next_index : 0; }
int lc_output_count(const lc_session *s) { return s ? static_cast<int>(s->outputs.size()) : 0; }
const char *lc_output_name(const lc_session *s, int i) {
  if (!s || i < 0 || i >= static_cast<int>(s->outputs.size())) return nullptr;
  return s->outputs[i].c_str();
}
const char *lc_session_id(const lc_session *s) { return s ? s->id.c_str() : ""; }
const char *lc_last_time(const lc_session *s) { return s ? s->last_time.c_str() : ""; }

int lc_step(lc_session *s, int64_t index, const char *forcing_names, const double *forcing,
            int64_t n, const char *output_names, double *outputs) {
  try {
    return step_impl(s, index, forcing_names, forcing, n, output_names, outputs, pb::DTYPE_FLOAT64);
  } catch (const std::exception &e) {
    return client_error(s, "step", "client", e.what());
  }
}

int lc_step_f32(lc_session *s, int64_t index, const char *forcing_names, const float *forcing,
                int64_t n, const char *output_names, float *outputs) {
  try {
    return step_impl(s, index, forcing_names, forcing, n, output_names, outputs, pb::DTYPE_FLOAT32);
  } catch (const std::exception &e) {
    return client_error(s, "step", "client", e.what());
  }
}

int lc_checkpoint(lc_session *s, const char *url, char *url_out, size_t url_out_len) {
  if (!s) return LC_CLIENT_ERROR;
  try {
    clear_error(s);
    if (!s->open) return client_error(s, "session", "open", "the session is not open");
    pb::CheckpointRequest req;
    req.set_session_id(s->id);
    req.set_url(str(url));
    pb::CheckpointReply rep;
    int rc = call(s, &pb::LandCoupler::Stub::Checkpoint, req, &rep, true);
    if (rc == LC_OK && (!url || !*url)) checkpoint_written(s);  // the default URL is current
    if (rc == LC_OK && url_out && url_out_len > 0) {
      std::strncpy(url_out, rep.url().c_str(), url_out_len - 1);
      url_out[url_out_len - 1] = '\0';
    }
    return rc;
  } catch (const std::exception &e) {
    return client_error(s, "checkpoint", "client", e.what());
  }
}

int lc_close(lc_session *s) {
  if (!s) return LC_CLIENT_ERROR;
  try {
    clear_error(s);
    if (!s->open || s->closed) return LC_OK;
    end_stream(s, false);
    pb::CloseSessionRequest req;
    req.set_session_id(s->id);
    pb::CloseSessionReply rep;
    int rc = call(s, &pb::LandCoupler::Stub::CloseSession, req, &rep, false);
    if (rc == LC_OK) s->closed = true;
    return rc;
  } catch (const std::exception &e) {
    return client_error(s, "close", "client", e.what());
  }
}

void lc_session_free(lc_session *s) {
  if (!s) return;
  try {
    end_stream(s, true);
  } catch (...) {
  }
  delete s;
}

int lc_error_code(const lc_session *s) { return s ? s->code : LC_CLIENT_ERROR; }
const char *lc_error_field(const lc_session *s) { return s ? s->field.c_str() : ""; }
const char *lc_error_rule(const lc_session *s) { return s ? s->rule.c_str() : ""; }
const char *lc_error_message(const lc_session *s) { return s ? s->message.c_str() : "no session"; }
const char *lc_error_request_id(const lc_session *s) { return s ? s->request_id.c_str() : ""; }
const char *lc_version(void) { return "0.2.0"; }

}  // extern "C"
