#include "msgauth/spf.h"

#include "base/strings.h"
#include "msgauth/spf_record.h"

namespace hato::msgauth {

std::string_view SpfResultName(SpfResult r) {
  switch (r) {
    case SpfResult::kNone:
      return "none";
    case SpfResult::kNeutral:
      return "neutral";
    case SpfResult::kPass:
      return "pass";
    case SpfResult::kFail:
      return "fail";
    case SpfResult::kSoftFail:
      return "softfail";
    case SpfResult::kTempError:
      return "temperror";
    case SpfResult::kPermError:
      return "permerror";
  }
  return "none";
}

namespace {

SpfResult FromQualifier(SpfQualifier q) {
  switch (q) {
    case SpfQualifier::kPass:
      return SpfResult::kPass;
    case SpfQualifier::kFail:
      return SpfResult::kFail;
    case SpfQualifier::kSoftFail:
      return SpfResult::kSoftFail;
    case SpfQualifier::kNeutral:
      return SpfResult::kNeutral;
  }
  return SpfResult::kNeutral;
}

// A syntactically usable domain for a DNS query (section 4.3): labels of 1 to
// 63 octets, at least two labels.
bool QueryableDomain(std::string_view d) {
  if (d.empty() || d.size() > kMaxDomainLength) return false;
  if (d.back() == '.') d.remove_suffix(1);
  if (d.find('.') == std::string_view::npos) return false;
  size_t label = 0;
  for (char c : d) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (++label > 63) {
      return false;
    }
  }
  return label > 0;
}

// One evaluation: the counters are shared by every nested include/redirect.
class Evaluator {
 public:
  Evaluator(DnsLookup& dns, const SpfRequest& req) : dns_(dns), req_(req) {}

  SpfOutcome Run(std::string_view domain, std::string_view sender, bool top);

 private:
  struct Stop {  // an error that ends the whole evaluation
    SpfResult result;
    std::string reason;
  };
  // Counts one DNS-querying term; false past the limit (permerror).
  bool CountTerm() { return ++dns_terms_ <= kMaxSpfDnsMechanisms; }
  // Classifies an answer: true when it is usable (records may be empty);
  // sets *stop on temperror or on the void-lookup limit.
  template <typename T>
  bool Usable(const Result<std::vector<T>>& r, std::optional<Stop>* stop) {
    if (!r) {
      if (!IsNxDomain(r.error())) {
        *stop = Stop{SpfResult::kTempError, "DNS error: " + r.error().message};
        return false;
      }
    }
    if (!r || r->empty()) {
      if (++void_lookups_ > kMaxSpfVoidLookups) {
        *stop = Stop{SpfResult::kPermError, "too many void DNS lookups (RFC 7208 4.6.4)"};
      }
      return false;
    }
    return true;
  }
  Result<std::vector<IpAddress>> Addresses(std::string_view name) {
    return req_.ip.v6 ? dns_.Aaaa(name) : dns_.A(name);
  }
  bool MatchesAny(const std::vector<IpAddress>& ips, int c4, int c6) const {
    for (const auto& a : ips) {
      if (req_.ip.InPrefix(a.Unmapped(), req_.ip.v6 ? c6 : c4)) return true;
    }
    return false;
  }
  // The validated names of section 5.5, for ptr and %{p}.
  std::vector<std::string> ValidatedNames();

