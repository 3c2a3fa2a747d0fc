// The hand-encoded step requests of wire.cc are byte-identical to protobuf's own serialization of
// the same StepRequest / ExchangeRequest messages (unary, stream whole, stream split; float64
// and float32; index 0 and large; empty units; zero-length fields), and their data slices point
// at the caller's arrays. Run by clients/test/features.py; exits non-zero on any difference.
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
  return failures ? 1 : 0;
}
