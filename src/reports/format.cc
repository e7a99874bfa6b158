#include "reports/format.h"

#include <zlib.h>

#include <boost/json.hpp>
#include <ctime>
#include <map>
#include <tuple>

#include "base/strings.h"
#include "http/url.h"
#include "smtp/address.h"

namespace hato::reports {
namespace json = boost::json;

namespace {

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return "";
  return std::string(v->as_string());
}

std::vector<std::string> StrList(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) return out;
  for (const auto& e : v->as_array()) {
    if (e.is_string()) out.emplace_back(e.as_string());
  }
  return out;
}

std::optional<json::object> ParseObject(std::string_view line) {
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    // XML 1.0 2.2 excludes U+FFFE and U+FFFF (UTF-8 EF BF BE/BF) as well:
    // dropped, or the report is not well-formed (found by fuzz/fuzz_reports.cc).
    if (s.substr(i, 3) == "\xef\xbf\xbe" || s.substr(i, 3) == "\xef\xbf\xbf") {
      i += 2;
      continue;
    }
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 allows no control characters but tab, CR, LF.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
        out += c;
    }
  }
  return out;
}

// A header field value on one line (no CR/LF can end the header early).
std::string OneLine(std::string_view s) {
  std::string out;
  for (char c : s) out += (c == '\r' || c == '\n') ? ' ' : c;
  return out;
}

}  // namespace

std::string ToJsonLine(const TlsSession& s) {
  json::object o{{"domain", s.policy_domain},
                 {"type", s.policy_type},
                 {"policy", Strings(s.policy_strings)},
                 {"mx_patterns", Strings(s.mx_patterns)},
                 {"mx", s.mx_host},
                 {"ip", s.receiving_ip},
                 {"result", s.result}};
  return json::serialize(o);
}

std::optional<TlsSession> ParseTlsSession(std::string_view line) {
  auto o = ParseObject(line);
  if (!o) return std::nullopt;
  TlsSession s;
  s.policy_domain = Str(*o, "domain");
  s.policy_type = Str(*o, "type");
  s.policy_strings = StrList(*o, "policy");
  s.mx_patterns = StrList(*o, "mx_patterns");
  s.mx_host = Str(*o, "mx");
  s.receiving_ip = Str(*o, "ip");
  s.result = Str(*o, "result");
  if (s.policy_domain.empty() || s.result.empty() || s.policy_type.empty()) return std::nullopt;
  return s;
}

std::string ToJsonLine(const DmarcRow& r) {
  json::array dkim;
  for (const auto& [d, res] : r.dkim)
    dkim.push_back(json::array{json::string(d), json::string(res)});
  json::object o{{"ip", r.source_ip},
                 {"from", r.header_from},
                 {"policy_domain", r.policy_domain},
                 {"envelope_from", r.envelope_from},
                 {"disposition", r.disposition},
                 {"dkim_pass", r.dkim_pass},
                 {"spf_pass", r.spf_pass},
                 {"dkim", std::move(dkim)},
                 {"spf_domain", r.spf_domain},
                 {"spf_result", r.spf_result}};
  return json::serialize(o);
}

std::optional<DmarcRow> ParseDmarcRow(std::string_view line) {
  auto o = ParseObject(line);
  if (!o) return std::nullopt;
  DmarcRow r;
  r.source_ip = Str(*o, "ip");
  r.header_from = Str(*o, "from");
  r.policy_domain = Str(*o, "policy_domain");
  r.envelope_from = Str(*o, "envelope_from");
  r.disposition = Str(*o, "disposition");
  const json::value* dp = o->if_contains("dkim_pass");
  const json::value* sp = o->if_contains("spf_pass");
  r.dkim_pass = dp && dp->is_bool() && dp->as_bool();
  r.spf_pass = sp && sp->is_bool() && sp->as_bool();
  if (const json::value* d = o->if_contains("dkim"); d && d->is_array()) {
    for (const auto& e : d->as_array()) {
      if (e.is_array() && e.as_array().size() == 2 && e.as_array()[0].is_string() &&
          e.as_array()[1].is_string()) {
        r.dkim.emplace_back(std::string(e.as_array()[0].as_string()),
                            std::string(e.as_array()[1].as_string()));
      }
    }
  }
  r.spf_domain = Str(*o, "spf_domain");
  r.spf_result = Str(*o, "spf_result");
  if (r.policy_domain.empty() || r.header_from.empty() || r.disposition.empty()) {
    return std::nullopt;
  }
  return r;
}

