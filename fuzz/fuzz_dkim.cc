// libFuzzer target for the DKIM and DMARC text formats (src/msgauth/dkim_record.h,
// src/msgauth/dmarc.h):
//   * ParseTagList never crashes; tag names are unique; each value is the
//     FWS-trimmed text between its begin/end offsets; written back as
//     "name=value;" the list re-parses to the same tags;
//   * ParseSignature: a parsed signature has a valid lower-case d=, h= with
//     From, an i= in d= or a subdomain, x= not before t=, a b= range in bounds;
//   * ParseKeyRecord: a revoked key has no key bytes, an Ed25519 key 32;
//   * canonicalization: relaxed header/body and simple body are idempotent,
//     end in CRLF (or are empty: relaxed body), and relaxed output has no WSP runs;
//   * ParseDmarcRecord never crashes, pct in 0..100; OrganizationalDomain is a
//     suffix of the lower-cased input and idempotent.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "msgauth/dkim_record.h"
#include "msgauth/dmarc.h"

namespace {

using namespace hato::msgauth;

bool IsFws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

void CheckTags(std::string_view s) {
  auto tags = ParseTagList(s);
  if (!tags.ok()) {
    FUZZ_CHECK(tags.error().kind == hato::ErrorKind::kInvalid);
    return;
  }
  std::string again;
  for (size_t i = 0; i < tags->size(); ++i) {
    const Tag& t = (*tags)[i];
    FUZZ_CHECK(!t.name.empty());
    for (size_t j = 0; j < i; ++j) FUZZ_CHECK((*tags)[j].name != t.name);
    FUZZ_CHECK(t.begin <= t.end && t.end <= s.size());
    std::string_view raw = s.substr(t.begin, t.end - t.begin);
    while (!raw.empty() && IsFws(raw.front())) raw.remove_prefix(1);
    while (!raw.empty() && IsFws(raw.back())) raw.remove_suffix(1);
    FUZZ_CHECK_EQ_STR(raw, t.value);
    again += t.name + "=" + t.value + ";";
  }
  auto reparsed = ParseTagList(again);
  if (!reparsed.ok()) hato::fuzz::Fail(__FILE__, __LINE__, "tags do not re-parse", again, "");
  FUZZ_CHECK(reparsed->size() == tags->size());
  for (size_t i = 0; i < tags->size(); ++i) {
    FUZZ_CHECK_EQ_STR((*reparsed)[i].name, (*tags)[i].name);
    FUZZ_CHECK_EQ_STR((*reparsed)[i].value, (*tags)[i].value);
  }
}

void CheckSignature(std::string_view s) {
  auto sig = ParseSignature(s);
  if (!sig.ok()) return;
  FUZZ_CHECK(!sig->domain.empty() && !hato::fuzz::HasAsciiUpper(sig->domain));
  bool from = false;
  for (const auto& h : sig->headers) from = from || hato::EqualsIgnoreCase(h, "from");
  FUZZ_CHECK(from);
  std::string idom = hato::AsciiLower(sig->identity.substr(sig->identity.rfind('@') + 1));
  FUZZ_CHECK(idom == sig->domain || idom.ends_with("." + sig->domain));
  if (sig->timestamp && sig->expiration) FUZZ_CHECK(*sig->expiration >= *sig->timestamp);
  FUZZ_CHECK(sig->b_begin <= sig->b_end && sig->b_end <= s.size());
  FUZZ_CHECK(!sig->signature.empty() && !sig->body_hash.empty());
}

void CheckKey(std::string_view s) {
  auto key = ParseKeyRecord(s);
  if (!key.ok()) return;
  if (key->revoked) FUZZ_CHECK(key->public_key.empty());
  if (!key->revoked && key->type == KeyType::kEd25519) FUZZ_CHECK(key->public_key.size() == 32);
}

void CheckCanon(std::string_view s) {
  // Headers: relaxed output is "name:value\r\n" with single spaces.
  // A field name is printable ASCII without SP (RFC 5322 ftext), as the header
  // scanner delivers it, optionally followed by WSP before the colon.
  std::string field(s.substr(0, 2048));
  size_t colon = field.find(':');
  size_t name_end = 0;
  while (name_end < colon && field[name_end] > ' ' && field[name_end] < 127) ++name_end;
  size_t wsp = name_end;
  while (wsp < colon && (field[wsp] == ' ' || field[wsp] == '\t')) ++wsp;
  if (colon != std::string::npos && name_end > 0 && wsp == colon) {
    std::string once = CanonHeader(Canon::kRelaxed, field);
    FUZZ_CHECK(once.ends_with("\r\n"));
    std::string twice = CanonHeader(Canon::kRelaxed, once);
    FUZZ_CHECK_EQ_STR(once, twice);
    FUZZ_CHECK(once.find("  ") == std::string::npos);
    FUZZ_CHECK(once.find('\t') == std::string::npos);
    FUZZ_CHECK(CanonHeader(Canon::kSimple, field).ends_with("\r\n"));
  }
  for (Canon c : {Canon::kSimple, Canon::kRelaxed}) {
    std::string once = CanonBody(c, s);
    FUZZ_CHECK_EQ_STR(CanonBody(c, once), once);
    FUZZ_CHECK(once.ends_with("\r\n") || (c == Canon::kRelaxed && once.empty()));
    FUZZ_CHECK(!once.ends_with("\r\n\r\n"));
  }
}

void CheckDmarc(std::string_view s) {
  auto rec = ParseDmarcRecord(s);
  if (rec.ok()) FUZZ_CHECK(rec->pct >= 0 && rec->pct <= 100);
  std::string d(s.substr(0, 300));
  std::string lower = hato::AsciiLower(d);
  while (!lower.empty() && lower.back() == '.') lower.pop_back();
  std::string org = OrganizationalDomain(d);
  FUZZ_CHECK(lower.ends_with(org));
  FUZZ_CHECK_EQ_STR(OrganizationalDomain(org), org);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  CheckTags(s);
  CheckSignature(s);
  CheckKey(s);
  CheckCanon(s);
  CheckDmarc(s);
  return 0;
}
