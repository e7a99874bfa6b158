// The stored form of a Part tree (written once at delivery, read by FETCH).
//
// Format, version 1 (all integers are unsigned LEB128 varints, at most 10
// bytes; "str" is a varint length then that many bytes; "ostr" is a byte 0
// (absent) or 1 followed by a str):
//
//   tree     = version:u8(=1) part                      ; nothing may follow
//   part     = header_begin header_len body_len lines   ; varints; offsets are
//              type:str subtype:str params              ;   header_end = begin + header_len,
//              id:ostr description:ostr encoding:str    ;   body_end = header_end + body_len
//              disposition:ostr disposition_params:params
//              nlang language:str*nlang location:ostr md5:ostr
//              flags:u8                                 ; bit 0: an envelope follows; others 0
//              [envelope] nchildren part*nchildren
//   params   = n (name:str value:str)*n
//   envelope = date:ostr subject:ostr from:addrs sender:addrs reply_to:addrs
//              to:addrs cc:addrs bcc:addrs in_reply_to:ostr message_id:ostr
//   addrs    = n (name:ostr adl:ostr mailbox:ostr host:ostr)*n
//
// Deserialize checks everything it reads: the version, lengths against the
// bytes left, offsets not overflowing, children in order inside their
// parent's body, depth <= kMaxDepth, parts <= kMaxParts, no trailing bytes.
// `size` is not stored: it is body_end - header_end.
#include <cstdint>
#include <string>

#include "mime/message.h"