std::string Rfc3339(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string TlsReportJson(const ReportMeta& m, std::string_view policy_domain,
                          const std::vector<TlsSession>& sessions) {
  // Sessions grouped by the policy that applied (RFC 8460 4.4: one entry
  // per policy), failures by result type, MX and receiving IP.
  struct Group {
    const TlsSession* first = nullptr;
    int64_t ok = 0, failed = 0;
    std::map<std::tuple<std::string, std::string, std::string>, int64_t> failures;
  };
  std::map<std::tuple<std::string, std::vector<std::string>>, Group> groups;
  for (const auto& s : sessions) {
    if (s.policy_domain != policy_domain) continue;
    Group& g = groups[{s.policy_type, s.policy_strings}];
    if (!g.first) g.first = &s;
    if (s.result == "success") {
      ++g.ok;
    } else {
      ++g.failed;
      ++g.failures[{s.result, s.mx_host, s.receiving_ip}];
    }
  }
  json::array policies;
  for (const auto& [key, g] : groups) {
    json::object policy{{"policy-type", g.first->policy_type},
                        {"policy-domain", std::string(policy_domain)}};
    if (!g.first->policy_strings.empty())
      policy["policy-string"] = Strings(g.first->policy_strings);
    if (!g.first->mx_patterns.empty()) policy["mx-host"] = Strings(g.first->mx_patterns);
    json::array details;
    for (const auto& [f, n] : g.failures) {
      json::object d{{"result-type", std::get<0>(f)}, {"failed-session-count", n}};
      if (!std::get<1>(f).empty()) d["receiving-mx-hostname"] = std::get<1>(f);
      if (!std::get<2>(f).empty()) d["receiving-ip"] = std::get<2>(f);
      details.push_back(std::move(d));
    }
    json::object p{{"policy", std::move(policy)},
                   {"summary", json::object{{"total-successful-session-count", g.ok},
                                            {"total-failure-session-count", g.failed}}}};
    if (!details.empty()) p["failure-details"] = std::move(details);
    policies.push_back(std::move(p));
  }
  json::object report{{"organization-name", m.org_name},
                      {"date-range", json::object{{"start-datetime", Rfc3339(m.begin)},
                                                  {"end-datetime", Rfc3339(m.end)}}},
                      {"contact-info", m.contact},
                      {"report-id", m.report_id},
                      {"policies", std::move(policies)}};
  return json::serialize(report);
}

std::string DmarcReportXml(const ReportMeta& m, const PublishedPolicy& policy,
                           const std::vector<DmarcRow>& rows) {
  // Equal rows (every reported field the same) become one <record> with a count.
  std::map<std::string, std::pair<const DmarcRow*, int64_t>> counted;
  std::vector<std::string> order;
  for (const auto& r : rows) {
    std::string key = ToJsonLine(r);
    auto [it, added] = counted.try_emplace(key, &r, 0);
    ++it->second.second;
    if (added) order.push_back(key);
  }
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n";
  x += "  <version>1.0</version>\n";
  x += "  <report_metadata>\n    <org_name>" + XmlEscape(m.org_name) + "</org_name>\n    <email>" +
       XmlEscape(m.contact) + "</email>\n    <report_id>" + XmlEscape(m.report_id) +
       "</report_id>\n    <date_range>\n      <begin>" + std::to_string(m.begin) +
       "</begin>\n      <end>" + std::to_string(m.end) +
       "</end>\n    </date_range>\n  </report_metadata>\n";
  x += "  <policy_published>\n    <domain>" + XmlEscape(policy.domain) + "</domain>\n    <adkim>" +
       policy.adkim + "</adkim>\n    <aspf>" + policy.aspf + "</aspf>\n    <p>" + policy.p +
       "</p>\n    <sp>" + policy.sp + "</sp>\n    <pct>" + std::to_string(policy.pct) +
       "</pct>\n  </policy_published>\n";
  for (const auto& key : order) {
    const auto& [r, n] = counted[key];
    x += "  <record>\n    <row>\n      <source_ip>" + XmlEscape(r->source_ip) +
         "</source_ip>\n      <count>" + std::to_string(n) +
         "</count>\n      <policy_evaluated>\n        <disposition>" + XmlEscape(r->disposition) +
         "</disposition>\n        <dkim>" + (r->dkim_pass ? "pass" : "fail") +
         "</dkim>\n        <spf>" + (r->spf_pass ? "pass" : "fail") +
         "</spf>\n      </policy_evaluated>\n    </row>\n";
    x += "    <identifiers>\n";
    if (!r->envelope_from.empty()) {
      x += "      <envelope_from>" + XmlEscape(r->envelope_from) + "</envelope_from>\n";
    }
    x += "      <header_from>" + XmlEscape(r->header_from) + "</header_from>\n    </identifiers>\n";
    x += "    <auth_results>\n";
    for (const auto& [d, res] : r->dkim) {
      x += "      <dkim>\n        <domain>" + XmlEscape(d) + "</domain>\n        <result>" +
           XmlEscape(res) + "</result>\n      </dkim>\n";
    }
    x += "      <spf>\n        <domain>" + XmlEscape(r->spf_domain) +
         "</domain>\n        <result>" + XmlEscape(r->spf_result) +
         "</result>\n      </spf>\n    </auth_results>\n  </record>\n";
  }
  x += "</feedback>\n";
  return x;
}

// The URIs of a comma-separated rua/ruf list (RFC 7489 6.4, RFC 8460 3), trimmed.
static std::vector<std::string_view> RuaUris(std::string_view rua) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= rua.size()) {
    size_t comma = rua.find(',', start);
    out.push_back(
        TrimSpaces(rua.substr(start, comma == std::string_view::npos ? rua.npos : comma - start)));
    start = comma == std::string_view::npos ? rua.size() + 1 : comma + 1;
  }
  return out;
}

