// Mail client set-up from an address: Thunderbird autoconfig
// (/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ADDR and
// /mail/config-v1.1.xml, the "config-v1.1" format of Mozilla's ISPDB) and an
// Apple configuration profile (.mobileconfig, com.apple.mail.managed). The
// hosts and ports come from [listen] and hostname in hato.toml; the same
// details are shown on the member's set-up page. Pure: fuzzed through
// ParseEmailAddress (fuzz/fuzz_autoconfig.cc).
//
// SECURITY: the address comes from a query string; it is checked against a
// strict dot-atom grammar before it is echoed, and escaped in the XML.
// Profiles are unsigned and carry no password.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace hato::web {

enum class Socket { kSsl, kStartTls, kPlain };

struct MailServer {
  std::string type;  // "imap", "pop3", "smtp"
  std::string host;
  int port = 0;
  Socket socket = Socket::kSsl;
};

struct ClientSettings {
  std::string domain;
  std::vector<MailServer> incoming;  // best first (IMAP over TLS first)
  std::vector<MailServer> outgoing;  // submission
};

// An address "local@domain" (ASCII dot-atom local part, LDH domain labels,
// at most 254 bytes), lower-casing the domain; nullopt when it is not one.
std::optional<std::string> ParseEmailAddress(std::string_view s);

// What a client should use for `domain`: the servers of [listen] on
// `hostname`. A loopback-only listener is advertised too (a demo set-up).
ClientSettings SettingsFor(const config::Config& cfg, std::string_view domain);

// The Thunderbird autoconfig document; `address` may be empty (then the
// client fills in %EMAILADDRESS%).
std::string ThunderbirdXml(const ClientSettings& s, std::string_view address);

// An Apple .mobileconfig (XML property list) for `address` (not empty).
std::string AppleMobileConfig(const ClientSettings& s, std::string_view address);

std::string_view SocketName(Socket s);  // "SSL", "STARTTLS", "plain"

}  // namespace hato::web
