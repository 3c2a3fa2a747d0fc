// The hand-encoded step requests of wire.cc are byte-identical to protobuf's own serialization of
// the same StepRequest / ExchangeRequest messages (unary, stream whole, stream split; float64
// and float32; index 0 and large; empty units; zero-length fields), and their data slices point
// at the caller's arrays; reply.cc reads protobuf-serialized StepReply / ExchangeReply messages
// cut into slices at every size from 1 to 64 bytes (values straddling slices) to the same
// float64 / float32 arrays protobuf itself decodes. Run by clients/test/features.py; exits
// non-zero on any difference.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "internal.h"

namespace {

std::string flat(const grpc::ByteBuffer &bb, bool *references, const void *array) {
  std::vector<grpc::Slice> slices;
  (void)bb.Dump(&slices);
  std::string out;
  for (const auto &s : slices) {
    if (s.begin() == static_cast<const uint8_t *>(array)) *references = true;
    out.append(reinterpret_cast<const char *>(s.begin()), s.size());
  }
  return out;
}

pb::Field *fill(pb::Field *f, const lc::WireField &w) {
  f->set_name(w.name);
  f->set_units(w.units);
  f->set_dtype(static_cast<pb::DType>(w.dtype));
  f->add_shape(w.count);
  f->set_data(w.data, w.bytes);
  return f;
}

// A message's bytes as a ByteBuffer of `cut`-byte slices.
grpc::ByteBuffer sliced(const std::string &bytes, size_t cut) {
  std::vector<grpc::Slice> slices;
  for (size_t i = 0; i < bytes.size(); i += cut)
    slices.emplace_back(bytes.substr(i, std::min(cut, bytes.size() - i)));
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// StepReply (unary) and the same reply as an ExchangeReply header + trailing field frames.
int reply_cases() {
  const int n = 37;
  std::vector<double> hfls(n), ts(n);
  for (int i = 0; i < n; ++i) hfls[i] = 1.0 / (i + 3), ts[i] = 280.0 + i * 0.37;
  pb::StepReply rep;
  rep.set_session_id("abc");
  rep.set_index(41);
  rep.set_time_rfc3339("2001-01-02T17:00:00Z");
  for (auto [name, v] : {std::pair<const char *, std::vector<double> *>{"hfls", &hfls}, {"ts", &ts}}) {
    pb::Field *f = rep.add_fields();
    f->set_name(name);
    f->set_units("W m-2");
    f->set_dtype(pb::DTYPE_FLOAT64);
    f->add_shape(n);
    f->set_data(v->data(), n * sizeof(double));
    f->mutable_codec()->set_id("none");
  }
  int failures = 0;
  for (size_t cut = 1; cut <= 64; ++cut) {
    for (int mode = 0; mode < 2; ++mode) {
      lc::Reply r;
      bool ok = true;
      if (mode == 0) {
        ok = r.add(sliced(rep.SerializeAsString(), cut), false) == 1;
      } else {
        pb::ExchangeReply head;
        head.mutable_step()->set_time_rfc3339(rep.time_rfc3339());
        head.mutable_step()->set_trailing_fields(2);
        ok = r.add(sliced(head.SerializeAsString(), cut), true) == 1 && r.trailing == 2;
        for (const auto &f : rep.fields()) {
          pb::ExchangeReply frame;
          *frame.mutable_field() = f;
          ok = ok && r.add(sliced(frame.SerializeAsString(), cut), true) == 2;
        }
      }
      ok = ok && r.fields.size() == 2 && r.time == rep.time_rfc3339();
      for (size_t k = 0; ok && k < 2; ++k) {
        const auto &want = k == 0 ? hfls : ts;
        std::vector<double> d(n);
        std::vector<float> f(n);
        r.copy_output(r.fields[k], d.data(), false);
        r.copy_output(r.fields[k], f.data(), true);
        ok = r.fields[k].name == rep.fields(k).name() && r.fields[k].raw &&
             r.fields[k].dtype == pb::DTYPE_FLOAT64 && d == want;
        for (int i = 0; ok && i < n; ++i) ok = f[i] == static_cast<float>(want[i]);
      }
      if (!ok) {
        std::printf("FAIL: reply (%s) cut into %zu-byte slices\n", mode ? "stream" : "unary", cut);
        ++failures;
      }
    }
  }
  std::printf("128 reply cases, %d failed: replies read from sliced buffers == protobuf\n",
              failures);
  return failures;
}

}  // namespace

int main() {
  int failures = 0, cases = 0;
  std::vector<double> a(1000), b(1000);
  std::vector<float> c(300);
  for (size_t i = 0; i < a.size(); ++i) a[i] = 280.0 + 0.001 * i, b[i] = 1e-3 * i;
  for (size_t i = 0; i < c.size(); ++i) c[i] = 1.5f * i;
  const std::vector<std::vector<lc::WireField>> sets = {
      {{"tas", "K", pb::DTYPE_FLOAT64, a.data(), 8000, 1000},
       {"huss", "1", pb::DTYPE_FLOAT64, b.data(), 8000, 1000}},
      {{"tas", "", pb::DTYPE_FLOAT32, c.data(), 1200, 300}},
      {{"pr", "kg m-2 s-1", pb::DTYPE_FLOAT64, a.data(), 0, 0},
       {"rsds", "W m-2", pb::DTYPE_FLOAT64, a.data(), 8000, 1000}},
  };
  for (const auto &fields : sets) {
    for (int64_t index : {int64_t{0}, int64_t{1}, int64_t{123456789012}}) {
      for (int mode = 0; mode < 3; ++mode) {  // unary, stream whole, stream split
        const bool stream = mode > 0, split = mode == 2;
        lc::SliceGuard guard;
        std::vector<std::string> want;
        pb::ExchangeRequest head;
        pb::StepRequest &req = *head.mutable_step();
        req.set_session_id("0123456789abcdef");
        req.set_index(index);
        if (split) req.set_trailing_fields(static_cast<uint32_t>(fields.size()));
        for (const auto &w : fields)
          if (!split) fill(req.add_fields(), w);
        want.push_back(stream ? head.SerializeAsString() : req.SerializeAsString());
        if (split)
          for (const auto &w : fields) {
            pb::ExchangeRequest frame;
            fill(frame.mutable_field(), w);
            want.push_back(frame.SerializeAsString());
          }
        bool references = false, same;
        {
          std::vector<grpc::ByteBuffer> got =
              lc::encode_step("0123456789abcdef", index, fields, stream, split, &guard);
          same = got.size() == want.size();
          for (size_t k = 0; same && k < got.size(); ++k)
            same = flat(got[k], &references, fields.back().data) == want[k];
        }
        ++cases;
        const int left = guard.outstanding.load();  // buffers gone: no reference may remain
        if (!same || !references || left != 0) {
          std::printf("FAIL: %zu field(s), index %lld, mode %d: %s\n", fields.size(),
                      static_cast<long long>(index), mode,
                      !same ? "bytes differ from protobuf"
                            : !references ? "array copied, not referenced"
                                          : "slices still referenced after the buffers are gone");
          ++failures;
        }
      }
    }
  }
  std::printf("%d cases, %d failed: hand-encoded step requests %s protobuf's serialization\n",
              cases, failures, failures ? "differ from" : "==");
  failures += reply_cases();
  return failures ? 1 : 0;
}