std::vector<std::string> MailtoAddresses(std::string_view rua) {
  std::vector<std::string> out;
  for (std::string_view uri : RuaUris(rua)) {
    if (uri.size() <= 7 || AsciiLower(uri.substr(0, 7)) != "mailto:") continue;
    uri.remove_prefix(7);
    // RFC 7489 6.4: a "!" size limit may follow; RFC 6068 hfields ("?") are not used.
    uri = uri.substr(0, uri.find_first_of("!?"));
    std::string addr;
    bool bad = false;
    for (size_t i = 0; i < uri.size(); ++i) {
      if (uri[i] == '%' && i + 2 < uri.size()) {
        auto hex = [](char c) -> int {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        int h = hex(uri[i + 1]), l = hex(uri[i + 2]);
        if (h < 0 || l < 0) {
          bad = true;
          break;
        }
        addr += static_cast<char>(h * 16 + l);
        i += 2;
      } else {
        addr += uri[i];
      }
    }
    size_t at = addr.rfind('@');
    if (bad || at == std::string::npos || at == 0 || at + 1 == addr.size() ||
        addr.find_first_of(" \t\r\n<>,;\"") != std::string::npos) {
      continue;
    }
    // The address becomes a RCPT TO and a To: field: it must be a mailbox
    // (RFC 5321 4.1.2, RFC 6531 UTF-8), not "%00" or other bytes a
    // percent-escape can smuggle in (found by fuzz/fuzz_report_rua.cc).
    if (!smtp::ParseMailbox(addr, /*allow_utf8=*/true)) continue;
    addr = addr.substr(0, at + 1) + AsciiLower(addr.substr(at + 1));
    out.push_back(std::move(addr));
  }
  return out;
}

std::vector<std::string> HttpsRuaUrls(std::string_view rua) {
  std::vector<std::string> out;
  for (std::string_view uri : RuaUris(rua)) {
    if (http::ParseHttpsUrl(uri)) out.emplace_back(uri);
  }
  return out;
}

std::optional<std::string> TlsRptRua(std::string_view txt) {
  // RFC 8460 3: "v=TLSRPTv1" first, then "; rua=..." (other fields ignored).
  std::string_view t = TrimSpaces(txt);
  if (t.substr(0, 10) != "v=TLSRPTv1") return std::nullopt;
  t.remove_prefix(10);
  std::string_view rest = TrimSpaces(t);
  if (!rest.empty() && rest.front() != ';') return std::nullopt;
  size_t start = 0;
  while (start < rest.size()) {
    size_t semi = rest.find(';', start);
    std::string_view field =
        TrimSpaces(rest.substr(start, semi == std::string_view::npos ? rest.npos : semi - start));
    start = semi == std::string_view::npos ? rest.size() : semi + 1;
    if (field.size() > 4 && field.substr(0, 4) == "rua=") return std::string(field.substr(4));
  }
  return std::nullopt;
}

std::string Gzip(std::string_view data) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer (RFC 1952).
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return "";
  }
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : "";
}

