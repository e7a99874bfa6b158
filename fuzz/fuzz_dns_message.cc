// libFuzzer target for the DNSSEC-aware stub's messages (src/dns/message.h),
// which read answers from the network (a resolver on loopback, but still
// bytes from outside).
//
//   * ParseResponse never crashes, and accepts only responses (QR set) with
//     one question; the question name is lower-case, without a trailing dot,
//     at most 253 characters; each rdata lies within the input, and there
//     are no more of them than the header announces;
//   * a query BuildQuery makes from a name taken from the input, with QR set,
//     parses back to the same id, type and (lower-cased) name, with AD set
//     and no answers; BuildQuery fails only for an empty or overlong label or
//     a name over 255 octets.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "dns/message.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto r = hato::dns::ParseResponse(in);
  if (r) {
    FUZZ_CHECK(size >= 12 && (data[2] & 0x80));
    FUZZ_CHECK(!hato::fuzz::HasAsciiUpper(r->qname));
    FUZZ_CHECK(r->qname.empty() || r->qname.back() != '.');
    FUZZ_CHECK(r->qname.size() <= 254);
    FUZZ_CHECK(r->rdata.size() <= static_cast<size_t>((data[6] << 8) | data[7]));
    size_t total = 0;
    for (const auto& rd : r->rdata) total += rd.size();
    FUZZ_CHECK(total <= size);
    FUZZ_CHECK(r->ad == ((data[3] & 0x20) != 0));
    FUZZ_CHECK(r->rcode == (data[3] & 0x0f));
  }

  // A name from the input (printable ASCII but no dots at the ends).
  if (size >= 4) {
    uint16_t id = static_cast<uint16_t>((data[0] << 8) | data[1]);
    uint16_t type = static_cast<uint16_t>((data[2] << 8) | data[3]);
    std::string name;
    for (size_t i = 4; i < size && name.size() < 300; ++i) {
      unsigned char c = data[i];
      if (c > 0x20 && c < 0x7f) name.push_back(static_cast<char>(c));
    }
    while (!name.empty() && name.front() == '.') name.erase(0, 1);
    auto q = hato::dns::BuildQuery(id, name, type);
    std::string trimmed = name;
    if (!trimmed.empty() && trimmed.back() == '.') trimmed.pop_back();
    bool labels_ok = trimmed.find("..") == std::string::npos;
    size_t label = 0, wire = 1;
    for (char c : trimmed + ".") {
      if (c == '.') {
        labels_ok = labels_ok && label <= 63 && (label > 0 || trimmed.empty());
        wire += trimmed.empty() ? 0 : label + 1;
        label = 0;
      } else {
        ++label;
      }
    }
    FUZZ_CHECK(q.ok() == (labels_ok && wire <= 255));
    if (q) {
      std::string response = *q;
      response[2] = static_cast<char>(response[2] | 0x80);  // QR: as if answered
      auto back = hato::dns::ParseResponse(response);
      FUZZ_CHECK(back.ok());
      FUZZ_CHECK(back->id == id);
      FUZZ_CHECK(back->qtype == type);
      FUZZ_CHECK(back->ad);
      FUZZ_CHECK(back->rdata.empty());
      FUZZ_CHECK_EQ_STR(back->qname, hato::AsciiLower(trimmed));
    }
  }
  return 0;
}
