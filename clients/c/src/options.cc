// liblandcoupler: lc_options (the session settings builder), lc_open / lc_open_with /
// lc_resume, and the channel (plaintext or TLS, created at the first call).
#include <fstream>
#include <sstream>

#include "internal.h"

using namespace lc;

namespace {

const int kMaxMessage = 256 << 20;

// PEM text as given, or the contents of the file it names ("" = unset). false: unreadable.
bool pem(const std::string &arg, std::string *out) {
  out->clear();
  if (arg.empty() || arg.find("-----BEGIN") != std::string::npos) {
    *out = arg;
    return true;
  }
  std::ifstream f(arg, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

void set_codec(pb::Codec *c, const char *id, const char *config_json, uint32_t keepbits) {
  c->set_id(str(id));
  c->set_config_json(str(config_json));
  c->set_keepbits(keepbits);
}

// Open (or resume, `resumed`) with `req`; an opened session keeps `req` to re-open after a
// server restart when it is armed (recover.cc), a resumed one is never armed.
int open_request(lc_session *s, pb::OpenSessionRequest &&req, bool resumed) {
  pb::OpenSessionReply rep;
  int rc = call(s, &pb::LandCoupler::Stub::OpenSession, req, &rep, false);
  if (rc == LC_OK) {
    end_stream(s, true);  // a stream of a previous session on this handle
    took_open(s, rep);
    if (resumed) disarm_recovery(s);
    else arm_recovery(s, std::move(req));
  }
  return rc;
}

}  // namespace

namespace lc {

int ensure_channel(lc_session *s) {
  if (s->stub) return LC_OK;
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(kMaxMessage);
  args.SetMaxReceiveMessageSize(kMaxMessage);
  // Reconnect soon after a dropped connection (gRPC's default first backoff is 1 s). Alone
  // this did not make resends succeed (measured); backoff_wait also waits for the channel.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (s->tls) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = s->root_ca;
    o.pem_private_key = s->client_key;
    o.pem_cert_chain = s->client_cert;
    creds = grpc::SslCredentials(o);
    if (!s->server_name.empty()) args.SetSslTargetNameOverride(s->server_name);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  if (!creds) return client_error(s, "tls", "credentials", "grpc++ refused the TLS credentials");
  s->channel = grpc::CreateCustomChannel(s->target, creds, args);
  if (!s->channel) return client_error(s, "target", "channel", "cannot create a channel");
  s->stub = pb::LandCoupler::NewStub(s->channel);
  using grpc::internal::RpcMethod;
  s->step_method = std::make_unique<RpcMethod>("/landcoupler.v1.LandCoupler/Step",
                                               RpcMethod::NORMAL_RPC, s->channel);
  s->exchange_method = std::make_unique<RpcMethod>("/landcoupler.v1.LandCoupler/Exchange",
                                                   RpcMethod::BIDI_STREAMING, s->channel);
  return LC_OK;
}

}  // namespace lc

extern "C" {

int lc_set_tls(lc_session *s, const char *root_ca, const char *client_key,
               const char *client_cert, const char *server_name) {
  if (!s) return LC_CLIENT_ERROR;
  try {
    clear_error(s);
    if (s->stub) return client_error(s, "tls", "before_open", "set TLS before the first call");
    if ((client_key && *client_key) != (client_cert && *client_cert))
      return client_error(s, "tls.client_cert", "pair", "give client key and certificate or neither");
    if (!pem(str(root_ca), &s->root_ca))
      return client_error(s, "tls.root_ca", "readable", "cannot read " + str(root_ca));
    if (!pem(str(client_key), &s->client_key))
      return client_error(s, "tls.client_key", "readable", "cannot read " + str(client_key));
    if (!pem(str(client_cert), &s->client_cert))
      return client_error(s, "tls.client_cert", "readable", "cannot read " + str(client_cert));
    s->server_name = str(server_name);
    s->tls = true;
    return LC_OK;
  } catch (const std::exception &e) {
    return client_error(s, "tls", "client", e.what());
  }
}

lc_options *lc_options_new(void) {
  try {
    return new lc_options();
  } catch (...) {
    return nullptr;
  }
}

void lc_options_free(lc_options *o) { delete o; }

#define LC_GUARD(body)              \
  if (!o) return LC_CLIENT_ERROR;   \
  try {                             \
    body;                           \
    return LC_OK;                   \
  } catch (...) {                   \
    return LC_CLIENT_ERROR;         \
  }

int lc_options_set_backend(lc_options *o, const char *backend) {
  LC_GUARD(o->req.set_backend(str(backend)))
}

int lc_options_set_run(lc_options *o, const char *run_id, int32_t rank) {
  LC_GUARD(o->req.set_run_id(str(run_id)); o->req.set_rank(rank))
}

int lc_options_set_land_cover(lc_options *o, const char *name) {
  LC_GUARD(o->req.set_land_cover_name(str(name)); o->land_cover_set = name && *name)
}

int lc_options_set_land_cover_fractions(lc_options *o, int64_t cells, int32_t nclasses,
                                        const double *fractions, int class_major) {
  if (!o || cells < 0 || nclasses <= 0 || (cells > 0 && !fractions)) return LC_CLIENT_ERROR;
  try {
    pb::Field *f = o->req.mutable_land_cover_fractions();
    f->Clear();
    f->set_name("land_cover");
    f->set_units("1");
    f->set_dtype(pb::DTYPE_FLOAT64);
    f->add_shape(static_cast<uint64_t>(cells));
    f->add_shape(static_cast<uint64_t>(nclasses));
    const size_t n = static_cast<size_t>(cells) * static_cast<size_t>(nclasses);
    if (!class_major) {
      f->set_data(fractions, n * sizeof(double));
    } else {  // (cells, nclasses) row-major on the wire: transpose while copying
      std::string *data = f->mutable_data();
      data->resize(n * sizeof(double));
      double *dst = reinterpret_cast<double *>(&(*data)[0]);
      for (int64_t c = 0; c < cells; ++c)
        for (int32_t k = 0; k < nclasses; ++k) dst[c * nclasses + k] = fractions[k * cells + c];
    }
    o->land_cover_set = true;
    return LC_OK;
  } catch (...) {
    return LC_CLIENT_ERROR;
  }
}

int lc_options_set_members(lc_options *o, int32_t members, int output_spread) {
  LC_GUARD(o->req.set_members(members); o->req.set_output_spread(output_spread != 0))
}

int lc_options_set_checkpoint(lc_options *o, const char *url, int32_t every) {
  LC_GUARD(o->req.set_checkpoint_url(str(url)); o->req.set_checkpoint_every(every))
}

int lc_options_set_record(lc_options *o, const char *url) {
  LC_GUARD(o->req.set_record_url(str(url)))
}

int lc_options_set_record_options(lc_options *o, const char *codec_id, const char *config_json,
                                  uint64_t chunk_bytes, uint32_t shard_chunks, int lossy_forcing) {
  LC_GUARD({
    pb::RecordOptions *r = o->req.mutable_record_options();
    if (codec_id && *codec_id) set_codec(r->mutable_codec(), codec_id, config_json, 0);
    else r->clear_codec();
    r->set_chunk_bytes(chunk_bytes);
    r->set_shard_chunks(shard_chunks);
    r->set_lossy_forcing(lossy_forcing != 0);
  })
}

int lc_options_set_record_field(lc_options *o, const char *name, const char *codec_id,
                                const char *config_json, uint32_t keepbits) {
  if (!name || !*name) return LC_CLIENT_ERROR;
  LC_GUARD(set_codec(&(*o->req.mutable_record_options()->mutable_fields())[name], codec_id,
                     config_json, keepbits))
}

int lc_options_set_freeze_vegetation_year(lc_options *o, int32_t year) {
  LC_GUARD(o->req.set_freeze_vegetation_year(year))
}

int lc_options_set_heights(lc_options *o, double height_wind, double height_temperature) {
  LC_GUARD(o->req.set_height_wind(height_wind); o->req.set_height_temperature(height_temperature))
}

int lc_open_with(lc_session *s, int64_t cells, const double *lat, const double *lon,
                 const char *start, int64_t timestep, const char *outputs, const lc_options *o) {
  if (!s) return LC_CLIENT_ERROR;
  try {
    clear_error(s);
    if (cells < 0 || (cells > 0 && (!lat || !lon)))
      return client_error(s, "lat", "required", "lat/lon are NULL or cells < 0");
    pb::OpenSessionRequest req;
    if (o) req.CopyFrom(o->req);  // once per session (the fractions, if any, are copied here)
    set_field(req.mutable_lat(), "lat", "degrees_north", pb::DTYPE_FLOAT64, lat, cells, 8);
    set_field(req.mutable_lon(), "lon", "degrees_east", pb::DTYPE_FLOAT64, lon, cells, 8);
    req.set_start_rfc3339(str(start));
    req.set_timestep(timestep);
    req.clear_outputs();
    for (const auto &name : split_names(outputs)) req.add_outputs(name);
    if (req.backend().empty()) req.set_backend("reference");
    if (!(o && o->land_cover_set)) req.set_land_cover_name("grass");
    return open_request(s, std::move(req), false);
  } catch (const std::exception &e) {
    return client_error(s, "session", "client", e.what());
  }
}

int lc_open(lc_session *s, int64_t cells, const double *lat, const double *lon, const char *start,
            int64_t timestep, const char *backend, const char *land_cover, const char *outputs,
            const char *run_id, int32_t rank, const char *record_url, const char *checkpoint_url,
            int32_t checkpoint_every) {
  if (!s) return LC_CLIENT_ERROR;
  try {
    lc_options o;
    lc_options_set_backend(&o, backend);
    lc_options_set_land_cover(&o, land_cover);
    lc_options_set_run(&o, run_id, rank);
    lc_options_set_record(&o, record_url);
    lc_options_set_checkpoint(&o, checkpoint_url, checkpoint_every);
    return lc_open_with(s, cells, lat, lon, start, timestep, outputs, &o);
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
    return open_request(s, std::move(req), true);
  } catch (const std::exception &e) {
    return client_error(s, "resume_from", "client", e.what());
  }
}

}  // extern "C"
