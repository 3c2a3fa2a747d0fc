// liblandcoupler: surviving a server restart (docs/clients.md, "Server restarts").
// A server process that dies loses its sessions (they live in memory); what survives is the
// periodic checkpoint the server writes to <checkpoint_url>/<session_id>.ckpt every
// checkpoint_every steps (with the last reply, before answering that step). A session opened
// with both is "armed": the library keeps an owned copy of each step request sent since that
// checkpoint (at most checkpoint_every - 1 of them) and, when a step is refused with NOT_FOUND
// session_id (the restarted server does not know it), resumes the session from the checkpoint,
// resends the kept steps from the checkpoint's next_index on (their replies are discarded: the
// model is deterministic, so they are the replies already delivered), then the caller sends the
// step again. Before the first periodic checkpoint it re-opens with the original request
// instead (the kept steps then start at 0). Kept steps are resent as unary Step calls whatever
// the session's transport; the step itself goes again on its own transport (unary or stream).
#include <cstring>

#include "internal.h"

namespace lc {
namespace {

// Drop the kept steps, keeping their buffers for the next ones (a fresh multi-MB allocation
// per step costs page faults: measured with `make bench-clients`).
void drop_kept(Recovery &r) {
  for (auto &k : r.since)
    if (r.spare.size() < static_cast<size_t>(r.every)) r.spare.push_back(std::move(k.bytes));
  r.since.clear();
}

}  // namespace

void arm_recovery(lc_session *s, pb::OpenSessionRequest &&req) {
  Recovery &r = s->rec;
  r.since.clear();
  r.spare.clear();
  r.ckpt_index = -1;
  r.armed = !req.checkpoint_url().empty() && req.checkpoint_every() > 0;
  if (!r.armed) {
    r.open_req.Clear();
    r.prefix.clear();
    r.every = 0;
    return;
  }
  r.prefix = req.checkpoint_url();
  r.every = req.checkpoint_every();
  r.open_req = std::move(req);  // lat, lon and the options were copied into it once, at open
}

void disarm_recovery(lc_session *s) {
  s->rec.armed = false;  // the checkpoint settings are not in the resume reply
  s->rec.since.clear();
  s->rec.spare.clear();
  s->rec.open_req.Clear();
}

bool recovery_armed(const lc_session *s) { return s->rec.armed && s->open && !s->closed; }

void keep_step(lc_session *s, int64_t index, const std::vector<WireField> &fields) {
  if (!recovery_armed(s)) return;
  Recovery &r = s->rec;
  if (!r.since.empty() && r.since.back().index >= index) return;  // kept already
  if ((index + 1) % r.every == 0) {  // the server wrote the checkpoint before replying
    r.ckpt_index = index + 1;
    drop_kept(r);
    return;
  }
  // the StepRequest without session id, flattened into one owned string (one copy of the
  // forcing; the guard, declared first, outlives the buffer that references the caller's arrays)
  SliceGuard guard;
  KeptStep kept{index, {}};
  if (!r.spare.empty()) {  // same size as before in practice: resize then writes nothing
    kept.bytes = std::move(r.spare.back());
    r.spare.pop_back();
  }
  {
    std::vector<grpc::ByteBuffer> bb = encode_step("", index, fields, false, false, &guard);
    std::vector<grpc::Slice> slices;
    bb[0].Dump(&slices);
    size_t total = 0;
    for (const auto &sl : slices) total += sl.size();
    kept.bytes.resize(total);
    char *dst = &kept.bytes[0];
    for (const auto &sl : slices) {
      if (sl.size() > 0) std::memcpy(dst, sl.begin(), sl.size());
      dst += sl.size();
    }
  }
  r.since.push_back(std::move(kept));
}

void checkpoint_written(lc_session *s) {
  if (!recovery_armed(s)) return;
  s->rec.ckpt_index = s->next_index;
  drop_kept(s->rec);
}

int recover(lc_session *s, int64_t index) {
  Recovery &r = s->rec;
  pb::OpenSessionRequest resume;
  const pb::OpenSessionRequest *req = &r.open_req;
  if (r.ckpt_index >= 0) {
    std::string prefix = r.prefix;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    resume.set_resume_from(prefix + "/" + s->id + ".ckpt");
    req = &resume;
  }
  pb::OpenSessionReply orep;
  int rc = call(s, &pb::LandCoupler::Stub::OpenSession, *req, &orep, true);
  if (rc != LC_OK) return rc;
  const int64_t client_next = s->next_index;
  end_stream(s, true);  // a stream to the dead server, if one is left
  took_open(s, orep);
  ++r.count;
  int64_t have = orep.next_index();
  const std::string head = session_id_field(s->id);  // the id may be new (re-opened)
  for (int64_t j = have; j < index; ++j) {
    const KeptStep *kept = nullptr;
    for (const auto &k : r.since)
      if (k.index == j) kept = &k;
    if (!kept) {
      s->next_index = have;
      return client_error(s, "index", "recover",
                          "the restarted server resumed at step " + std::to_string(have) +
                              " and step " + std::to_string(j) + " is not kept to resend");
    }
    SliceGuard guard;  // outlives the request, which references the kept bytes
    Builder b{&guard, {}, {}};
    b.bytes(head);
    b.data(kept->bytes.data(), kept->bytes.size());
    Reply discard;
    rc = unary_step(s, b.take(), &discard);
    if (rc != LC_OK) {
      s->next_index = have;  // what the server holds now
      return rc;
    }
    have = j + 1;
  }
  if (have > index + 1)
    return client_error(s, "index", "recover",
                        "the restarted server resumed at step " + std::to_string(have) +
                            ", past step " + std::to_string(index));
  s->next_index = client_next;
  return LC_OK;
}

}  // namespace lc
