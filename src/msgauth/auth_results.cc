#include "msgauth/auth_results.h"

#include "base/strings.h"
#include "mime/header.h"

namespace hato::msgauth {
namespace {

// token (RFC 2045 section 5.1): no SP, CTLs or tspecials.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f ||
        std::string_view("()<>@,;:\\\"/[]?=").find(c) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// pvalue = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
bool IsAddressLike(std::string_view s) {
  size_t at = s.rfind('@');
  std::string_view local = at == std::string_view::npos ? "" : s.substr(0, at);
  std::string_view domain = at == std::string_view::npos ? s : s.substr(at + 1);
  if (domain.empty()) return false;
  for (char c : domain) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  for (unsigned char c : local) {
    bool ok = c > 0x20 && c < 0x7f &&
              std::string_view("()<>[]:;@\\,\"").find(c) == std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\r' || c == '\n') continue;
    out += c;
  }
  return out + "\"";
}

std::string Comment(std::string_view s) {
  std::string out = "(";
  for (char c : s) {
    if (c == '(' || c == ')' || c == '\\') out += '\\';
    if (c == '\r' || c == '\n') continue;
    out += c;
  }
  return out + ")";
}

}  // namespace

std::string FormatAuthResults(std::string_view authserv_id,
                              const std::vector<AuthMethod>& methods) {
  std::string out = "Authentication-Results: " + std::string(authserv_id) + ";";
  if (methods.empty()) return out + " none\r\n";
  for (size_t i = 0; i < methods.size(); ++i) {
    const AuthMethod& m = methods[i];
    out += "\r\n\t" + m.method + "=" + m.result;
    if (!m.comment.empty()) {
      out += ' ';
      out += Comment(m.comment);
    }
    for (const auto& [prop, value] : m.properties) {
      out += ' ';
      out += prop;
      out += '=';
      out += IsToken(value) || IsAddressLike(value) ? value : Quote(value);
    }
    if (i + 1 < methods.size()) out += ";";
  }
  return out + "\r\n";
}

std::string RemoveOwnResults(std::string_view message, std::string_view authserv_id) {
  auto scan = mime::internal::ScanHeader(message, std::string_view::npos);
  std::string out;
  size_t copied = 0;
  for (const auto& f : scan.fields) {
    if (!EqualsIgnoreCase(f.name, "Authentication-Results")) continue;
    std::string v = mime::internal::StripComments(mime::internal::Unfold(f.value));
    std::string_view id = TrimSpaces(std::string_view(v).substr(0, v.find(';')));
    // authserv-id may be followed by a version number (section 2.2).
    id = id.substr(0, id.find_first_of(" \t"));
    if (!EqualsIgnoreCase(id, authserv_id)) continue;
    out.append(message.substr(copied, f.begin - copied));
    copied = f.end;
  }
  out.append(message.substr(copied));
  return out;
}

InboundResult CheckInbound(DnsLookup& dns, const InboundCheck& in, std::string_view message) {
  InboundResult r;
  SpfRequest req;
  req.ip = in.ip;
  req.helo = in.helo;
  req.mail_from = in.mail_from;
  req.receiver = in.authserv_id;
  req.now = in.now;
  r.helo = CheckHelo(dns, req);
  // RFC 7208 section 2.4: for the null path, the HELO result is the
  // MAIL FROM result.
  r.spf = in.mail_from.empty() ? r.helo : CheckMailFrom(dns, req);

  VerifyOptions vo = in.dkim;
  if (vo.now == 0) vo.now = in.now;
  r.dkim = Verify(message, dns, vo);

  std::vector<AuthMethod> methods;
  AuthMethod spf{"spf", std::string(SpfResultName(r.spf.result)), r.spf.reason, {}};
  if (in.mail_from.empty()) {
    spf.properties.push_back({"smtp.helo", in.helo});
  } else {
    spf.properties.push_back({"smtp.mailfrom", in.mail_from});
  }
  methods.push_back(std::move(spf));

  DmarcInput di;
  di.spf = r.spf.result;
  di.spf_domain = r.spf.domain;
  di.sample = in.dmarc_sample;
  di.psl = in.psl;
  if (r.dkim.empty()) {
    methods.push_back(AuthMethod{"dkim", "none", "", {}});
  }
  for (const auto& d : r.dkim) {
    AuthMethod m{"dkim", std::string(DkimStatusName(d.status)), d.reason, {}};
    if (d.testing) m.comment += m.comment.empty() ? "test mode" : "; test mode";
    if (!d.domain.empty()) {
      m.properties.push_back({"header.d", d.domain});
      m.properties.push_back({"header.s", d.selector});
      m.properties.push_back({"header.a", d.algorithm});
      m.properties.push_back({"header.b", d.b_prefix});
    }
    if (d.status == DkimStatus::kPass) di.dkim_pass_domains.push_back(d.domain);
    methods.push_back(std::move(m));
  }

  auto from = FromDomain(message);
  if (!from) {
    r.dmarc.status = DmarcStatus::kPermError;
    r.dmarc.reason = from.error().message;
    methods.push_back(AuthMethod{"dmarc", "permerror", r.dmarc.reason, {}});
  } else {
    di.from_domain = *from;
    r.dmarc = CheckDmarc(dns, di);
    AuthMethod m{"dmarc", std::string(DmarcStatusName(r.dmarc.status)), "", {}};
    if (r.dmarc.status == DmarcStatus::kPass || r.dmarc.status == DmarcStatus::kFail) {
      m.comment = "p=" + std::string(DmarcPolicyName(r.dmarc.requested)) +
                  " dis=" + std::string(DmarcPolicyName(r.dmarc.applied));
    } else {
      m.comment = r.dmarc.reason;
    }
    m.properties.push_back({"header.from", *from});
    methods.push_back(std::move(m));
  }
  r.header = FormatAuthResults(in.authserv_id, methods);
  return r;
}

}  // namespace hato::msgauth
