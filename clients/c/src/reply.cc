// liblandcoupler: step replies read straight from the received gRPC byte buffers (StepReply,
// ExchangeReply and Field in the protobuf wire format of landcoupler.v1): the field headers are
// parsed, each `data` is located, and copy_output copies it once into the caller's array (or
// converts it to float32 in that pass). Nothing else copies the reply's arrays.
#include <cstring>

#include "internal.h"

namespace lc {
namespace {

// A read position over one message's slices (a received ByteBuffer, not flattened).
class Cursor {
 public:
  explicit Cursor(const std::vector<grpc::Slice> &s) : s_(s) {}
  size_t pos() const { return pos_; }
  bool byte(uint8_t *b) {
    while (i_ < s_.size() && o_ == s_[i_].size()) ++i_, o_ = 0;
    if (i_ == s_.size()) return false;
    *b = s_[i_].begin()[o_++];
    ++pos_;
    return true;
  }
  bool varint(uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!byte(&b)) return false;
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool read(size_t n, std::string *out) {  // small strings only (names, units, times)
    out->clear();
    for (size_t k = 0; k < n; ++k) {
      uint8_t b;
      if (!byte(&b)) return false;
      out->push_back(static_cast<char>(b));
    }
    return true;
  }
  bool skip(size_t n) {
    while (n > 0) {
      while (i_ < s_.size() && o_ == s_[i_].size()) ++i_, o_ = 0;
      if (i_ == s_.size()) return false;
      size_t k = std::min(n, s_[i_].size() - o_);
      o_ += k, pos_ += k, n -= k;
    }
    return true;
  }

 private:
  const std::vector<grpc::Slice> &s_;
  size_t i_ = 0, o_ = 0, pos_ = 0;
};

// Skip a field of `wire_type` (unknown to this reader).
bool skip_value(Cursor &c, uint64_t wire_type) {
  uint64_t v;
  switch (wire_type) {
    case 0: return c.varint(&v);
    case 1: return c.skip(8);
    case 2: return c.varint(&v) && c.skip(v);
    case 5: return c.skip(4);
    default: return false;
  }
}

bool parse_codec(Cursor &c, size_t end, bool *raw) {
  while (c.pos() < end) {
    uint64_t key, len;
    if (!c.varint(&key)) return false;
    if (key == (1 << 3 | 2)) {
      std::string id;
      if (!c.varint(&len) || !c.read(len, &id)) return false;
      *raw = id.empty() || id == "none";
    } else if (!skip_value(c, key & 7)) {
      return false;
    }
  }
  return c.pos() == end;
}

bool parse_field(Cursor &c, size_t end, size_t buf, FieldRef *f) {
  f->buf = buf;
  while (c.pos() < end) {
    uint64_t key, v;
    if (!c.varint(&key)) return false;
    const uint64_t number = key >> 3, type = key & 7;
    if (number == 1 && type == 2) {
      if (!c.varint(&v) || !c.read(v, &f->name)) return false;
    } else if (number == 3 && type == 0) {
      if (!c.varint(&v)) return false;
      f->dtype = static_cast<int>(v);
    } else if (number == 5 && type == 2) {
      if (!c.varint(&v)) return false;
      f->off = c.pos(), f->len = v;
      if (!c.skip(v)) return false;
    } else if (number == 6 && type == 2) {
      if (!c.varint(&v) || !parse_codec(c, c.pos() + v, &f->raw)) return false;
    } else if (!skip_value(c, type)) {  // units, shape, anything newer
      return false;
    }
  }
  return c.pos() == end;
}

bool parse_step_reply(Cursor &c, size_t end, size_t buf, Reply *r) {
  while (c.pos() < end) {
    uint64_t key, v;
    if (!c.varint(&key)) return false;
    const uint64_t number = key >> 3, type = key & 7;
    if (number == 3 && type == 2) {
      r->fields.emplace_back();
      if (!c.varint(&v) || !parse_field(c, c.pos() + v, buf, &r->fields.back())) return false;
    } else if (number == 4 && type == 0) {
      if (!c.varint(&r->trailing)) return false;
    } else if (number == 5 && type == 2) {
      if (!c.varint(&v) || !c.read(v, &r->time)) return false;
    } else if (!skip_value(c, type)) {  // session_id, index
      return false;
    }
  }
  return c.pos() == end;
}

size_t total(const std::vector<grpc::Slice> &s) {
  size_t n = 0;
  for (const auto &x : s) n += x.size();
  return n;
}

}  // namespace

int Reply::add(const grpc::ByteBuffer &bb, bool exchange) {
  bufs.emplace_back();
  if (!bb.Dump(&bufs.back()).ok()) return -1;
  const size_t buf = bufs.size() - 1, end = total(bufs.back());
  Cursor c(bufs.back());
  if (!exchange) return parse_step_reply(c, end, buf, this) ? 1 : -1;
  // ExchangeReply: oneof frame { StepReply step = 1; Field field = 2; }
  uint64_t key, len;
  if (!c.varint(&key) || !c.varint(&len) || c.pos() + len != end) return -1;
  if (key == (1 << 3 | 2)) return parse_step_reply(c, end, buf, this) ? 1 : -1;
  if (key == (2 << 3 | 2)) {
    fields.emplace_back();
    return parse_field(c, end, buf, &fields.back()) ? 2 : -1;
  }
  return -1;
}

void Reply::copy_output(const FieldRef &f, void *dst, bool to_float) const {
  const auto &slices = bufs[f.buf];
  size_t skip = f.off, left = f.len;
  char *out = static_cast<char *>(dst);
  double chunk[512];
  size_t have = 0;  // bytes of `chunk` filled (float32 conversion only)
  for (const auto &s : slices) {
    if (left == 0) break;
    if (skip >= s.size()) {
      skip -= s.size();
      continue;
    }
    const char *src = reinterpret_cast<const char *>(s.begin()) + skip;
    size_t n = std::min(left, s.size() - skip);
    skip = 0;
    left -= n;
    if (!to_float) {  // the one copy: received bytes -> caller's array
      std::memcpy(out, src, n);
      out += n;
      continue;
    }
    while (n > 0) {  // float32: convert through a small buffer (doubles may straddle slices)
      size_t k = std::min(n, sizeof chunk - have);
      std::memcpy(reinterpret_cast<char *>(chunk) + have, src, k);
      have += k, src += k, n -= k;
      if (have == sizeof chunk || (left == 0 && n == 0)) {
        float *o = reinterpret_cast<float *>(out);
        for (size_t j = 0; j < have / sizeof(double); ++j) o[j] = static_cast<float>(chunk[j]);
        out += have / sizeof(double) * sizeof(float);
        have = 0;
      }
    }
  }
}

}  // namespace lc
