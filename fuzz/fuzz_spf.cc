// libFuzzer target for SPF (src/msgauth/spf_record.h, spf.h) and the DNS
// table of the tests (src/msgauth/dns_table.h).
//   * ParseSpfRecord never crashes; a parsed record has CIDR lengths in
//     range, valid domain-specs and at most kMaxSpfTerms mechanisms;
//   * ExpandMacros succeeds exactly when ValidMacroString says so;
//     TruncateDomain never exceeds kMaxDomainLength when it can be shortened;
//   * the evaluator, fed a DNS table built from the input (first line: the
//     record of the checked domain; the rest: table lines), always ends, with
//     a bounded number of DNS queries (RFC 7208 section 4.6.4 limits).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "msgauth/dns_table.h"
#include "msgauth/spf.h"
#include "msgauth/spf_record.h"

namespace {

using namespace hato::msgauth;

// Each counted term makes at most 1 + kMaxSpfMxNames (mx) or
// 1 + 2 * kMaxSpfPtrNames (ptr) queries, %{p} in any expansion adds a ptr
// validation, and exp= adds one; include/redirect add their record lookups.
constexpr size_t kMaxQueries = 12 * (2 + 2 * kMaxSpfPtrNames + kMaxSpfMxNames) * 4;

void CheckRecord(std::string_view s) {
  std::string txt = "v=spf1 " + std::string(s.substr(0, s.find('\n')));
  auto rec = ParseSpfRecord(txt);
  if (!rec.ok()) {
    FUZZ_CHECK(rec.error().kind == hato::ErrorKind::kInvalid);
    return;
  }
  FUZZ_CHECK(rec->mechanisms.size() <= kMaxSpfTerms);
  for (const auto& m : rec->mechanisms) {
    FUZZ_CHECK(m.cidr4 >= 0 && m.cidr4 <= 32);
    FUZZ_CHECK(m.cidr6 >= 0 && m.cidr6 <= 128);
    if (!m.domain_spec.empty()) FUZZ_CHECK(ValidDomainSpec(m.domain_spec));
  }
  if (rec->redirect) FUZZ_CHECK(ValidDomainSpec(*rec->redirect));
}

void CheckMacros(std::string_view s) {
  MacroContext ctx;
  ctx.sender = "strong-bad@email.example.com";
  ctx.local = "strong-bad";
  ctx.sender_domain = "email.example.com";
  ctx.domain = "email.example.com";
  ctx.ip = *IpAddress::Parse("2001:db8::cb01");
  ctx.helo = "mx.example.org";
  ctx.validated_domain = [] { return std::string("mail.example.com"); };
  std::string_view m = s.substr(0, 512);
  for (bool exp : {false, true}) {
    auto out = ExpandMacros(m, ctx, exp);
    FUZZ_CHECK(out.ok() == ValidMacroString(m, exp));
  }
  std::string t = TruncateDomain(s.substr(0, 1024));
  if (t.size() > kMaxDomainLength) FUZZ_CHECK(t.find('.') == std::string::npos);
}

void CheckEvaluation(std::string_view s) {
  size_t nl = s.find('\n');
  std::string record = "v=spf1 " + std::string(s.substr(0, nl));
  auto table = DnsTable::Parse(nl == std::string_view::npos ? "" : s.substr(nl + 1));
  if (!table.ok()) return;
  table->AddTxt("d.example", record);
  SpfRequest req;
  bool v6 = hato::fuzz::Hash(s) & 1;
  req.ip = *IpAddress::Parse(v6 ? "2001:db8::1" : "192.0.2.1");
  req.helo = "h.example";
  req.mail_from = "user@d.example";
  SpfOutcome out = CheckMailFrom(*table, req);
  FUZZ_CHECK(table->queries().size() <= kMaxQueries);
  if (out.result != SpfResult::kFail) FUZZ_CHECK(out.explanation.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  CheckRecord(s);
  CheckMacros(s);
  CheckEvaluation(s);
  return 0;
}
