#include "dns/message.h"

#include <algorithm>
#include <utility>

#include "base/strings.h"

namespace hato::dns {
namespace {

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxWireName = 255;  // RFC 1035 3.1
constexpr size_t kMaxLabel = 63;
// Compression pointers followed for one name: more is a loop.
constexpr int kMaxPointers = 64;
constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRd = 0x0100;
constexpr uint16_t kFlagAd = 0x0020;
constexpr uint16_t kTypeOpt = 41;
constexpr uint16_t kEdnsDo = 0x8000;

void Put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

uint16_t Get16(std::string_view w, size_t at) {
  return static_cast<uint16_t>((static_cast<unsigned char>(w[at]) << 8) |
                               static_cast<unsigned char>(w[at + 1]));
}

// Reads the name at `*pos` (following compression pointers) into `out`
// (dotted, lower-cased) and moves `*pos` past it in the message.
bool ReadName(std::string_view w, size_t* pos, std::string* out) {
  size_t at = *pos;
  size_t wire_len = 0;
  int pointers = 0;
  bool jumped = false;
  out->clear();
  while (true) {
    if (at >= w.size()) return false;
    auto len = static_cast<unsigned char>(w[at]);
    if ((len & 0xc0) == 0xc0) {
      if (at + 1 >= w.size() || ++pointers > kMaxPointers) return false;
      size_t target = Get16(w, at) & 0x3fff;
      if (!jumped) *pos = at + 2;
      jumped = true;
      at = target;
      continue;
    }
    if ((len & 0xc0) != 0) return false;  // the reserved label types
    wire_len += 1 + len;
    if (wire_len > kMaxWireName) return false;
    if (len == 0) {
      if (!jumped) *pos = at + 1;
      return true;
    }
    if (at + 1 + len > w.size()) return false;
    std::string_view label = w.substr(at + 1, len);
    // A dot inside a label would make the text name ambiguous ("a.b" as one
    // label or two), so an answer could pass for another question's.
    if (label.find('.') != std::string_view::npos) return false;
    if (!out->empty()) out->push_back('.');
    out->append(AsciiLower(label));
    at += 1 + len;
  }
}

}  // namespace

Result<std::string> BuildQuery(uint16_t id, std::string_view name, uint16_t type) {
  std::string out;
  Put16(out, id);
  Put16(out, kFlagRd | kFlagAd);
  Put16(out, 1);  // QDCOUNT
  Put16(out, 0);
  Put16(out, 0);
  Put16(out, 1);  // ARCOUNT: the OPT record
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  size_t wire_len = 1;
  size_t pos = 0;
  while (!name.empty() && pos <= name.size()) {
    size_t dot = name.find('.', pos);
    std::string_view label =
        name.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
    if (label.empty() || label.size() > kMaxLabel) {
      return Err(ErrorKind::kInvalid, "dns: bad name '" + std::string(name) + "'");
    }
    wire_len += 1 + label.size();
    out.push_back(static_cast<char>(label.size()));
    out.append(label);
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  if (wire_len > kMaxWireName) {
    return Err(ErrorKind::kInvalid, "dns: name too long '" + std::string(name) + "'");
  }
  out.push_back('\0');
  Put16(out, type);
  Put16(out, 1);  // class IN
  // OPT (RFC 6891 6.1.2): root owner, payload size as class, DO in the flags.
  out.push_back('\0');
  Put16(out, kTypeOpt);
  Put16(out, kEdnsPayload);
  Put16(out, 0);  // extended rcode, version 0
  Put16(out, kEdnsDo);
  Put16(out, 0);  // no options
  return out;
}

Result<Response> ParseResponse(std::string_view w) {
  auto bad = [](const char* what) { return Err(ErrorKind::kInvalid, std::string("dns: ") + what); };
  if (w.size() < kHeaderSize) return bad("short response");
  Response r;
  r.id = Get16(w, 0);
  uint16_t flags = Get16(w, 2);
  if (!(flags & kFlagQr)) return bad("not a response");
  r.tc = (flags & kFlagTc) != 0;
  r.ad = (flags & kFlagAd) != 0;
  r.rcode = flags & 0x0f;
  uint16_t qdcount = Get16(w, 4);
  uint16_t ancount = Get16(w, 6);
  if (qdcount != 1) return bad("not one question");
  size_t pos = kHeaderSize;
  if (!ReadName(w, &pos, &r.qname)) return bad("bad question name");
  if (pos + 4 > w.size()) return bad("short question");
  r.qtype = Get16(w, pos);
  pos += 4;
  std::string owner;
  std::vector<std::pair<std::string, std::string>> cnames;  // owner, target
  for (uint16_t i = 0; i < ancount; ++i) {
    if (!ReadName(w, &pos, &owner)) {
      // A truncated answer may end anywhere: what came before is kept.
      if (r.tc) break;
      return bad("bad owner name");
    }
    if (pos + 10 > w.size()) {
      if (r.tc) break;
      return bad("short record");
    }
    uint16_t type = Get16(w, pos);
    uint16_t rdlength = Get16(w, pos + 8);
    pos += 10;
    if (pos + rdlength > w.size()) {
      if (r.tc) break;
      return bad("short rdata");
    }
    if (type == r.qtype) r.rdata.emplace_back(w.substr(pos, rdlength));
    if (type == kTypeCname && r.qtype != kTypeCname) {
      // The target may be compressed against the whole message; it must end
      // within the rdata.
      size_t at = pos;
      std::string target;
      if (!ReadName(w, &at, &target) || at > pos + rdlength) return bad("bad CNAME target");
      cnames.emplace_back(owner, std::move(target));
    }
    pos += rdlength;
  }
  r.canonical = r.qname;
  for (int link = 0; link < kMaxCnameChain; ++link) {
    auto it = std::find_if(cnames.begin(), cnames.end(),
                           [&r](const auto& c) { return c.first == r.canonical; });
    if (it == cnames.end()) break;
    r.canonical = it->second;
  }
  return r;
}

}  // namespace hato::dns
