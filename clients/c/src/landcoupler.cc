// liblandcoupler: the C API of landcoupler.h over grpc++ (landcoupler.v1). Never throws across
// the C boundary; every failure is an int status plus field/rule/message on the session.
#include "landcoupler.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "landcoupler/v1/landcoupler.grpc.pb.h"

namespace pb = landcoupler::v1;

struct lc_session {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::LandCoupler::Stub> stub;
  std::string token, client_name;
  double timeout = 300.0;
  int retries = 5;
  double backoff = 0.05;
  int64_t retried = 0;
  std::mt19937_64 rng{std::random_device{}()};
  // session
  bool open = false, closed = false;
  std::string id, start, backend, last_time;
  int64_t next_index = 0, cells = 0;
  std::vector<std::string> outputs;
  std::map<std::string, std::string> units;
  bool have_units = false;
  // recovery after a server restart (see recover_step): the open request, the periodic
  // checkpoint settings, and the steps computed since the last checkpoint at the default URL
  pb::OpenSessionRequest open_req;
  std::string ckpt_prefix;
  int32_t ckpt_every = 0;
  int64_t ckpt_index = -1;  // next_index of the last default-URL checkpoint, -1 = none yet
  std::deque<pb::StepRequest> since;
  int64_t recovered = 0;
  // last error
  int code = LC_OK;
  std::string field, rule, message, request_id;
};

namespace {

const int64_t kMaxMessage = 256LL << 20;

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

void prepare(lc_session *s, grpc::ClientContext &ctx) {
  if (!s->token.empty()) ctx.AddMetadata("authorization", "Bearer " + s->token);
  if (!s->client_name.empty()) ctx.AddMetadata("x-landcoupler-client", s->client_name);
  if (s->timeout > 0)
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

// Unary call with the session's metadata and deadline; UNAVAILABLE retried when `retry`.
template <class Req, class Rep, class Fn>
int call(lc_session *s, Fn fn, const Req &req, Rep *rep, bool retry) {
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
    std::uniform_real_distribution<double> u(0.5, 1.5);
    double delay = s->backoff * std::pow(2.0, attempt) * u(s->rng);
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(delay * 1e6)));
    // then give the channel a bounded chance to reconnect, so the resend is not failed fast
    // by a channel still in TRANSIENT_FAILURE (grpc++ 1.51 stays there for seconds after a
    // dropped connection; measured in clients/test, where fail-fast resends all failed)
    s->channel->GetState(true);
    s->channel->WaitForConnected(
        std::chrono::system_clock::now() +
        std::chrono::microseconds(static_cast<int64_t>((2 * delay + 0.1) * 1e6)));
  }
}