namespace hato::mime {
namespace {

class Writer {
 public:
  void U8(uint8_t v) { out_ += static_cast<char>(v); }
  void Var(uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  void Str(std::string_view s) {
    Var(s.size());
    out_.append(s);
  }
  void OStr(const std::optional<std::string>& s) {
    U8(s ? 1 : 0);
    if (s) Str(*s);
  }
  void Params(const std::vector<Param>& ps) {
    Var(ps.size());
    for (const Param& p : ps) {
      Str(p.name);
      Str(p.value);
    }
  }
  void Addrs(const std::vector<Address>& as) {
    Var(as.size());
    for (const Address& a : as) {
      OStr(a.name);
      OStr(a.adl);
      OStr(a.mailbox);
      OStr(a.host);
    }
  }
  void Env(const Envelope& e) {
    OStr(e.date);
    OStr(e.subject);
    Addrs(e.from);
    Addrs(e.sender);
    Addrs(e.reply_to);
    Addrs(e.to);
    Addrs(e.cc);
    Addrs(e.bcc);
    OStr(e.in_reply_to);
    OStr(e.message_id);
  }
  void PartTree(const Part& p) {
    Var(p.header_begin);
    Var(p.header_end - p.header_begin);
    Var(p.body_end - p.header_end);
    Var(p.lines);
    Str(p.type);
    Str(p.subtype);
    Params(p.params);
    OStr(p.id);
    OStr(p.description);
    Str(p.encoding);
    OStr(p.disposition);
    Params(p.disposition_params);
    Var(p.language.size());
    for (const std::string& l : p.language) Str(l);
    OStr(p.location);
    OStr(p.md5);
    U8(p.envelope ? 1 : 0);
    if (p.envelope) Env(*p.envelope);
    Var(p.children.size());
    for (const Part& c : p.children) PartTree(c);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

Error Corrupt(const char* what) {
  return Err(ErrorKind::kCorrupt, std::string("mime: stored part tree: ") + what);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool U8(uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool Var(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!U8(&b)) return false;
      if (shift == 63 && (b & 0x7E) != 0) return false;  // overflows 64 bits
      r |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool Size(size_t* v) {  // a varint that is also a count of things still to read
    uint64_t n;
    if (!Var(&n) || n > in_.size()) return false;
    *v = static_cast<size_t>(n);
    return true;
  }
  bool Str(std::string* s) {
    size_t n;
    if (!Size(&n)) return false;
    s->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool OStr(std::optional<std::string>* s) {
    uint8_t present;
    if (!U8(&present) || present > 1) return false;
    if (present == 0) {
      s->reset();
      return true;
    }
    s->emplace();
    return Str(&**s);
  }
  bool Params(std::vector<Param>* ps) {
    size_t n;
    if (!Size(&n)) return false;
    for (size_t i = 0; i < n; ++i) {
      Param p;
      if (!Str(&p.name) || !Str(&p.value)) return false;
      ps->push_back(std::move(p));
    }
    return true;
  }
  bool Addrs(std::vector<Address>* as) {
    size_t n;
    if (!Size(&n)) return false;
    for (size_t i = 0; i < n; ++i) {
      Address a;
      if (!OStr(&a.name) || !OStr(&a.adl) || !OStr(&a.mailbox) || !OStr(&a.host)) return false;
      as->push_back(std::move(a));
    }
    return true;
  }
  bool Env(Envelope* e) {
    return OStr(&e->date) && OStr(&e->subject) && Addrs(&e->from) && Addrs(&e->sender) &&
           Addrs(&e->reply_to) && Addrs(&e->to) && Addrs(&e->cc) && Addrs(&e->bcc) &&
           OStr(&e->in_reply_to) && OStr(&e->message_id);
  }

  // Reads one part whose range must lie in [lo, hi].
  Status PartTree(Part* p, int depth, uint64_t lo, uint64_t hi) {
    if (depth > kMaxDepth) return Corrupt("too deep");
    if (++parts_ > kMaxParts) return Corrupt("too many parts");
    uint64_t begin, header_len, body_len;
    if (!Var(&begin) || !Var(&header_len) || !Var(&body_len) || !Var(&p->lines)) {
      return Corrupt("truncated");
    }
    if (begin < lo || begin > hi || header_len > hi - begin || body_len > hi - begin - header_len) {
      return Corrupt("part outside its parent");
    }
    p->header_begin = static_cast<size_t>(begin);
    p->header_end = static_cast<size_t>(begin + header_len);
    p->body_end = static_cast<size_t>(begin + header_len + body_len);
    p->size = body_len;
    p->type.clear();
    p->subtype.clear();
    p->encoding.clear();
    uint8_t flags = 0;
    size_t nlang = 0;
    if (!Str(&p->type) || !Str(&p->subtype) || !Params(&p->params) || !OStr(&p->id) ||
        !OStr(&p->description) || !Str(&p->encoding) || !OStr(&p->disposition) ||
        !Params(&p->disposition_params) || !Size(&nlang)) {
      return Corrupt("truncated");
    }
    for (size_t i = 0; i < nlang; ++i) {
      std::string l;
      if (!Str(&l)) return Corrupt("truncated");
      p->language.push_back(std::move(l));
    }
    if (!OStr(&p->location) || !OStr(&p->md5) || !U8(&flags)) return Corrupt("truncated");
    if ((flags & ~1u) != 0) return Corrupt("unknown flags");
    if (flags & 1) {
      p->envelope.emplace();
      if (!Env(&*p->envelope)) return Corrupt("truncated envelope");
    }
    size_t n;
    if (!Size(&n)) return Corrupt("truncated");
    uint64_t next = p->header_end;
    for (size_t i = 0; i < n; ++i) {
      Part c;
      if (Status s = PartTree(&c, depth + 1, next, p->body_end); !s.ok()) return s;
      next = c.body_end;
      p->children.push_back(std::move(c));
    }
    return Ok();
  }

  bool AtEnd() const { return in_.empty(); }

 private:
  std::string_view in_;
  size_t parts_ = 0;
};

}  // namespace

std::string Serialize(const Part& root) {
  Writer w;
  w.U8(kFormatVersion);
  w.PartTree(root);
  return w.Take();
}

Result<Part> Deserialize(std::string_view bytes) {
  Reader r(bytes);
  uint8_t version;
  if (!r.U8(&version)) return Corrupt("empty");
  if (version != kFormatVersion) return Corrupt("unknown version");
  Part root;
  if (Status s = r.PartTree(&root, 0, 0, UINT64_MAX); !s.ok()) return s.error();
  if (!r.AtEnd()) return Corrupt("trailing bytes");
  return root;
}

}  // namespace hato::mime
