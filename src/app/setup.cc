#include "app/setup.h"

#include <algorithm>
#include <iostream>
#include <memory>

#include "app/open_store.h"
#include "app/serve.h"
#include "app/tls.h"
#include "base/strings.h"
#include "config/config.h"
#include "dns/blocking_lookup.h"
#include "dns/records.h"
#include "dns/resolver.h"
#include "io/fs.h"
#include "msgauth/dkim.h"
#include "msgauth/ip.h"
#include "msgauth/keyring.h"
#include "store/store.h"

namespace hato::app {
namespace {

constexpr int kExitError = 1;

int Fail(const std::string& msg) {
  std::cerr << "hato: " << msg << "\n";
  return kExitError;
}

void PrintRecords(const std::vector<dns::Record>& records) {
  for (dns::Need need : {dns::Need::kRequired, dns::Need::kRecommended}) {
    std::cout << (need == dns::Need::kRequired ? "\n; Required:\n" : "\n; Recommended:\n");
    for (const auto& r : records) {
      if (r.need != need) continue;
      std::cout << "; " << r.purpose << (r.placeholder ? " (fill in)" : "") << "\n"
                << dns::ZoneLine(r) << "\n";
    }
  }
}

// The MTA-STS policy file Hato serves for `domain` ([mta_sts]), as comments.
void PrintPolicy(const config::Config& cfg, const std::string& domain) {
  std::string policy = PublishedMtaStsPolicy(cfg);
  if (policy.empty()) return;
  std::cout << "\n; The MTA-STS policy Hato serves as https://mta-sts." << domain
            << "/.well-known/mta-sts.txt ([mta_sts] in hato.toml; its certificate must name\n"
            << "; mta-sts." << domain << ", e.g. [acme] domains; start with mode: testing, then"
            << " enforce):\n";
  std::string line;
  for (char c : policy) {
    if (c == '\r') continue;
    line += c;
    if (c == '\n') {
      std::cout << ";   " << line;
      line.clear();
    }
  }
}

}  // namespace

CanonicalName CanonicalHostName(const std::string& name, const std::string& what) {
  // RFC 5890: a U-label name is stored and matched as its A-label.
  auto ascii = dns::ToAsciiDomain(name);
  if (!ascii) return {false, "", "invalid " + what + " '" + name + "': " + ascii.error().message};
  if (auto st = dns::ValidateHostName(*ascii, what); !st) {
    return {false, "", st.error().message};
  }
  return {true, *ascii, ""};
}

int InitDataDir(const InitOptions& o) {
  auto* fs = io::FileSystem::Default();
  if (fs->Exists(o.data + "/hato.toml")) return Fail(o.data + " is already initialised");
  auto domain = CanonicalHostName(o.domain, "domain");
  if (!domain.ok) return Fail(domain.error);
  auto host =
      CanonicalHostName(o.hostname.empty() ? "mail." + domain.name : o.hostname, "hostname");
  if (!host.ok) return Fail(host.error);
  for (const auto& a : o.addresses) {
    if (!msgauth::IpAddress::Parse(a)) return Fail("invalid --ip '" + a + "' (an IPv4 or IPv6)");
  }
  if (auto st = fs->CreateDirs(o.data + "/tls"); !st) return Fail(st.error().message);
  if (auto st = GenerateSelfSigned(o.data + "/tls/cert.pem", o.data + "/tls/key.pem", host.name);
      !st) {
    return Fail(st.error().message);
  }
  // The DKIM key of the first domain (RFC 6376), as `hato dkim generate` writes it.
  auto key = msgauth::SigningKey::Generate(msgauth::KeyType::kRsa, 2048);
  if (!key) return Fail(key.error().message);
  auto pem = key->PrivatePem();
  if (!pem) return Fail(pem.error().message);
  auto dkim_record = key->DnsRecord();
  if (!dkim_record) return Fail(dkim_record.error().message);
  std::string key_path = o.data + "/dkim/" + domain.name + "." + o.dkim_selector + ".key";
  if (auto st = fs->CreateDirs(o.data + "/dkim"); !st) return Fail(st.error().message);
  if (auto st = fs->WriteFileAtomic(key_path, *pem); !st) return Fail(st.error().message);
  if (auto st =
          fs->WriteFileAtomic(o.data + "/hato.toml", config::DefaultText(host.name, o.postgres));
      !st) {
    return Fail(st.error().message);
  }
  auto cfg = LoadConfig(o.data);
  if (!cfg) return Fail(cfg.error().message);
  store::StoreOptions so;
  so.compress = cfg->store_compress;
  auto store = OpenConfiguredStore(*cfg, o.data, so);
  if (!store) {
    // Nothing half-made: without its store the data dir can be initialised again.
    (void)fs->Remove(o.data + "/hato.toml");
    return Fail(store.error().message);
  }
  bool attached = false;
  if (auto st = (*store)->AddDomain(domain.name); !st) {
    // A second node on a shared PostgreSQL database: the domain is there already.
    if (o.postgres.empty() || st.error().kind != ErrorKind::kExists) {
      return Fail(st.error().message);
    }
    attached = true;
  }
  if (!o.postgres.empty()) {
    std::cout << (attached ? "attached to the existing PostgreSQL store\n"
                           : "the store is in PostgreSQL\n");
  }

  dns::RecordInput in{domain.name,  host.name,   o.dkim_selector,
                      *dkim_record, o.addresses, dns::MtaStsPolicyId(PublishedMtaStsPolicy(*cfg))};
  std::cout << "initialised " << o.data << " for domain " << domain.name << " (hostname "
            << host.name << ")\n"
            << "wrote " << o.data << "/hato.toml, a self-signed certificate in " << o.data
            << "/tls/ and the DKIM key " << key_path << "\n";
  std::cout << "\nNext steps:\n"
            << "  1. Publish the DNS records below at your DNS provider (zone-file form).\n"
            << "  2. Replace " << o.data << "/tls/cert.pem and key.pem with a certificate for "
            << host.name << " (e.g. from Let's Encrypt), or point [tls] at it.\n"
            << "  3. Create the first account (it also receives postmaster@ and abuse@):\n"
            << "       hato user add you@" << domain.name << " --password-stdin --data " << o.data
            << "\n"
            << "  4. Start the server: hato serve --data " << o.data
            << " (ports 25, 465, 587, 143, 993, 110, 995)\n"
            << "  5. Once DNS has propagated: hato dns check " << domain.name << " --data "
            << o.data << "\n";
  PrintRecords(dns::DomainRecords(in));
  PrintPolicy(*cfg, domain.name);
  return 0;
}

std::string PublishedMtaStsPolicy(const config::Config& cfg) {
  if (cfg.mta_sts.mode == "off") return "";
  return dns::MtaStsPolicy(cfg.hostname, cfg.mta_sts.mode, cfg.mta_sts.mx,
                           cfg.mta_sts.max_age_seconds);
}

int DnsRecords(const DnsRecordsOptions& o) {
  auto cfg = LoadConfig(o.data);
  if (!cfg) return Fail(cfg.error().message);
  auto domain = CanonicalHostName(o.domain, "domain");
  if (!domain.ok) return Fail(domain.error);
  auto in = RecordInputFor(o.data, *cfg, domain.name);
  if (!in) return Fail(in.error().message);
  std::cout << "; DNS records for " << domain.name << " (mail host " << cfg->hostname << ")\n";
  PrintRecords(dns::DomainRecords(*in));
  PrintPolicy(*cfg, domain.name);
  return 0;
}

Result<dns::RecordInput> RecordInputFor(const std::string& data, const config::Config& cfg,
                                        const std::string& domain) {
  // The DKIM record follows from the domain's key (the greatest selector signs).
  auto keys = msgauth::KeyRing::Load(*io::FileSystem::Default(), data + "/dkim");
  if (!keys) return keys.error();
  dns::RecordInput in;
  in.domain = domain;
  in.hostname = cfg.hostname;
  std::string policy = PublishedMtaStsPolicy(cfg);
  if (!policy.empty()) in.mta_sts_id = dns::MtaStsPolicyId(policy);
  if (const msgauth::DomainKey* k = keys->For(domain)) {
    auto rec = k->key.DnsRecord();
    if (!rec) return rec.error();
    in.dkim_selector = k->selector;
    in.dkim_record = *rec;
  }
  return in;
}

Result<std::vector<RecordCheck>> CheckDomainRecords(const dns::RecordInput& in,
                                                    const std::string& resolver,
                                                    int timeout_seconds) {
  std::string host = in.hostname;
  dns::LookupOptions lo;
  lo.forward_to = resolver;
  lo.query_timeout = std::chrono::seconds(timeout_seconds);
  auto shared = dns::OpenSharedLookup(lo);
  if (!shared) return shared.error();
  dns::BudgetLookup dns(*shared, std::chrono::seconds(timeout_seconds * 20));
  std::vector<RecordCheck> out;
  auto report = [&](const dns::Record& r, const std::string& status, const std::string& detail) {
    out.push_back(RecordCheck{r, status, detail});
  };
  auto error_text = [](const Error& e) {
    return e.kind == ErrorKind::kNotFound ? std::string("no such name (NXDOMAIN)")
                                          : "lookup failed: " + e.message;
  };
  for (const auto& r : dns::DomainRecords(in)) {
    if (r.type == "MX") {
      auto mx = dns.Mx(r.name);
      if (!mx) {
        report(r, "MISSING", error_text(mx.error()));
        continue;
      }
      bool found = false;
      std::string got;
      for (const auto& m : *mx) {
        found = found || AsciiLower(m.exchange) == host;
        got += (got.empty() ? "" : ", ") + m.exchange;
      }
      report(r, found ? "OK" : (mx->empty() ? "MISSING" : "DIFFERENT"),
             got.empty() ? "" : "got " + got);
    } else if (r.type == "A" || r.type == "AAAA") {
      auto addrs = r.type == "A" ? dns.A(r.name) : dns.Aaaa(r.name);
      if (!addrs || addrs->empty()) {
        report(r, "MISSING", addrs ? "no " + r.type + " record" : error_text(addrs.error()));
        continue;
      }
      std::string got;
      bool match = r.placeholder;
      for (const auto& a : *addrs) {
        got += (got.empty() ? "" : ", ") + a.ToString();
        match = match || a.ToString() == r.value;
      }
      report(r, match ? "OK" : "DIFFERENT", "got " + got);
    } else if (r.type == "TXT") {
      auto txt = dns.Txt(r.name);
      if (!txt) {
        report(r, "MISSING", error_text(txt.error()));
        continue;
      }
      // The record of the same kind (its v= tag) must equal the suggested
      // one, except SPF and DMARC, whose content is the operator's choice.
      std::string prefix = r.value.substr(0, r.value.find(';'));
      if (prefix.rfind("v=spf1", 0) == 0) prefix = "v=spf1";
      std::vector<std::string> same;
      for (const auto& t : *txt) {
        if (t.rfind(prefix, 0) == 0) same.push_back(t);
      }
      // SPF and DMARC policies are the operator's choice, the MTA-STS id
      // changes with each policy and TLS-RPT's address too: only their
      // presence is checked. DKIM must carry the key.
      bool flexible = prefix != "v=DKIM1";
      if (same.empty()) {
        report(r, "MISSING", "no " + prefix + " record");
      } else if (same.size() > 1) {
        report(r, "DIFFERENT",
               std::to_string(same.size()) + " " + prefix + " records (one allowed)");
      } else if (same[0] == r.value || flexible) {
        report(r, "OK", same[0] == r.value ? "" : "got \"" + same[0] + "\"");
      } else {
        report(r, "DIFFERENT", "got \"" + same[0] + "\"");
      }
    } else if (r.type == "SRV") {
      // RFC 6186 3.1: the target and port must be ours; priority and weight
      // are the operator's choice. A target of "." (RFC 6186 3.4) says the
      // service is not offered.
      std::string want_port, want_target;
      {
        std::vector<std::string_view> f = SplitWords(r.value);
        if (f.size() == 4) {
          want_port = std::string(f[2]);
          want_target = AsciiLower(f[3]);
          if (!want_target.empty() && want_target.back() == '.') want_target.pop_back();
        }
      }
      auto srv = dns.Srv(r.name);
      if (!srv || srv->empty()) {
        report(r, "MISSING", srv ? "no SRV record" : error_text(srv.error()));
        continue;
      }
      bool match = false;
      std::string got;
      for (const auto& s : *srv) {
        std::string target = s.target.empty() ? "." : s.target + ".";
        got += (got.empty() ? "" : ", ") + std::to_string(s.priority) + " " +
               std::to_string(s.weight) + " " + std::to_string(s.port) + " " + target;
        match = match || (s.target == want_target && std::to_string(s.port) == want_port);
      }
      report(r, match ? "OK" : "DIFFERENT", "got " + got);
    } else if (r.type == "CNAME") {
      // The alias must name the mail host (RFC 8461 3.2's policy host, the
      // autoconfig host). Address records equal to the host's do as well.
      std::string want = AsciiLower(r.value);
      if (!want.empty() && want.back() == '.') want.pop_back();
      auto cname = dns.Cname(r.name);
      if (cname && !cname->empty()) {
        bool match = std::find(cname->begin(), cname->end(), want) != cname->end();
        report(r, match ? "OK" : "DIFFERENT", "got " + (*cname)[0] + ".");
        continue;
      }
      if (!cname && cname.error().kind != ErrorKind::kNotFound) {
        report(r, "MISSING", error_text(cname.error()));
        continue;
      }
      auto mine = dns.A(r.name);
      auto host_addrs = dns.A(want);
      if (mine && !mine->empty() && host_addrs) {
        std::vector<std::string> a, b;
        for (const auto& x : *mine) a.push_back(x.ToString());
        for (const auto& x : *host_addrs) b.push_back(x.ToString());
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        std::string list;
        for (const auto& x : a) list += (list.empty() ? "" : ", ") + x;
        report(r, a == b ? "OK" : "DIFFERENT",
               "no CNAME; A " + list + (a == b ? " as " + want : ""));
        continue;
      }
      report(r, "MISSING", cname ? "no CNAME record" : error_text(cname.error()));
    } else {
      report(r, "SKIPPED", "check by hand");
    }
  }
  return out;
}

int DnsCheck(const DnsCheckOptions& o) {
  auto cfg = LoadConfig(o.data);
  if (!cfg) return Fail(cfg.error().message);
  auto domain = CanonicalHostName(o.domain, "domain");
  if (!domain.ok) return Fail(domain.error);
  auto in = RecordInputFor(o.data, *cfg, domain.name);
  if (!in) return Fail(in.error().message);
  auto checks = CheckDomainRecords(*in, o.resolver.empty() ? cfg->outbound.resolver : o.resolver,
                                   o.timeout_seconds);
  if (!checks) return Fail(checks.error().message);
  int required_bad = 0, recommended_bad = 0;
  for (const auto& c : *checks) {
    const dns::Record& r = c.record;
    if (c.status == "SKIPPED") {
      std::cout << "SKIPPED\t" << r.type << "\t" << r.name
                << "\tcheck by hand: " << dns::ZoneLine(r) << "\n";
      continue;
    }
    bool ok = c.status == "OK";
    if (!ok) ++(r.need == dns::Need::kRequired ? required_bad : recommended_bad);
    std::cout << c.status << "\t" << r.type << "\t" << r.name;
    if (!c.detail.empty()) std::cout << "\t" << c.detail;
    if (!ok) {
      std::cout << "\n\twant: " << dns::ZoneLine(r)
                << (r.need == dns::Need::kRequired ? "" : "  (recommended)");
    }
    std::cout << "\n";
  }
  std::cout << required_bad << " required and " << recommended_bad
            << " recommended records missing or different\n";
  return required_bad == 0 ? 0 : kExitError;
}

}  // namespace hato::app
