#include "app/msgauth_cli.h"

#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>
#include <iterator>

#include "io/fs.h"
#include "msgauth/auth_results.h"
#include "msgauth/dkim.h"
#include "msgauth/dns_table.h"
#include "msgauth/spf.h"

namespace hato::app {

struct MsgAuthCli::Opts {
  CLI::App* generate = nullptr;
  CLI::App* sign = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* spf_check = nullptr;
  CLI::App* check = nullptr;
  std::string domain, selector = "hato", algorithm = "rsa";
  int bits = 2048;
  std::string key, canon = "relaxed/relaxed", headers, identity;
  int64_t timestamp = 0, expire = 0, now = 0;
  bool length = false;
  std::string dns_file, length_policy = "reject-appended";
  std::string ip, helo, sender, receiver = "mx.hato.test";
  int sample = 0;
};

namespace {

constexpr int kExitError = 1;

int Fail(const std::string& msg) {
  std::cerr << "hato: " << msg << "\n";
  return kExitError;
}

// Standard input as a message with CRLF line ends (a lone LF becomes CRLF).
std::string ReadMessage() {
  std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::string out;
  out.reserve(in.size() + in.size() / 32);
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) out += '\r';
    out += in[i];
  }
  return out;
}

Result<msgauth::DnsTable> LoadTable(const std::string& path) {
  auto text = io::FileSystem::Default()->ReadFile(path);
  if (!text) return text.error();
  return msgauth::DnsTable::Parse(*text);
}

// A TXT record as zone-file strings of at most 255 octets (RFC 1035 3.3.14).
std::string ZoneStrings(const std::string& record) {
  std::string out;
  for (size_t i = 0; i < record.size(); i += 255) {
    if (i) out += " ";
    out += "\"" + record.substr(i, 255) + "\"";
  }
  return out;
}

int Generate(const std::string& data, const MsgAuthCli* /*unused*/, const std::string& domain,
             const std::string& selector, const std::string& algorithm, int bits) {
  auto* fs = io::FileSystem::Default();
  if (!fs->Exists(data + "/hato.toml")) {
    return Fail("no data directory at " + data + " (run hato init)");
  }
  auto valid_label = [](const std::string& s) {
    if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
    for (char c : s) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_';
      if (!ok) return false;
    }
    return s.find("..") == std::string::npos;
  };
  if (!valid_label(domain)) return Fail("invalid domain '" + domain + "'");
  // One label, so that DOMAIN.SELECTOR.key splits at the last dot (msgauth/keyring.h).
  if (!valid_label(selector) || selector.find('.') != std::string::npos) {
    return Fail("invalid selector '" + selector + "' (one DNS label)");
  }
  msgauth::KeyType type;
  if (algorithm == "rsa") {
    type = msgauth::KeyType::kRsa;
  } else if (algorithm == "ed25519") {
    type = msgauth::KeyType::kEd25519;
  } else {
    return Fail("unknown algorithm '" + algorithm + "' (rsa or ed25519)");
  }
  if (type == msgauth::KeyType::kRsa && (bits < 1024 || bits > 8192)) {
    return Fail("--bits must be between 1024 and 8192");
  }
  std::string dir = data + "/dkim";
  std::string path = dir + "/" + domain + "." + selector + ".key";
  if (fs->Exists(path)) return Fail(path + " already exists");
  auto key = msgauth::SigningKey::Generate(type, bits);
  if (!key) return Fail(key.error().message);
  auto pem = key->PrivatePem();
  if (!pem) return Fail(pem.error().message);
  auto record = key->DnsRecord();
  if (!record) return Fail(record.error().message);
  if (auto st = fs->CreateDirs(dir); !st) return Fail(st.error().message);
  // WriteFileAtomic creates the file with mode 0600.
  if (auto st = fs->WriteFileAtomic(path, *pem); !st) return Fail(st.error().message);
  std::cout << "wrote " << path << "\n"
            << "publish this TXT record:\n"
            << selector << "._domainkey." << domain << ". IN TXT " << ZoneStrings(*record) << "\n";
  return 0;
}

}  // namespace

MsgAuthCli::MsgAuthCli(CLI::App& app, std::string& data)
    : o_(std::make_unique<Opts>()), data_(data) {
  Opts& o = *o_;
  auto* dkim = app.add_subcommand("dkim", "DKIM signing keys");
  dkim->require_subcommand(1);
  o.generate = dkim->add_subcommand("generate", "create a DKIM key and print its DNS record");
  o.generate->add_option("DOMAIN", o.domain, "the signing domain (d=)")->required();
  o.generate->add_option("--selector", o.selector, "the selector (s=)")->capture_default_str();
  o.generate->add_option("--algorithm", o.algorithm, "rsa or ed25519")->capture_default_str();
  o.generate->add_option("--bits", o.bits, "RSA key size")->capture_default_str();
  o.generate->add_option("--data", data, "data directory")->capture_default_str();

  // Hidden (group ""): test drivers for the oracle tests.
  o.sign = dkim->add_subcommand("sign", "sign standard input")->group("");
  o.sign->add_option("--key", o.key)->required();
  o.sign->add_option("--domain", o.domain)->required();
  o.sign->add_option("--selector", o.selector)->required();
  o.sign->add_option("--canon", o.canon);
  o.sign->add_option("--headers", o.headers, "colon-separated h= list");
  o.sign->add_option("--identity", o.identity);
  o.sign->add_option("--timestamp", o.timestamp);
  o.sign->add_option("--expire", o.expire);
  o.sign->add_flag("--length", o.length);

  o.verify = dkim->add_subcommand("verify", "verify standard input")->group("");
  o.verify->add_option("--dns-file", o.dns_file)->required();
  o.verify->add_option("--now", o.now);
  o.verify->add_option("--length-policy", o.length_policy);

  auto* spf = app.add_subcommand("spf", "SPF evaluation")->group("");
  spf->require_subcommand(1);
  o.spf_check = spf->add_subcommand("check", "evaluate SPF");
  auto* msgauth = app.add_subcommand("msgauth", "SPF, DKIM, DMARC")->group("");
  msgauth->require_subcommand(1);
  o.check = msgauth->add_subcommand("check", "print the Authentication-Results of stdin");
  for (auto* c : {o.spf_check, o.check}) {
    c->add_option("--ip", o.ip)->required();
    c->add_option("--helo", o.helo)->required();
    c->add_option("--sender", o.sender);
    c->add_option("--dns-file", o.dns_file)->required();
    c->add_option("--receiver", o.receiver);
    c->add_option("--now", o.now);
  }
  o.check->add_option("--sample", o.sample);
}