  DnsLookup& dns_;
  const SpfRequest& req_;
  int dns_terms_ = 0;
  int void_lookups_ = 0;
  int depth_ = 0;
};

std::vector<std::string> Evaluator::ValidatedNames() {
  std::vector<std::string> out;
  auto names = dns_.Ptr(req_.ip);
  if (!names) return out;  // section 5.5: a DNS error means no match
  size_t n = 0;
  for (const auto& name : *names) {
    if (++n > kMaxSpfPtrNames) break;
    auto addrs = Addresses(name);
    if (!addrs) continue;
    for (const auto& a : *addrs) {
      if (a.Unmapped() == req_.ip) {
        out.push_back(AsciiLower(name));
        break;
      }
    }
  }
  return out;
}

SpfOutcome Evaluator::Run(std::string_view domain_in, std::string_view sender, bool top) {
  SpfOutcome out;
  std::string domain = AsciiLower(TruncateDomain(domain_in));
  out.domain = domain;
  auto finish = [&out](SpfResult r, std::string reason) {
    out.result = r;
    out.reason = std::move(reason);
    return out;
  };
  // Nested include/redirect chains are bounded by the term limit; this is a
  // second guard against a loop that would not count (a bug).
  if (++depth_ > 2 * kMaxSpfDnsMechanisms + 2) {
    return finish(SpfResult::kPermError, "include/redirect nesting too deep");
  }
  // Section 4.3: a malformed domain gives none.
  if (!QueryableDomain(domain)) return finish(SpfResult::kNone, "not a valid domain");

  // Section 4.4 and 4.5: record lookup and selection.
  auto txt = dns_.Txt(domain);
  if (!txt) {
    if (IsNxDomain(txt.error())) return finish(SpfResult::kNone, "no SPF record");
    return finish(SpfResult::kTempError, "DNS error: " + txt.error().message);
  }
  const std::string* record = nullptr;
  for (const auto& t : *txt) {
    if (!IsSpfRecord(t)) continue;
    if (record != nullptr) return finish(SpfResult::kPermError, "more than one SPF record");
    record = &t;
  }
  if (record == nullptr) return finish(SpfResult::kNone, "no SPF record");
  auto rec = ParseSpfRecord(*record);
  if (!rec) return finish(SpfResult::kPermError, rec.error().message);

  MacroContext ctx;
  ctx.sender = std::string(sender);
  size_t at = sender.rfind('@');
  ctx.local = std::string(sender.substr(0, at));
  ctx.sender_domain = std::string(sender.substr(at + 1));
  ctx.domain = domain;
  ctx.ip = req_.ip;
  ctx.helo = req_.helo;
  ctx.receiver = req_.receiver;
  ctx.now = req_.now;
  ctx.validated_domain = [this, &domain]() -> std::string {
    auto names = ValidatedNames();
    for (const auto& n : names) {  // prefer the domain itself, then a subdomain
      if (n == domain) return n;
    }
    for (const auto& n : names) {
      if (n.ends_with("." + domain)) return n;
    }
    return names.empty() ? "unknown" : names.front();
  };
  auto target_of = [&](const std::string& spec) -> Result<std::string> {
    if (spec.empty()) return domain;
    auto t = ExpandMacros(spec, ctx, false);
    if (!t) return t.error();
    return TruncateDomain(*t);
  };

  for (const Mechanism& m : rec->mechanisms) {
    bool match = false;
    std::optional<Stop> stop;
    std::string target;
    if (m.kind == MechKind::kInclude || m.kind == MechKind::kA || m.kind == MechKind::kMx ||
        m.kind == MechKind::kPtr || m.kind == MechKind::kExists) {
      if (!CountTerm()) {
        return finish(SpfResult::kPermError, "more than 10 DNS-querying terms (RFC 7208 4.6.4)");
      }
      auto t = target_of(m.domain_spec);
      if (!t) return finish(SpfResult::kPermError, t.error().message);
      target = *t;
    }
    switch (m.kind) {
      case MechKind::kAll:
        match = true;
        break;
      case MechKind::kIp4:
      case MechKind::kIp6:
        match = req_.ip.InPrefix(m.ip, m.kind == MechKind::kIp4 ? m.cidr4 : m.cidr6);
        break;
      case MechKind::kA: {
        auto addrs = Addresses(target);
        if (Usable(addrs, &stop)) match = MatchesAny(*addrs, m.cidr4, m.cidr6);
        break;
      }
      case MechKind::kMx: {
        auto mx = dns_.Mx(target);
        if (!Usable(mx, &stop)) break;
        if (mx->size() > kMaxSpfMxNames) {
          return finish(SpfResult::kPermError, "more than 10 MX names (RFC 7208 4.6.4)");
        }
        for (const auto& r : *mx) {
          auto addrs = Addresses(r.exchange);
          if (!addrs) {
            if (!IsNxDomain(addrs.error())) {
              stop = Stop{SpfResult::kTempError, "DNS error: " + addrs.error().message};
              break;
            }
            continue;
          }
          if (MatchesAny(*addrs, m.cidr4, m.cidr6)) {
            match = true;
            break;
          }
        }
        break;
      }
      case MechKind::kPtr: {
        // Section 5.5 (its use is discouraged, but it is evaluated).
        const std::string want = AsciiLower(target);  // names are case-insensitive
        for (const auto& name : ValidatedNames()) {
          if (name == want || name.ends_with("." + want)) {
            match = true;
            break;
          }
        }
        break;
      }
      case MechKind::kExists: {
        auto addrs = dns_.A(target);  // always A (section 5.7)
        if (Usable(addrs, &stop)) match = true;
        break;
      }
      case MechKind::kInclude: {
        // Section 5.2: the table of what an included result means.
        SpfOutcome inner = Run(target, sender, false);
        switch (inner.result) {
          case SpfResult::kPass:
            match = true;
            break;
          case SpfResult::kFail:
          case SpfResult::kSoftFail:
          case SpfResult::kNeutral:
            break;
          case SpfResult::kTempError:
            return finish(SpfResult::kTempError, inner.reason);
          case SpfResult::kPermError:
            return finish(SpfResult::kPermError, inner.reason);
          case SpfResult::kNone:
            return finish(SpfResult::kPermError, "include:" + target + " has no SPF record");
        }
        break;
      }
    }
    if (stop) return finish(stop->result, stop->reason);
    if (!match) continue;
    SpfResult r = FromQualifier(m.qualifier);
    std::string what = m.kind == MechKind::kAll ? "all" : "mechanism matched";
    finish(r, what + (target.empty() ? "" : " " + target));
    if (r == SpfResult::kFail && top && rec->exp) {
      // Section 6.2: the explanation; any failure just leaves it out.
      auto exp_domain = ExpandMacros(*rec->exp, ctx, false);
      if (exp_domain) {
        auto texts = dns_.Txt(TruncateDomain(*exp_domain));
        if (texts && texts->size() == 1) {
          auto text = ExpandMacros(texts->front(), ctx, true);
          if (text) out.explanation = *text;
        }
      }
    }
    return out;
  }

  if (rec->redirect) {
    // Section 6.1: only when no mechanism matched (and "all" did not occur).
    if (!CountTerm()) {
      return finish(SpfResult::kPermError, "more than 10 DNS-querying terms (RFC 7208 4.6.4)");
    }
    auto t = target_of(*rec->redirect);
    if (!t) return finish(SpfResult::kPermError, t.error().message);
    SpfOutcome inner = Run(*t, sender, top);
    if (inner.result == SpfResult::kNone) {
      return finish(SpfResult::kPermError, "redirect=" + *t + " has no SPF record");
    }
    return inner;
  }
  return finish(SpfResult::kNeutral, "no mechanism matched");  // section 4.7
}

}  // namespace

SpfOutcome CheckHost(DnsLookup& dns, const SpfRequest& req, std::string_view domain,
                     std::string_view sender) {
  SpfRequest r = req;
  r.ip = req.ip.Unmapped();
  Evaluator ev(dns, r);
  return ev.Run(domain, sender, true);
}

SpfOutcome CheckMailFrom(DnsLookup& dns, const SpfRequest& req) {
  std::string sender = req.mail_from;
  if (sender.empty()) sender = "postmaster@" + req.helo;  // section 2.4
  size_t at = sender.rfind('@');
  if (at == std::string::npos) sender = "postmaster@" + sender;  // section 4.3
  at = sender.rfind('@');
  if (at == 0) sender = "postmaster" + sender;  // an empty local-part
  at = sender.rfind('@');
  return CheckHost(dns, req, sender.substr(at + 1), sender);
}

SpfOutcome CheckHelo(DnsLookup& dns, const SpfRequest& req) {
  return CheckHost(dns, req, req.helo, "postmaster@" + req.helo);
}

}  // namespace hato::msgauth
