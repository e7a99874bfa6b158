#include "web/autoconfig.h"

#include <cstdlib>

#include "base/digest.h"
#include "base/strings.h"
#include "web/escape.h"

namespace hato::web {
namespace {

bool IsAtext(char c) {  // RFC 5322 section 3.2.3
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool IsLdh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

int PortOf(const std::string& hostport) {
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) return 0;
  int port = std::atoi(hostport.c_str() + colon + 1);
  return port > 0 && port < 65536 ? port : 0;
}

// A UUID (RFC 9562 layout, version 8: custom) derived from `seed`, so the
// same address always gets the same profile identifiers.
std::string UuidFrom(std::string_view seed) {
  std::string h = HexEncode(Sha256(seed)).substr(0, 32);
  h[12] = '8';
  h[16] = "89ab"[h[16] % 4];
  return AsciiUpper(h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" +
                    h.substr(16, 4) + "-" + h.substr(20, 12));
}

}  // namespace

std::string_view SocketName(Socket s) {
  switch (s) {
    case Socket::kSsl:
      return "SSL";
    case Socket::kStartTls:
      return "STARTTLS";
    case Socket::kPlain:
      return "plain";
  }
  return "plain";
}

std::optional<std::string> ParseEmailAddress(std::string_view s) {
  if (s.empty() || s.size() > 254) return std::nullopt;
  size_t at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at > 64 || at + 1 == s.size()) return std::nullopt;
  std::string_view local = s.substr(0, at), domain = s.substr(at + 1);
  if (local.front() == '.' || local.back() == '.') return std::nullopt;
  char prev = 0;
  for (char c : local) {
    if (c == '.' ? prev == '.' : !IsAtext(c)) return std::nullopt;
    prev = c;
  }
  size_t start = 0;
  int labels = 0;
  while (start <= domain.size()) {
    size_t dot = domain.find('.', start);
    std::string_view label =
        domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return std::nullopt;
    for (char c : label)
      if (!IsLdh(c)) return std::nullopt;
    ++labels;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (labels < 1) return std::nullopt;
  return std::string(local) + "@" + AsciiLower(domain);
}

ClientSettings SettingsFor(const config::Config& cfg, std::string_view domain) {
  ClientSettings s;
  s.domain = AsciiLower(domain);
  const std::string& host = cfg.hostname;
  bool tls = !cfg.tls_cert.empty();
  auto add = [&](std::vector<MailServer>& to, const char* type, const std::string& listen,
                 Socket socket) {
    int port = PortOf(listen);
    if (port) to.push_back(MailServer{type, host, port, socket});
  };
  add(s.incoming, "imap", cfg.listen.imaps, Socket::kSsl);
  add(s.incoming, "imap", cfg.listen.imap, tls ? Socket::kStartTls : Socket::kPlain);
  add(s.incoming, "pop3", cfg.listen.pop3, tls ? Socket::kStartTls : Socket::kPlain);
  add(s.outgoing, "smtp", cfg.listen.submissions, Socket::kSsl);
  add(s.outgoing, "smtp", cfg.listen.submission, tls ? Socket::kStartTls : Socket::kPlain);
  return s;
}

std::string ThunderbirdXml(const ClientSettings& s, std::string_view address) {
  std::string user = address.empty() ? "%EMAILADDRESS%" : HtmlEscape(address);
  std::string d = HtmlEscape(s.domain);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n";
  out += "  <emailProvider id=\"" + d + "\">\n";
  out += "    <domain>" + d + "</domain>\n";
  out += "    <displayName>Hato mail (" + d + ")</displayName>\n";
  out += "    <displayShortName>" + d + "</displayShortName>\n";
  auto server = [&](const char* element, const MailServer& m) {
    out += "    <" + std::string(element) + " type=\"" + m.type + "\">\n";
    out += "      <hostname>" + HtmlEscape(m.host) + "</hostname>\n";
    out += "      <port>" + std::to_string(m.port) + "</port>\n";
    out += "      <socketType>" + std::string(SocketName(m.socket)) + "</socketType>\n";
    out += "      <authentication>password-cleartext</authentication>\n";
    out += "      <username>" + user + "</username>\n";
    out += "    </" + std::string(element) + ">\n";
  };
  for (const auto& m : s.incoming) server("incomingServer", m);
  for (const auto& m : s.outgoing) server("outgoingServer", m);
  out += "  </emailProvider>\n</clientConfig>\n";
  return out;
}

std::string AppleMobileConfig(const ClientSettings& s, std::string_view address) {
  const MailServer* in = nullptr;
  for (const auto& m : s.incoming) {
    if (m.type == "imap") {
      in = &m;
      break;
    }
  }
  const MailServer* out_server = s.outgoing.empty() ? nullptr : &s.outgoing.front();
  std::string a = HtmlEscape(address);
  std::string d = HtmlEscape(s.domain);
  // Reverse-DNS identifiers (com.example.mail...), from the domain's labels.
  std::string reverse;
  for (size_t end = s.domain.size(); end != std::string::npos && end > 0;) {
    size_t dot = s.domain.rfind('.', end - 1);
    size_t start = dot == std::string::npos ? 0 : dot + 1;
    if (!reverse.empty()) reverse += '.';
    reverse += s.domain.substr(start, end - start);
    end = dot;
  }
  reverse = HtmlEscape(reverse) + ".mail";
  auto key = [](const std::string& k, const std::string& v) {
    return "      <key>" + k + "</key><string>" + v + "</string>\n";
  };
  auto integer = [](const std::string& k, int v) {
    return "      <key>" + k + "</key><integer>" + std::to_string(v) + "</integer>\n";
  };
  auto boolean = [](const std::string& k, bool v) {
    return "      <key>" + k + "</key>" + (v ? "<true/>" : "<false/>") + "\n";
  };
  std::string x =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
      "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
      "<plist version=\"1.0\">\n<dict>\n  <key>PayloadContent</key>\n  <array>\n    <dict>\n";
  x += key("EmailAccountDescription", a);
  x += key("EmailAccountName", a);
  x += key("EmailAccountType", "EmailTypeIMAP");
  x += key("EmailAddress", a);
  if (in) {
    x += key("IncomingMailServerAuthentication", "EmailAuthPassword");
    x += key("IncomingMailServerHostName", HtmlEscape(in->host));
    x += integer("IncomingMailServerPortNumber", in->port);
    x += boolean("IncomingMailServerUseSSL", in->socket != Socket::kPlain);
    x += key("IncomingMailServerUsername", a);
  }
  if (out_server) {
    x += key("OutgoingMailServerAuthentication", "EmailAuthPassword");
    x += key("OutgoingMailServerHostName", HtmlEscape(out_server->host));
    x += integer("OutgoingMailServerPortNumber", out_server->port);
    x += boolean("OutgoingMailServerUseSSL", out_server->socket != Socket::kPlain);
    x += key("OutgoingMailServerUsername", a);
    x += boolean("OutgoingPasswordSameAsIncomingPassword", true);
  }
  x += key("PayloadDescription", "Mail account " + a);
  x += key("PayloadDisplayName", a);
  x += key("PayloadIdentifier", reverse + ".account");
  x += key("PayloadType", "com.apple.mail.managed");
  x += key("PayloadUUID", UuidFrom("account:" + std::string(address)));
  x += integer("PayloadVersion", 1);
  x += "    </dict>\n  </array>\n";
  x += "  <key>PayloadDescription</key><string>Hato mail settings for " + a + "</string>\n";
  x += "  <key>PayloadDisplayName</key><string>Mail (" + d + ")</string>\n";
  x += "  <key>PayloadIdentifier</key><string>" + reverse + "</string>\n";
  x += "  <key>PayloadRemovalDisallowed</key><false/>\n";
  x += "  <key>PayloadType</key><string>Configuration</string>\n";
  x += "  <key>PayloadUUID</key><string>" + UuidFrom("profile:" + std::string(address)) +
       "</string>\n";
  x += "  <key>PayloadVersion</key><integer>1</integer>\n</dict>\n</plist>\n";
  return x;
}

}  // namespace hato::web
