// The transport floor for `make bench-clients` (clients/bench/bench_clients.py): the same
// landcoupler.v1 Step messages as liblandcoupler sends and the service answers, over grpc++,
// with no model behind them.
//   bench_echo serve PORT NOUT        Step answers, at once, a StepReply of NOUT float64 fields
//                                     of the request's cell count (built once per size);
//                                     Describe, OpenSession, CloseSession answer just enough
//                                     for liblandcoupler and the Python client to run on it
//   bench_echo client TARGET CELLS f32|f64 STEPS
//                                     sends STEPS StepRequests of the 7 forcing fields
//                                     (CELLS values each, as liblandcoupler builds them) and
//                                     prints one JSON line: per-step seconds, request/reply bytes
//   bench_echo dump DIR CELLS f32|f64 NOUT
//                                     writes DIR/request.bin and DIR/reply.bin, the serialized
//                                     messages, for the Python raw-bytes echo (py_echo.py)
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "landcoupler/v1/landcoupler.grpc.pb.h"

namespace pb = landcoupler::v1;

namespace {

const char *kForcing[7] = {"tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds"};
const char *kUnits[7] = {"K", "1", "Pa", "m s-1", "kg m-2 s-1", "W m-2", "W m-2"};
const char *kOutputs[8] = {"hfls", "hfss", "ts", "rlus", "rsus", "hfdsl", "rns", "evspsbl"};
const int kMax = 256 << 20;

pb::StepRequest make_request(int64_t cells, bool f32) {
  pb::StepRequest req;
  req.set_session_id("0123456789abcdef0123456789abcdef");
  size_t itemsize = f32 ? 4 : 8;
  std::string data(static_cast<size_t>(cells) * itemsize, '\x01');
  for (int f = 0; f < 7; ++f) {
    pb::Field *field = req.add_fields();
    field->set_name(kForcing[f]);
    field->set_units(kUnits[f]);
    field->set_dtype(f32 ? pb::DTYPE_FLOAT32 : pb::DTYPE_FLOAT64);
    field->add_shape(static_cast<uint64_t>(cells));
    field->set_data(data);
  }
  return req;
}

pb::StepReply make_reply(int64_t cells, int nout) {
  pb::StepReply rep;
  rep.set_session_id("0123456789abcdef0123456789abcdef");
  rep.set_time_rfc3339("2001-01-01T05:00:00Z");
  std::string data(static_cast<size_t>(cells) * 8, '\x02');
  for (int o = 0; o < nout && o < 8; ++o) {
    pb::Field *field = rep.add_fields();
    field->set_name(kOutputs[o]);
    field->set_units("W m-2");
    field->set_dtype(pb::DTYPE_FLOAT64);
    field->add_shape(static_cast<uint64_t>(cells));
    field->set_data(data);
  }
  return rep;
}

class Echo final : public pb::LandCoupler::Service {
 public:
  explicit Echo(int nout) : nout_(nout) {}
  // enough of the service for liblandcoupler and the Python client to open, step and close
  grpc::Status Describe(grpc::ServerContext *, const pb::DescribeRequest *,
                        pb::DescribeReply *rep) override {
    rep->set_protocol("landcoupler.v1");
    for (int f = 0; f < 7; ++f) {
      pb::VariableInfo *v = rep->add_variables();
      v->set_name(kForcing[f]);
      v->set_units(kUnits[f]);
      v->set_direction("to_land");
    }
    return grpc::Status::OK;
  }
  grpc::Status OpenSession(grpc::ServerContext *, const pb::OpenSessionRequest *req,
                           pb::OpenSessionReply *rep) override {
    rep->set_session_id("0123456789abcdef0123456789abcdef");
    rep->set_cells(req->lat().shape_size() ? static_cast<int64_t>(req->lat().shape(0)) : 0);
    for (const auto &o : req->outputs()) rep->add_outputs(o);
    rep->set_members(1);
    rep->set_start_rfc3339(req->start_rfc3339());
    rep->set_timestep(req->timestep());
    rep->set_backend("echo");
    return grpc::Status::OK;
  }
  grpc::Status CloseSession(grpc::ServerContext *, const pb::CloseSessionRequest *,
                            pb::CloseSessionReply *) override {
    return grpc::Status::OK;
  }
  grpc::Status Step(grpc::ServerContext *, const pb::StepRequest *req,
                    pb::StepReply *rep) override {
    int64_t cells = req->fields_size() ? static_cast<int64_t>(req->fields(0).shape(0)) : 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = canned_.find(cells);
      if (it == canned_.end()) it = canned_.emplace(cells, make_reply(cells, nout_)).first;
      *rep = it->second;  // one copy into the reply, as any server fills its reply
    }
    rep->set_index(req->index());
    return grpc::Status::OK;
  }

 private:
  int nout_;
  std::mutex mu_;
  std::map<int64_t, pb::StepReply> canned_;
};

int serve(int port, int nout) {
  Echo service(nout);
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &bound);
  builder.SetMaxReceiveMessageSize(kMax);
  builder.SetMaxSendMessageSize(kMax);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return 1;
  std::cout << "listening on 127.0.0.1:" << bound << std::endl;
  server->Wait();
  return 0;
}

int client(const std::string &target, int64_t cells, bool f32, int steps) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(kMax);
  args.SetMaxReceiveMessageSize(kMax);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  auto stub = pb::LandCoupler::NewStub(channel);
  pb::StepRequest req = make_request(cells, f32);
  std::vector<double> secs;
  size_t reply_bytes = 0;
  for (int k = 0; k < steps; ++k) {
    req.set_index(k);
    grpc::ClientContext ctx;
    pb::StepReply rep;
    auto t0 = std::chrono::steady_clock::now();
    grpc::Status st = stub->Step(&ctx, req, &rep);
    auto t1 = std::chrono::steady_clock::now();
    if (!st.ok()) {
      std::cerr << "Step: " << st.error_code() << " " << st.error_message() << std::endl;
      return 1;
    }
    reply_bytes = rep.ByteSizeLong();
    secs.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::printf("{\"seconds\": [");
  for (size_t i = 0; i < secs.size(); ++i) std::printf("%s%.6f", i ? ", " : "", secs[i]);
  std::printf("], \"request_bytes\": %zu, \"reply_bytes\": %zu}\n", req.ByteSizeLong(),
              reply_bytes);
  return 0;
}

int dump(const std::string &dir, int64_t cells, bool f32, int nout) {
  std::ofstream(dir + "/request.bin", std::ios::binary) << make_request(cells, f32).SerializeAsString();
  std::ofstream(dir + "/reply.bin", std::ios::binary) << make_reply(cells, nout).SerializeAsString();
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve" && argc == 4) return serve(std::atoi(argv[2]), std::atoi(argv[3]));
  if (mode == "client" && argc == 6)
    return client(argv[2], std::atoll(argv[3]), std::string(argv[4]) == "f32", std::atoi(argv[5]));
  if (mode == "dump" && argc == 6)
    return dump(argv[2], std::atoll(argv[3]), std::string(argv[4]) == "f32", std::atoi(argv[5]));
  std::cerr << "usage: bench_echo serve PORT NOUT | client TARGET CELLS f32|f64 STEPS | "
               "dump DIR CELLS f32|f64 NOUT\n";
  return 2;
}
