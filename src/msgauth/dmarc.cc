#include "msgauth/dmarc.h"

#include <algorithm>
#include <array>
#include <limits>

#include "base/strings.h"
#include "mime/header.h"
#include "mime/message.h"
#include "msgauth/dkim_record.h"

namespace hato::msgauth {
namespace {

// Registry second-level suffixes under which organizations register
// (a subset of the Public Suffix List's ICANN section).
constexpr std::string_view kSuffixes[] = {
    "ac.uk",  "co.uk",   "gov.uk",  "ltd.uk", "me.uk",  "net.uk",    "nhs.uk", "org.uk", "plc.uk",
    "sch.uk", "asn.au",  "com.au",  "edu.au", "gov.au", "id.au",     "net.au", "org.au", "ac.nz",
    "co.nz",  "geek.nz", "govt.nz", "net.nz", "org.nz", "school.nz", "ac.jp",  "ad.jp",  "co.jp",
    "ed.jp",  "go.jp",   "gr.jp",   "lg.jp",  "ne.jp",  "or.jp",     "com.br", "gov.br", "net.br",
    "org.br", "com.cn",  "edu.cn",  "gov.cn", "net.cn", "org.cn",    "ac.in",  "co.in",  "gov.in",
    "net.in", "org.in",  "co.za",   "gov.za", "org.za", "com.mx",    "gob.mx", "org.mx", "ac.kr",
    "co.kr",  "go.kr",   "ne.kr",   "or.kr",  "com.tw", "edu.tw",    "gov.tw", "net.tw", "org.tw",
    "com.sg", "edu.sg",  "gov.sg",  "com.hk", "org.hk", "com.tr",    "gov.tr", "com.ar", "com.co",
    "com.pe", "ac.il",   "co.il",   "org.il", "ac.th",  "co.th",     "in.th",  "com.my", "com.ph",
    "com.vn", "com.ua",  "ac.id",   "co.id",  "or.id",  "com.pl",    "com.es", "co.at",  "or.at",
    "com.ru", "com.sa",  "com.eg",  "com.ng", "co.ke",  "com.pk"};

bool IsPublicSuffix(std::string_view d) {
  if (d.find('.') == std::string_view::npos) return true;  // every TLD
  return std::find(std::begin(kSuffixes), std::end(kSuffixes), d) != std::end(kSuffixes);
}

std::optional<DmarcPolicy> PolicyOf(std::string_view v) {
  if (EqualsIgnoreCase(v, "none")) return DmarcPolicy::kNone;
  if (EqualsIgnoreCase(v, "quarantine")) return DmarcPolicy::kQuarantine;
  if (EqualsIgnoreCase(v, "reject")) return DmarcPolicy::kReject;
  return std::nullopt;
}

bool Aligned(std::string_view a, std::string_view b, bool strict, const PublicSuffixList* psl) {
  if (a.empty() || b.empty()) return false;
  if (strict) return EqualsIgnoreCase(a, b);
  return OrganizationalDomain(a, psl) == OrganizationalDomain(b, psl);
}

}  // namespace

std::string_view DmarcPolicyName(DmarcPolicy p) {
  switch (p) {
    case DmarcPolicy::kNone:
      return "none";
    case DmarcPolicy::kQuarantine:
      return "quarantine";
    case DmarcPolicy::kReject:
      return "reject";
  }
  return "none";
}

std::string_view DmarcStatusName(DmarcStatus s) {
  switch (s) {
    case DmarcStatus::kNone:
      return "none";
    case DmarcStatus::kPass:
      return "pass";
    case DmarcStatus::kFail:
      return "fail";
    case DmarcStatus::kTempError:
      return "temperror";
    case DmarcStatus::kPermError:
      return "permerror";
  }
  return "none";
}

Result<DmarcRecord> ParseDmarcRecord(std::string_view text) {
  auto tags = ParseTagList(text);
  if (!tags) return Err(ErrorKind::kInvalid, "dmarc: " + tags.error().message);
  if (tags->empty() || (*tags)[0].name != "v" || (*tags)[0].value != "DMARC1") {
    return Err(ErrorKind::kInvalid, "dmarc: v=DMARC1 is not the first tag");
  }
  DmarcRecord rec;
  std::optional<DmarcPolicy> p;
  for (const Tag& t : *tags) {
    std::string name = AsciiLower(t.name);
    if (name == "p") {
      p = PolicyOf(t.value);
    } else if (name == "sp") {
      rec.subdomain_policy = PolicyOf(t.value);
    } else if (name == "adkim") {
      rec.strict_dkim = EqualsIgnoreCase(t.value, "s");
    } else if (name == "aspf") {
      rec.strict_spf = EqualsIgnoreCase(t.value, "s");
    } else if (name == "pct") {
      auto v = ParseUint(t.value);
      if (v && *v <= 100) rec.pct = static_cast<int>(*v);
    } else if (name == "rua") {
      rec.rua = t.value;
    } else if (name == "ruf") {
      rec.ruf = t.value;
    } else if (name == "fo") {
      rec.fo = AsciiLower(t.value);
    }
  }
  if (!p) {
    if (!StartsWithIgnoreCase(rec.rua, "mailto:")) {
      return Err(ErrorKind::kInvalid, "dmarc: p= missing or unknown");
    }
    p = DmarcPolicy::kNone;  // section 6.6.3 step 6
  }
  rec.policy = *p;
  return rec;
}

std::string OrganizationalDomain(std::string_view domain_in, const PublicSuffixList* psl) {
  std::string d = AsciiLower(domain_in);
  while (!d.empty() && d.back() == '.') d.pop_back();
  // Not a domain name (an empty label): it is its own organization.
  if (d.empty() || d.front() == '.' || d.find("..") != std::string::npos) return d;
  if (psl) return psl->OrganizationalDomain(d);
  // The longest public suffix, then one more label (section 3.2 steps 2-4).
  size_t pos = 0;
  while (true) {
    std::string_view rest = std::string_view(d).substr(pos);
    if (IsPublicSuffix(rest)) {
      if (pos == 0) return d;  // the domain is itself a public suffix
      size_t prev = d.rfind('.', pos - 2);
      return d.substr(prev == std::string::npos ? 0 : prev + 1);
    }
    size_t dot = d.find('.', pos);
    if (dot == std::string::npos) return d;
    pos = dot + 1;
  }
}

Result<std::string> FromDomain(std::string_view message) {
  auto scan = mime::internal::ScanHeader(message);
  std::optional<std::string> domain;
  int from_fields = 0;
  for (const auto& f : scan.fields) {
    if (!EqualsIgnoreCase(f.name, "from")) continue;
    if (++from_fields > 1) return Err(ErrorKind::kInvalid, "several From fields");
    for (const auto& a : mime::ParseAddressList(mime::internal::Unfold(f.value))) {
      if (!a.host) continue;  // group markers
      std::string h = AsciiLower(*a.host);
      if (h.empty()) return Err(ErrorKind::kInvalid, "From address without a domain");
      if (domain && *domain != h) return Err(ErrorKind::kInvalid, "From domains differ");
      domain = h;
    }
  }
  if (!domain) return Err(ErrorKind::kInvalid, "no From address");
  return *domain;
}

DmarcOutcome CheckDmarc(DnsLookup& dns, const DmarcInput& in) {
  DmarcOutcome out;
  out.from_domain = AsciiLower(in.from_domain);
  auto finish = [&out](DmarcStatus s, std::string reason) {
    out.status = s;
    out.reason = std::move(reason);
    return out;
  };
  // Section 6.6.3: _dmarc.<From domain>, then _dmarc.<organizational domain>.
  std::string org = OrganizationalDomain(out.from_domain, in.psl);
  std::optional<DmarcRecord> rec;
  std::vector<std::string> where = {out.from_domain};
  if (org != out.from_domain) where.push_back(org);
  for (const std::string& d : where) {
    auto txt = dns.Txt("_dmarc." + d);
    if (!txt) {
      if (IsNxDomain(txt.error())) continue;
      return finish(DmarcStatus::kTempError, "DNS error: " + txt.error().message);
    }
    std::vector<const std::string*> candidates;
    for (const auto& t : *txt) {
      if (StartsWithIgnoreCase(TrimSpaces(t), "v=DMARC1")) candidates.push_back(&t);
    }
    if (candidates.size() > 1) return finish(DmarcStatus::kNone, "several DMARC records");
    if (candidates.empty()) continue;
    auto parsed = ParseDmarcRecord(*candidates.front());
    if (!parsed) {
      // An invalid record is as if there were none (section 6.6.3 step 5).
      continue;
    }
    rec = *parsed;
    out.record_domain = d;
    break;
  }
  if (!rec) return finish(DmarcStatus::kNone, "no DMARC record");
  out.ruf = rec->ruf;
  out.fo = rec->fo;

  bool subdomain = out.record_domain != out.from_domain;
  out.requested = subdomain && rec->subdomain_policy ? *rec->subdomain_policy : rec->policy;

  // Section 3.1: identifier alignment; only passing results count (4.2).
  out.spf_aligned = in.spf == SpfResult::kPass &&
                    Aligned(in.spf_domain, out.from_domain, rec->strict_spf, in.psl);
  for (const auto& d : in.dkim_pass_domains) {
    if (Aligned(d, out.from_domain, rec->strict_dkim, in.psl)) out.dkim_aligned = true;
  }
  if (out.spf_aligned || out.dkim_aligned) {
    return finish(DmarcStatus::kPass, out.dkim_aligned ? "aligned DKIM" : "aligned SPF");
  }
  out.applied = out.requested;
  // Section 6.6.4: outside the pct= sample, the next less strict policy.
  if (in.sample >= rec->pct) {
    if (out.applied == DmarcPolicy::kReject) {
      out.applied = DmarcPolicy::kQuarantine;
    } else if (out.applied == DmarcPolicy::kQuarantine) {
      out.applied = DmarcPolicy::kNone;
    }
  }
  return finish(DmarcStatus::kFail, "no aligned SPF or DKIM pass");
}

Disposition DecideDisposition(const DmarcOutcome& outcome, RejectHandling on_reject) {
  if (outcome.status != DmarcStatus::kFail || on_reject == RejectHandling::kNone) {
    return Disposition::kDeliver;
  }
  switch (outcome.applied) {
    case DmarcPolicy::kReject:
      return on_reject == RejectHandling::kReject ? Disposition::kReject : Disposition::kJunk;
    case DmarcPolicy::kQuarantine:
      return Disposition::kJunk;
    case DmarcPolicy::kNone:
      break;
  }
  return Disposition::kDeliver;
}

}  // namespace hato::msgauth