std::string ReportFilename(std::string_view submitter, std::string_view policy_domain,
                           int64_t begin, int64_t end, std::string_view unique_id,
                           std::string_view ext) {
  // Appended piece by piece: GCC 12's -Wrestrict misfires on "!" + string.
  std::string f(submitter);
  f += '!';
  f += policy_domain;
  f += '!';
  f += std::to_string(begin);
  f += '!';
  f += std::to_string(end);
  if (!unique_id.empty()) {
    f += '!';
    f += unique_id;
  }
  f += '.';
  f += ext;
  return f;
}

std::string ComposeReportMail(const ReportMail& m) {
  std::string boundary = "=_hato_report_" + m.message_id.substr(0, m.message_id.find('@'));
  std::string to;
  for (const auto& a : m.to) to += (to.empty() ? "<" : ", <") + a + ">";
  std::string h = "From: <" + m.from + ">\r\nTo: " + to + "\r\nSubject: " + OneLine(m.subject) +
                  "\r\nDate: " + m.date + "\r\nMessage-ID: <" + m.message_id + ">\r\n";
  for (const auto& [name, value] : m.extra_headers) h += name + ": " + OneLine(value) + "\r\n";
  h += "MIME-Version: 1.0\r\n";
  if (!m.report_type.empty()) {
    h += "Content-Type: multipart/report; report-type=\"" + m.report_type + "\";\r\n\tboundary=\"" +
         boundary + "\"\r\n";
  } else {
    h += "Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n";
  }
  std::string b = "\r\nThis is a multi-part message in MIME format.\r\n\r\n--" + boundary +
                  "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 7bit\r\n\r\n";
  for (char c : m.text) {
    if (c == '\n') b += '\r';
    b += c;
  }
  if (b.back() != '\n') b += "\r\n";
  b += "\r\n--" + boundary + "\r\nContent-Type: " + m.attachment_type + "\r\n" +
       "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n\tfilename=\"" +
       m.filename + "\"\r\n\r\n";
  std::string b64 = Base64Encode(m.attachment);
  for (size_t i = 0; i < b64.size(); i += 76) b += b64.substr(i, 76) + "\r\n";
  b += "\r\n--" + boundary + "--\r\n";
  return h + b;
}

}  // namespace hato::reports
