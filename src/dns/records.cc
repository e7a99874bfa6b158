#include "dns/records.h"

#include "base/digest.h"
#include "base/strings.h"

namespace hato::dns {

Status ValidateHostName(std::string_view name, std::string_view what) {
  auto bad = [&](const std::string& why) -> Status {
    return Err(ErrorKind::kInvalid,
               "invalid " + std::string(what) + " '" + std::string(name) + "': " + why);
  };
  if (name.empty()) return bad("empty");
  if (name.size() > kMaxNameLength) {
    return bad("longer than " + std::to_string(kMaxNameLength) + " characters");
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return bad("empty label (two dots, or a dot at an end)");
    if (label.size() > kMaxLabelLength) {
      return bad("label longer than " + std::to_string(kMaxLabelLength) + " characters");
    }
    if (label.front() == '-' || label.back() == '-') return bad("label starts or ends with '-'");
    for (char c : label) {
      bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) {
        return bad(std::string("character '") + c +
                   "' not allowed (letters, digits, '-' and '.' only)");
      }
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return Ok();
}

std::vector<Record> DomainRecords(const RecordInput& in) {
  const std::string& d = in.domain;
  const std::string& h = in.hostname;
  std::vector<Record> out;
  out.push_back({d, "MX", "10 " + h + ".", Need::kRequired,
                 "mail for " + d + " goes to " + h + " (RFC 5321 5.1)"});
  bool v4 = false, v6 = false;
  for (const auto& a : in.addresses) {
    bool is_v6 = a.find(':') != std::string::npos;
    (is_v6 ? v6 : v4) = true;
    out.push_back({h, is_v6 ? "AAAA" : "A", a, Need::kRequired,
                   "the address of " + h + "; its reverse DNS (PTR) should name " + h});
  }
  if (!v4) {
    out.push_back({h, "A", "<public IPv4 of this server>", Need::kRequired,
                   "the address of " + h + "; its reverse DNS (PTR) should name " + h, true});
  }
  if (!v6) {
    out.push_back({h, "AAAA", "<public IPv6 of this server>", Need::kRecommended,
                   "only if the server has IPv6; its PTR should name " + h, true});
  }
  out.push_back({d, "TXT", "v=spf1 mx -all", Need::kRequired,
                 "SPF: only the MX hosts send mail for " + d + " (RFC 7208)"});
  if (!in.dkim_record.empty()) {
    out.push_back({in.dkim_selector + "._domainkey." + d, "TXT", in.dkim_record, Need::kRequired,
                   "DKIM public key of the signing key (RFC 6376 3.6.1)"});
  }
  out.push_back({"_dmarc." + d, "TXT", "v=DMARC1; p=reject; rua=mailto:postmaster@" + d,
                 Need::kRequired,
                 "DMARC: reject mail that fails SPF and DKIM alignment (RFC 7489 6.1)"});
  if (!in.mta_sts_id.empty()) {
    out.push_back({"_mta-sts." + d, "TXT", "v=STSv1; id=" + in.mta_sts_id, Need::kRecommended,
                   "MTA-STS: senders require TLS to " + h +
                       " (RFC 8461; the id changes with the policy Hato serves)"});
    out.push_back({"mta-sts." + d, "CNAME", h + ".", Need::kRecommended,
                   "the HTTPS host of the MTA-STS policy (RFC 8461 3.2; on the certificate)"});
  }
  out.push_back({"_smtp._tls." + d, "TXT", "v=TLSRPTv1; rua=mailto:postmaster@" + d,
                 Need::kRecommended, "TLS-RPT: where senders report TLS failures (RFC 8460 3)"});
  struct Service {
    const char* name;
    const char* port;
  };
  // RFC 6186 3.1 (and RFC 8314 5.1 for implicit TLS): mail clients find the
  // servers of an address's domain.
  for (Service s : {Service{"_submissions._tcp.", "465"}, Service{"_submission._tcp.", "587"},
                    Service{"_imaps._tcp.", "993"}, Service{"_imap._tcp.", "143"},
                    Service{"_pop3s._tcp.", "995"}, Service{"_pop3._tcp.", "110"}}) {
    out.push_back({s.name + d, "SRV", std::string("0 1 ") + s.port + " " + h + ".",
                   Need::kRecommended, "mail client set-up (RFC 6186)"});
  }
  out.push_back({"autoconfig." + d, "CNAME", h + ".", Need::kRecommended,
                 "mail client set-up (Thunderbird autoconfig)"});
  return out;
}

std::string ZoneLine(const Record& r) {
  std::string value = r.value;
  if (r.type == "TXT") {
    value.clear();
    for (size_t i = 0; i < r.value.size() || i == 0; i += 255) {
      if (i) value += ' ';
      value += '"';
      value.append(r.value, i, 255);
      value += '"';
    }
  }
  return r.name + ". 3600 IN " + r.type + " " + value;
}

std::string MtaStsPolicy(std::string_view hostname, std::string_view mode,
                         const std::vector<std::string>& mx, int max_age) {
  // RFC 8461 3.2: CRLF line ends; one "mx:" line per pattern; max_age in seconds.
  std::string out =
      "version: STSv1\r\nmode: " + std::string(mode) + "\r\nmx: " + std::string(hostname) + "\r\n";
  for (const auto& m : mx) {
    if (m != hostname) out += "mx: " + m + "\r\n";
  }
  return out + "max_age: " + std::to_string(max_age) + "\r\n";
}

std::string MtaStsPolicyId(std::string_view policy) {
  return HexEncode(Sha256(policy)).substr(0, 20);
}

}  // namespace hato::dns
