// liblandcoupler: step requests encoded by hand as gRPC byte buffers whose data slices point at
// the caller's arrays (no copy of the array in this library or in protobuf). The encoding is the
// protobuf wire format of landcoupler.v1 StepRequest / ExchangeRequest / Field (field numbers in
// proto/landcoupler/v1/landcoupler.proto); only the few bytes before each array are written.
#include <chrono>
#include <thread>

#include "internal.h"

namespace lc {
namespace {

void varint(std::string &s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

void tag(std::string &s, uint32_t field, uint32_t wire_type) { varint(s, (field << 3) | wire_type); }

void string_field(std::string &s, uint32_t field, const std::string &v) {
  if (v.empty()) return;  // proto3 default: omitted
  tag(s, field, 2);
  varint(s, v.size());
  s += v;
}

// A Field message up to (and including) the length prefix of `data` (field 5).
std::string field_head(const WireField &f) {
  std::string h;
  string_field(h, 1, f.name);
  string_field(h, 2, f.units);
  tag(h, 3, 0);
  varint(h, static_cast<uint64_t>(f.dtype));
  std::string shape;
  varint(shape, f.count);
  tag(h, 4, 2);  // packed repeated uint64
  varint(h, shape.size());
  h += shape;
  if (f.bytes > 0) {  // empty bytes are omitted, as protobuf does
    tag(h, 5, 2);
    varint(h, f.bytes);
  }
  return h;
}

}  // namespace

void SliceGuard::release(void *user_data) {
  static_cast<SliceGuard *>(user_data)->outstanding.fetch_sub(1);
}

grpc::Slice SliceGuard::ref(const void *data, size_t bytes) {
  outstanding.fetch_add(1);
  return grpc::Slice(const_cast<void *>(data), bytes, &SliceGuard::release, this);
}

SliceGuard::~SliceGuard() {
  // grpc may drop its last reference to a slice on one of its own threads just after the call
  // returns; wait for that (bounded) so that no caller array is referenced once lc_step returns.
  for (int i = 0; i < 20000 && outstanding.load() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
}

void Builder::bytes(const std::string &s) { pending += s; }

void Builder::data(const void *p, size_t n) {
  flush();
  if (n > 0) slices.push_back(guard->ref(p, n));
}

void Builder::flush() {
  if (!pending.empty()) slices.emplace_back(pending);  // copies the few header bytes
  pending.clear();
}

grpc::ByteBuffer Builder::take() {
  flush();
  grpc::ByteBuffer bb(slices.data(), slices.size());
  slices.clear();
  return bb;
}

std::vector<grpc::ByteBuffer> encode_step(const std::string &session_id, int64_t index,
                                          const std::vector<WireField> &fields, bool stream,
                                          bool split, SliceGuard *guard) {
  std::string head;
  string_field(head, 1, session_id);
  if (index != 0) {
    tag(head, 2, 0);
    varint(head, static_cast<uint64_t>(index));
  }
  if (split) {
    tag(head, 4, 0);
    varint(head, fields.size());
  }
  std::vector<std::string> heads;
  size_t body = head.size();
  for (const auto &f : fields) {
    heads.push_back(field_head(f));
    const size_t n = heads.back().size() + f.bytes;
    if (!split) body += 1 + varint_size(n) + n;  // StepRequest.fields (3)
  }
  std::vector<grpc::ByteBuffer> out;
  Builder b{guard, {}, {}};
  if (stream) {  // ExchangeRequest.step (1)
    std::string outer;
    tag(outer, 1, 2);
    varint(outer, body);
    b.bytes(outer);
  }
  b.bytes(head);
  for (size_t k = 0; k < fields.size(); ++k) {
    const size_t n = heads[k].size() + fields[k].bytes;
    std::string prefix;
    if (split) {  // a frame of its own: ExchangeRequest.field (2)
      out.push_back(b.take());
      tag(prefix, 2, 2);
    } else {
      tag(prefix, 3, 2);
    }
    varint(prefix, n);
    b.bytes(prefix);
    b.bytes(heads[k]);
    b.data(fields[k].data, fields[k].bytes);
  }
  out.push_back(b.take());
  return out;
}

std::string session_id_field(const std::string &session_id) {
  std::string s;
  string_field(s, 1, session_id);
  return s;
}

}  // namespace lc
