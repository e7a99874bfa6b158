// libFuzzer target for the recorded aggregate-report lines read back when the
// daily reports are built (src/reports/format.h: ParseTlsSession,
// ParseDmarcRow, then TlsReportJson and DmarcReportXml as reports/send.cc
// does). Input: a DATA/reports/KIND/YYYYMMDD.jsonl file, one JSON object a line.
//
//   * a parsed session/row has its required fields; written back with
//     ToJsonLine it re-parses equal, and ToJsonLine is stable;
//   * each policy domain's RFC 8460 report is a JSON object whose summary
//     counts add up to that domain's sessions;
//   * each policy domain's RFC 7489 XML report is valid UTF-8 with no control
//     characters but tab, CR and LF (nor U+FFFE/U+FFFF, XML 1.0 2.2), one <record> per distinct row
//     (no field can open or close an element), and its counts add up to the rows.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/strings.h"
#include "fuzz_util.h"
#include "reports/format.h"

namespace r = hato::reports;
namespace json = boost::json;

namespace {

bool Same(const r::TlsSession& a, const r::TlsSession& b) {
  return a.policy_domain == b.policy_domain && a.policy_type == b.policy_type &&
         a.policy_strings == b.policy_strings && a.mx_patterns == b.mx_patterns &&
         a.mx_host == b.mx_host && a.receiving_ip == b.receiving_ip && a.result == b.result;
}

bool Same(const r::DmarcRow& a, const r::DmarcRow& b) {
  return a.source_ip == b.source_ip && a.header_from == b.header_from &&
         a.policy_domain == b.policy_domain && a.envelope_from == b.envelope_from &&
         a.disposition == b.disposition && a.dkim_pass == b.dkim_pass && a.spf_pass == b.spf_pass &&
         a.dkim == b.dkim && a.spf_domain == b.spf_domain && a.spf_result == b.spf_result;
}

size_t Count(std::string_view s, std::string_view what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::vector<r::TlsSession>> tls;
  std::map<std::string, std::vector<r::DmarcRow>> dmarc;

  size_t pos = 0;
  while (pos < in.size()) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) nl = in.size();
    std::string_view line = in.substr(pos, nl - pos);
    pos = nl + 1;
    if (auto s = r::ParseTlsSession(line)) {
      FUZZ_CHECK(!s->policy_domain.empty() && !s->policy_type.empty() && !s->result.empty());
      std::string out = r::ToJsonLine(*s);
      FUZZ_CHECK(out.find('\n') == std::string::npos);
      auto again = r::ParseTlsSession(out);
      FUZZ_CHECK(again && Same(*s, *again));
      FUZZ_CHECK_EQ_STR(r::ToJsonLine(*again), out);
      tls[s->policy_domain].push_back(std::move(*s));
    }
    if (auto d = r::ParseDmarcRow(line)) {
      FUZZ_CHECK(!d->policy_domain.empty() && !d->header_from.empty() && !d->disposition.empty());
      std::string out = r::ToJsonLine(*d);
      FUZZ_CHECK(out.find('\n') == std::string::npos);
      auto again = r::ParseDmarcRow(out);
      FUZZ_CHECK(again && Same(*d, *again));
      FUZZ_CHECK_EQ_STR(r::ToJsonLine(*again), out);
      dmarc[d->policy_domain].push_back(std::move(*d));
    }
  }

  r::ReportMeta meta{"Example Org", "reports@example.org", "20261201.x@mx.example.org",
                     1'796'083'200, 1'796'169'599};
  for (const auto& [domain, sessions] : tls) {
    std::string report = r::TlsReportJson(meta, domain, sessions);
    boost::system::error_code ec;
    json::value v = json::parse(report, ec);
    FUZZ_CHECK(!ec && v.is_object());
    int64_t total = 0;
    for (const auto& p : v.as_object().at("policies").as_array()) {
      const auto& sum = p.as_object().at("summary").as_object();
      total += sum.at("total-successful-session-count").as_int64() +
               sum.at("total-failure-session-count").as_int64();
    }
    FUZZ_CHECK(total == static_cast<int64_t>(sessions.size()));
  }
  for (const auto& [domain, rows] : dmarc) {
    r::PublishedPolicy policy;
    policy.domain = domain;
    std::string xml = r::DmarcReportXml(meta, policy, rows);
    FUZZ_CHECK(hato::IsValidUtf8(xml));
    for (unsigned char c : xml) FUZZ_CHECK(c >= 0x20 || c == '\t' || c == '\n' || c == '\r');
    // XML 1.0 2.2: U+FFFE and U+FFFF are not characters either.
    FUZZ_CHECK(xml.find("\xef\xbf\xbe") == std::string::npos);
    FUZZ_CHECK(xml.find("\xef\xbf\xbf") == std::string::npos);
    std::set<std::string> distinct;
    for (const auto& row : rows) distinct.insert(r::ToJsonLine(row));
    FUZZ_CHECK(Count(xml, "<record>") == distinct.size());
    FUZZ_CHECK(Count(xml, "</record>") == distinct.size());
    FUZZ_CHECK(Count(xml, "<feedback>") == 1 && Count(xml, "</feedback>") == 1);
    size_t counted = 0;
    for (size_t p = xml.find("<count>"); p != std::string::npos; p = xml.find("<count>", p + 1)) {
      counted += std::stoul(xml.substr(p + 7, xml.find('<', p + 7) - p - 7));
    }
    FUZZ_CHECK(counted == rows.size());
  }
  return 0;
}