void set_field(pb::Field *f, const std::string &name, const std::string &units, pb::DType dtype,
               const void *data, int64_t n, size_t itemsize) {
  f->set_name(name);
  f->set_units(units);
  f->set_dtype(dtype);
  f->add_shape(static_cast<uint64_t>(n < 0 ? 0 : n));
  // raw little-endian bytes (this library is built for little-endian hosts only, see CMake)
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

// ---- recovery after a server restart ----------------------------------------------------
// A server process that dies loses its sessions (they live in memory); what survives is the
// periodic checkpoint the server writes to <checkpoint_url>/<session_id>.ckpt every
// checkpoint_every steps (with the last reply, before answering that step). A session opened
// with both is "armed": the library keeps the steps computed since that checkpoint (at most
// checkpoint_every requests) and, when a step is refused with NOT_FOUND session_id (the
// restarted server does not know it), resumes the session from the checkpoint (same id),
// resends the kept steps from the checkpoint's next_index on (their replies are discarded: the
// model is deterministic, so they are the replies already delivered), then sends the step
// again. Before the first periodic checkpoint it re-opens with the original request instead.
bool recovery_armed(const lc_session *s) {
  return s->open && !s->closed && !s->ckpt_prefix.empty() && s->ckpt_every > 0;
}

void remember_step(lc_session *s, pb::StepRequest &&req) {
  if (!recovery_armed(s)) return;
  int64_t next = req.index() + 1;
  s->since.push_back(std::move(req));
  if (next % s->ckpt_every == 0) {  // the server wrote the checkpoint before replying
    s->ckpt_index = next;
    s->since.clear();
  }
}

int recover_step(lc_session *s, pb::StepRequest &req, pb::StepReply *rep) {
  const int64_t index = req.index();
  pb::OpenSessionRequest oreq;
  if (s->ckpt_index >= 0) {
    std::string prefix = s->ckpt_prefix;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    oreq.set_resume_from(prefix + "/" + s->id + ".ckpt");
  } else {
    oreq = s->open_req;
  }
  pb::OpenSessionReply orep;
  int rc = call(s, &pb::LandCoupler::Stub::OpenSession, oreq, &orep, true);
  if (rc != LC_OK) return rc;
  const int64_t client_next = s->next_index;
  took_open(s, orep);
  ++s->recovered;
  int64_t have = orep.next_index();
  for (int64_t j = have; j < index; ++j) {
    pb::StepRequest *kept = nullptr;
    for (auto &r : s->since)
      if (r.index() == j) kept = &r;
    if (!kept) {
      s->next_index = have;
      return client_error(s, "index", "recover",
                          "the restarted server resumed at step " + std::to_string(have) +
                              " and step " + std::to_string(j) + " is not kept to resend");
    }
    kept->set_session_id(s->id);
    pb::StepReply discard;
    rc = call(s, &pb::LandCoupler::Stub::Step, *kept, &discard, true);
    if (rc != LC_OK) return rc;
    have = j + 1;
  }
  if (have > index + 1)
    return client_error(s, "index", "recover",
                        "the restarted server resumed at step " + std::to_string(have) +
                            ", past step " + std::to_string(index));
  s->next_index = client_next;
  req.set_session_id(s->id);
  return call(s, &pb::LandCoupler::Stub::Step, req, rep, true);
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
  pb::StepRequest req;
  req.set_session_id(s->id);
  req.set_index(index);
  for (size_t f = 0; f < names.size(); ++f) {
    auto it = s->units.find(names[f]);
    set_field(req.add_fields(), names[f], it == s->units.end() ? "" : it->second, dtype,
              forcing + static_cast<int64_t>(f) * n, n, sizeof(In));
  }
  pb::StepReply rep;
  rc = call(s, &pb::LandCoupler::Stub::Step, req, &rep, true);
  if (rc == LC_NOT_FOUND && s->field == "session_id" && recovery_armed(s))
    rc = recover_step(s, req, &rep);
  if (rc != LC_OK) return rc;
  for (size_t o = 0; o < want.size(); ++o) {
    const pb::Field *hit = nullptr;
    for (const auto &f : rep.fields())
      if (f.name() == want[o]) hit = &f;
    if (!hit) return client_error(s, want[o], "unknown_output", "not among the reply's fields");
    if (hit->dtype() != pb::DTYPE_FLOAT64 || (hit->codec().id() != "" && hit->codec().id() != "none"))
      return client_error(s, want[o], "dtype", "reply field is not raw float64");
    if (hit->data().size() != static_cast<size_t>(s->cells) * sizeof(double))
      return client_error(s, want[o], "size", "reply field does not hold one value per cell");
    Out *dst = outputs + static_cast<int64_t>(o) * s->cells;
    if (sizeof(Out) == sizeof(double)) {
      std::memcpy(dst, hit->data().data(), hit->data().size());
    } else {
      const char *src = hit->data().data();
      for (int64_t c = 0; c < s->cells; ++c) {
        double v;
        std::memcpy(&v, src + c * sizeof(double), sizeof v);
        dst[c] = static_cast<Out>(v);
      }
    }
  }
  s->last_time = rep.time_rfc3339();
  if (index == s->next_index) remember_step(s, std::move(req));
  if (index + 1 > s->next_index) s->next_index = index + 1;
  return LC_OK;
}

}  // namespace