MsgAuthCli::~MsgAuthCli() = default;

int MsgAuthCli::Run() {
  Opts& o = *o_;
  if (o.generate->parsed()) {
    return Generate(data_, this, o.domain, o.selector, o.algorithm, o.bits);
  }
  if (o.sign->parsed()) {
    auto pem = io::FileSystem::Default()->ReadFile(o.key);
    if (!pem) return Fail(pem.error().message);
    auto key = msgauth::SigningKey::FromPem(*pem);
    if (!key) return Fail(key.error().message);
    msgauth::SignOptions so;
    so.domain = o.domain;
    so.selector = o.selector;
    size_t slash = o.canon.find('/');
    std::string hc = o.canon.substr(0, slash);
    std::string bc = slash == std::string::npos ? "simple" : o.canon.substr(slash + 1);
    for (const auto& c : {hc, bc}) {
      if (c != "simple" && c != "relaxed") return Fail("bad --canon " + o.canon);
    }
    so.header_canon = hc == "simple" ? msgauth::Canon::kSimple : msgauth::Canon::kRelaxed;
    so.body_canon = bc == "simple" ? msgauth::Canon::kSimple : msgauth::Canon::kRelaxed;
    if (!o.headers.empty()) {
      size_t start = 0;
      while (true) {
        size_t c = o.headers.find(':', start);
        so.headers.push_back(o.headers.substr(start, c == std::string::npos ? c : c - start));
        if (c == std::string::npos) break;
        start = c + 1;
      }
    }
    so.identity = o.identity;
    so.timestamp = o.timestamp;
    so.expire_after = o.expire;
    so.body_length = o.length;
    std::string msg = ReadMessage();
    auto sig = msgauth::Sign(*key, so, msg);
    if (!sig) return Fail(sig.error().message);
    std::cout << *sig << msg << std::flush;
    return 0;
  }
  if (o.verify->parsed() || o.spf_check->parsed() || o.check->parsed()) {
    auto table = LoadTable(o.dns_file);
    if (!table) return Fail(table.error().message);
    int64_t now = o.now != 0 ? o.now : static_cast<int64_t>(std::time(nullptr));
    if (o.verify->parsed()) {
      msgauth::VerifyOptions vo;
      vo.now = now;
      if (o.length_policy == "allow") {
        vo.length_policy = msgauth::LengthPolicy::kAllowAppended;
      } else if (o.length_policy == "reject") {
        vo.length_policy = msgauth::LengthPolicy::kRejectAnyLength;
      } else if (o.length_policy != "reject-appended") {
        return Fail("bad --length-policy " + o.length_policy);
      }
      std::string msg = ReadMessage();
      for (const auto& r : msgauth::Verify(msg, *table, vo)) {
        std::cout << msgauth::DkimStatusName(r.status) << " d=" << r.domain << " s=" << r.selector
                  << " a=" << r.algorithm << (r.reason.empty() ? "" : " reason=" + r.reason)
                  << "\n";
      }
      return 0;
    }
    auto ip = msgauth::IpAddress::Parse(o.ip);
    if (!ip) return Fail("bad --ip " + o.ip);
    if (o.spf_check->parsed()) {
      msgauth::SpfRequest req;
      req.ip = *ip;
      req.helo = o.helo;
      req.mail_from = o.sender;
      req.receiver = o.receiver;
      req.now = now;
      auto out = msgauth::CheckMailFrom(*table, req);
      std::cout << msgauth::SpfResultName(out.result) << "\n";
      if (!out.explanation.empty()) std::cout << "explanation: " << out.explanation << "\n";
      if (!out.reason.empty()) std::cout << "reason: " << out.reason << "\n";
      return 0;
    }
    msgauth::InboundCheck in;
    in.ip = *ip;
    in.helo = o.helo;
    in.mail_from = o.sender;
    in.authserv_id = o.receiver;
    in.now = now;
    in.dmarc_sample = o.sample;
    std::string msg = ReadMessage();
    auto r = msgauth::CheckInbound(*table, in, msg);
    std::cout << r.header << std::flush;
    return 0;
  }
  return -1;
}

}  // namespace hato::app