extern "C" {

lc_session *lc_session_new(const char *target, const char *token) {
  try {
    auto *s = new lc_session();
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(static_cast<int>(kMaxMessage));
    args.SetMaxReceiveMessageSize(static_cast<int>(kMaxMessage));
    // Reconnect soon after a dropped connection (gRPC's default first backoff is 1 s). Alone
    // this did not make resends succeed (measured); call() also waits for the channel.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    s->channel = grpc::CreateCustomChannel(str(target), grpc::InsecureChannelCredentials(), args);
    s->stub = pb::LandCoupler::NewStub(s->channel);
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

int lc_open(lc_session *s, int64_t cells, const double *lat, const double *lon, const char *start,
            int64_t timestep, const char *backend, const char *land_cover, const char *outputs,
            const char *run_id, int32_t rank, const char *record_url, const char *checkpoint_url,
            int32_t checkpoint_every) {
  if (!s) return LC_CLIENT_ERROR;
  try {
    clear_error(s);
    if (cells < 0 || (cells > 0 && (!lat || !lon)))
      return client_error(s, "lat", "required", "lat/lon are NULL or cells < 0");
    pb::OpenSessionRequest req;
    set_field(req.mutable_lat(), "lat", "degrees_north", pb::DTYPE_FLOAT64, lat, cells, 8);
    set_field(req.mutable_lon(), "lon", "degrees_east", pb::DTYPE_FLOAT64, lon, cells, 8);
    req.set_start_rfc3339(str(start));
    req.set_timestep(timestep);
    for (const auto &o : split_names(outputs)) req.add_outputs(o);
    req.set_backend(backend && *backend ? backend : "reference");
    req.set_land_cover_name(land_cover && *land_cover ? land_cover : "grass");
    req.set_run_id(str(run_id));
    req.set_rank(rank);
    req.set_record_url(str(record_url));
    req.set_checkpoint_url(str(checkpoint_url));
    req.set_checkpoint_every(checkpoint_every);
    pb::OpenSessionReply rep;
    int rc = call(s, &pb::LandCoupler::Stub::OpenSession, req, &rep, false);
    if (rc == LC_OK) {
      took_open(s, rep);
      s->ckpt_prefix = str(checkpoint_url);
      s->ckpt_every = checkpoint_every;
      s->ckpt_index = -1;
      s->since.clear();
      s->open_req = std::move(req);
    }
    return rc;
  } catch (const std::exception &e) {
    return client_error(s, "session", "client", e.what());
  }
}

int lc_resume(lc_session *s, const char *url) {
  if (!s) return LC_CLIENT_ERROR;
  try {
    clear_error(s);
    pb::OpenSessionRequest req;
    req.set_resume_from(str(url));
    pb::OpenSessionReply rep;
    int rc = call(s, &pb::LandCoupler::Stub::OpenSession, req, &rep, false);
    if (rc == LC_OK) {
      took_open(s, rep);
      s->ckpt_prefix.clear();  // not armed: the checkpoint settings are not in the reply
      s->since.clear();
    }
    return rc;
  } catch (const std::exception &e) {
    return client_error(s, "resume_from", "client", e.what());
  }
}

int64_t lc_retry_count(const lc_session *s) { return s ? s->retried : 0; }
int64_t lc_recover_count(const lc_session *s) { return s ? s->recovered : 0; }
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
    if (rc == LC_OK && (!url || !*url) && recovery_armed(s)) {  // the default URL is current
      s->ckpt_index = s->next_index;
      s->since.clear();
    }
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

void lc_session_free(lc_session *s) { delete s; }

int lc_error_code(const lc_session *s) { return s ? s->code : LC_CLIENT_ERROR; }
const char *lc_error_field(const lc_session *s) { return s ? s->field.c_str() : ""; }
const char *lc_error_rule(const lc_session *s) { return s ? s->rule.c_str() : ""; }
const char *lc_error_message(const lc_session *s) { return s ? s->message.c_str() : "no session"; }
const char *lc_error_request_id(const lc_session *s) { return s ? s->request_id.c_str() : ""; }
const char *lc_version(void) { return "0.1.0"; }

}  // extern "C"
