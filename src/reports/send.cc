#include "reports/send.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <random>

#include "base/digest.h"
#include "base/strings.h"
#include "http/client.h"
#include "mime/message.h"
#include "msgauth/dmarc.h"
#include "msgauth/keyring.h"
#include "outbound/dsn.h"
#include "reports/format.h"
#include "reports/recorder.h"
#include "smtp/command.h"
#include "store/wait.h"

namespace hato::reports {
namespace {

constexpr int64_t kDay = 86400;

// flock(2) on DATA/reports/send.lock for the length of one run.
class RunLock {
 public:
  explicit RunLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RunLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// The first second (UTC) of "YYYYMMDD", or -1.
int64_t ParseDay(std::string_view day) {
  if (day.size() != 8) return -1;
  for (char c : day) {
    if (c < '0' || c > '9') return -1;
  }
  std::tm tm{};
  tm.tm_year = std::stoi(std::string(day.substr(0, 4))) - 1900;
  tm.tm_mon = std::stoi(std::string(day.substr(4, 2))) - 1;
  tm.tm_mday = std::stoi(std::string(day.substr(6, 2)));
  return static_cast<int64_t>(timegm(&tm));
}

std::string UniqueId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return HexEncode(Sha256(std::to_string(rng()))).substr(0, 16);
}

std::string DomainOf(const std::string& address) {
  size_t at = address.rfind('@');
  return at == std::string::npos ? "" : AsciiLower(address.substr(at + 1));
}

struct Context {
  store::Store& store;
  const config::Config& cfg;
  msgauth::DnsLookup& dns;
  const msgauth::KeyRing* keys;
  std::string from;
  std::string org;
  int64_t now;
  const SendOptions& options;
  SendSummary& summary;
  std::string data_dir;
};

// Signs and queues one report message; counts it.
Status Queue(Context& c, const ReportMail& mail) {
  auto queued = QueueReportMessage(c.store, c.keys, c.from, c.now, ComposeReportMail(mail), mail.to,
                                   &c.summary.log);
  if (!queued) return queued.error();
  if (*queued) ++c.summary.reports;
  return Ok();
}

std::string ToList(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

enum class PostResult { kPosted, kRetry, kFailed };

// RFC 8460 5.3.2: the gzipped report POSTed as application/tlsrpt+gzip; a
// 2xx reply is success. No answer, a 5xx, 408 or 429 may pass (kRetry);
// any other reply (a redirect, a 4xx) will not (kFailed).
PostResult Post(Context& c, const std::string& domain, const std::string& url,
                const std::string& gzip, size_t sessions) {
  http::ClientRequest request;
  request.method = "POST";
  request.url = url;
  request.headers.push_back({"content-type", "application/tlsrpt+gzip"});
  request.body = gzip;
  http::ClientLimits limits;
  limits.timeout = kPostTimeout;
  limits.max_body_bytes = kMaxPostReplyBytes;
  http::BlockingClientOptions options;
  options.resolver = c.options.resolver;
  options.ca_file = c.options.ca_file;
  options.ca_file_key = "outbound.tls_ca_file";
  auto r = http::SendBlocking(options, std::move(request), limits);
  std::string what = "tls-rpt " + domain + ": " + std::to_string(sessions) + " sessions ";
  if (r && r->status >= 200 && r->status < 300) {
    ++c.summary.posted;
    c.summary.log.push_back(what + "posted to " + url);
    return PostResult::kPosted;
  }
  std::string why = r ? "HTTP " + std::to_string(r->status) : r.error().message;
  c.summary.log.push_back(what + "not posted to " + url + ": " + why);
  spdlog::warn("reports: TLS-RPT report of {} not posted to {}: {}", domain, url, why);
  bool transient = !r || r->status >= 500 || r->status == 408 || r->status == 429;
  return transient ? PostResult::kRetry : PostResult::kFailed;
}

// A report waiting to be posted again (RFC 8460 5.3): DATA/reports/posts/
// UID.post holds the line "attempts next_at sessions domain url" and then
// the gzipped report.
struct PendingPost {
  int attempts = 0;  // made so far
  int64_t next_at = 0;
  size_t sessions = 0;
  std::string domain;
  std::string url;
  std::string gzip;
};

std::string PostsDir(const std::string& data_dir) { return data_dir + "/reports/posts"; }

std::optional<PendingPost> ParsePendingPost(const std::string& text) {
  size_t nl = text.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  std::vector<std::string> f;
  for (std::string_view rest(text.data(), nl); !rest.empty();) {
    size_t sp = rest.find(' ');
    f.emplace_back(rest.substr(0, sp));
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  }
  if (f.size() != 5) return std::nullopt;
  auto attempts = ParseUint(f[0]);
  auto next_at = ParseUint(f[1]);
  auto sessions = ParseUint(f[2]);
  if (!attempts || !next_at || !sessions || *attempts < 1 || *attempts >= kMaxPostAttempts ||
      *next_at > static_cast<uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  PendingPost p;
  p.attempts = static_cast<int>(*attempts);
  p.next_at = static_cast<int64_t>(*next_at);
  p.sessions = static_cast<size_t>(*sessions);
  p.domain = f[3];
  p.url = f[4];
  p.gzip = text.substr(nl + 1);
  return p;
}

// Schedules `p`'s next attempt (base << (attempts - 1) seconds from now),
// or gives up after kMaxPostAttempts.
void ReschedulePost(Context& c, const std::string& path, PendingPost p) {
  auto* fs = io::FileSystem::Default();
  if (p.attempts >= kMaxPostAttempts) {
    c.summary.log.push_back("tls-rpt " + p.domain + ": " + p.url + " given up after " +
                            std::to_string(p.attempts) + " attempts");
    (void)fs->Remove(path);
    return;
  }
  int64_t delay = static_cast<int64_t>(c.cfg.reports.post_retry_seconds) << (p.attempts - 1);
  p.next_at = c.now + delay;
  std::string text = std::to_string(p.attempts) + " " + std::to_string(p.next_at) + " " +
                     std::to_string(p.sessions) + " " + p.domain + " " + p.url + "\n" + p.gzip;
  if (auto st = fs->CreateDirs(PostsDir(c.data_dir)); !st) {
    spdlog::warn("reports: {}", st.error().message);
    return;
  }
  if (auto st = fs->WriteFileAtomic(path, text); !st) {
    spdlog::warn("reports: TLS-RPT retry of {} not kept: {}", p.url, st.error().message);
    return;
  }
  c.summary.log.push_back("tls-rpt " + p.domain + ": " + p.url + " tried again in " +
                          std::to_string(delay) + " s (attempt " + std::to_string(p.attempts) +
                          " of " + std::to_string(kMaxPostAttempts) + ")");
}

// Posts again each waiting report that is due; the lock is held.
Status RetryPosts(Context& c) {
  auto* fs = io::FileSystem::Default();
  std::string dir = PostsDir(c.data_dir);
  if (!fs->Exists(dir)) return Ok();
  auto names = fs->ListDir(dir);
  if (!names) return names.error();
  std::sort(names->begin(), names->end());
  for (const auto& name : *names) {
    if (name.size() < 6 || name.compare(name.size() - 5, 5, ".post") != 0) continue;
    std::string path = dir + "/" + name;
    auto text = fs->ReadFile(path);
    if (!text) return text.error();
    auto p = ParsePendingPost(*text);
    if (!p) {
      spdlog::warn("reports: {} is not a waiting TLS-RPT report, removed", path);
      (void)fs->Remove(path);
      continue;
    }
    if (p->next_at > c.now) continue;
    ++p->attempts;
    if (Post(c, p->domain, p->url, p->gzip, p->sessions) == PostResult::kRetry) {
      ReschedulePost(c, path, std::move(*p));
    } else {
      (void)fs->Remove(path);
    }
  }
  return Ok();
}

Status SendTls(Context& c, const std::string& domain, const std::vector<TlsSession>& sessions,
               int64_t begin, int64_t end) {
  // RFC 8460 3: the policy domain's _smtp._tls TXT record names where reports go.
  std::vector<std::string> to;
  std::vector<std::string> urls;
  if (auto txt = c.dns.Txt("_smtp._tls." + domain)) {
    for (const auto& t : *txt) {
      if (auto rua = TlsRptRua(t)) {
        to = MailtoAddresses(*rua);
        urls = HttpsRuaUrls(*rua);
        break;
      }
    }
  }
  if (to.empty() && urls.empty()) {
    ++c.summary.skipped;
    c.summary.log.push_back("tls-rpt " + domain + ": no mailto: or https: rua in _smtp._tls." +
                            domain + ", not reported");
    return Ok();
  }
  std::string uid = UniqueId();
  ReportMeta m{c.org, c.from, DayName(begin) + "." + uid + "@" + c.cfg.hostname, begin, end};
  std::string report = TlsReportJson(m, domain, sessions);
  ReportMail mail;
  mail.from = c.from;
  mail.to = to;
  mail.subject = "Report Domain: " + domain + " Submitter: " + c.cfg.hostname + " Report-ID: <" +
                 m.report_id + ">";
  mail.extra_headers = {{"TLS-Report-Domain", domain}, {"TLS-Report-Submitter", c.cfg.hostname}};
  mail.date = outbound::Rfc5322Date(c.now);
  mail.message_id = "tlsrpt." + uid + "@" + c.cfg.hostname;
  mail.report_type = "tlsrpt";
  mail.text = "This is an aggregate TLS report (RFC 8460) from " + c.cfg.hostname + " for " +
              domain + ", " + Rfc3339(begin) + " to " + Rfc3339(end) + ": " +
              std::to_string(sessions.size()) + " sessions.\n";
  mail.attachment = Gzip(report);
  mail.attachment_type = "application/tlsrpt+gzip";
  mail.filename = ReportFilename(c.cfg.hostname, domain, begin, end, uid, "json.gz");
  if (!to.empty()) {
    if (auto st = Queue(c, mail); !st) return st;
    c.summary.log.push_back("tls-rpt " + domain + ": " + std::to_string(sessions.size()) +
                            " sessions reported to " + ToList(to));
  }
  for (const std::string& url : urls) {
    if (Post(c, domain, url, mail.attachment, sessions.size()) != PostResult::kRetry) continue;
    // A URL is one word of the rua (TlsRptRua); kept only if the file can hold it.
    if (url.find_first_of(" \r\n") != std::string::npos) continue;
    PendingPost p{1, 0, sessions.size(), domain, url, mail.attachment};
    ReschedulePost(
        c, PostsDir(c.data_dir) + "/" + uid + "-" + HexEncode(Sha256(url)).substr(0, 8) + ".post",
        std::move(p));
  }
  return Ok();
}

Status SendDmarc(Context& c, const std::string& domain, const std::vector<DmarcRow>& rows,
                 int64_t begin, int64_t end) {
  std::optional<msgauth::DmarcRecord> record;
  if (auto txt = c.dns.Txt("_dmarc." + domain)) {
    for (const auto& t : *txt) {
      if (auto r = msgauth::ParseDmarcRecord(t)) {
        record = *r;
        break;
      }
    }
  }
  std::vector<std::string> to;
  if (record) to = PermittedDmarcDestinations(c.dns, domain, record->rua, &c.summary.log);
  if (to.empty()) {
    ++c.summary.skipped;
    c.summary.log.push_back("dmarc " + domain + ": no permitted mailto: rua in _dmarc." + domain +
                            ", not reported");
    return Ok();
  }
  PublishedPolicy p;
  p.domain = domain;
  p.adkim = record->strict_dkim ? "s" : "r";
  p.aspf = record->strict_spf ? "s" : "r";
  p.p = std::string(msgauth::DmarcPolicyName(record->policy));
  p.sp = std::string(msgauth::DmarcPolicyName(record->subdomain_policy.value_or(record->policy)));
  p.pct = record->pct;
  std::string uid = UniqueId();
  ReportMeta m{c.org, c.from, DayName(begin) + "." + uid + "@" + c.cfg.hostname, begin, end};
  std::string xml = DmarcReportXml(m, p, rows);
  ReportMail mail;
  mail.from = c.from;
  mail.to = to;
  // RFC 7489 7.2.1.1: the suggested subject.
  mail.subject =
      "Report Domain: " + domain + " Submitter: " + c.org + " Report-ID: <" + m.report_id + ">";
  mail.date = outbound::Rfc5322Date(c.now);
  mail.message_id = "dmarc." + uid + "@" + c.cfg.hostname;
  mail.text = "This is a DMARC aggregate report (RFC 7489) from " + c.org + " for " + domain +
              ", " + Rfc3339(begin) + " to " + Rfc3339(end) + ": " + std::to_string(rows.size()) +
              " messages.\n";
  mail.attachment = Gzip(xml);
  mail.attachment_type = "application/gzip";
  mail.filename = ReportFilename(c.cfg.hostname, domain, begin, end, uid, "xml.gz");
  if (auto st = Queue(c, mail); !st) return st;
  c.summary.log.push_back("dmarc " + domain + ": " + std::to_string(rows.size()) +
                          " messages reported to " + ToList(to));
  return Ok();
}

}  // namespace

std::vector<std::string> PermittedDmarcDestinations(msgauth::DnsLookup& dns,
                                                    const std::string& domain,
                                                    std::string_view uris,
                                                    std::vector<std::string>* log) {
  std::vector<std::string> to;
  // RFC 7489 7.1: a destination outside the policy domain's organization
  // must agree to receive its reports.
  std::string org = msgauth::OrganizationalDomain(domain);
  for (const auto& addr : MailtoAddresses(uris)) {
    std::string rua_domain = DomainOf(addr);
    if (msgauth::OrganizationalDomain(rua_domain) != org) {
      bool agreed = false;
      if (auto txt = dns.Txt(domain + "._report._dmarc." + rua_domain)) {
        for (const auto& t : *txt) agreed = agreed || t.rfind("v=DMARC1", 0) == 0;
      }
      if (!agreed) {
        log->push_back("dmarc " + domain + ": <" + addr + "> has no " + domain +
                       "._report._dmarc." + rua_domain + " record, not sent there");
        continue;
      }
    }
    to.push_back(addr);
  }
  return to;
}

Result<bool> QueueReportMessage(store::Store& store, const msgauth::KeyRing* keys,
                                const std::string& from, int64_t now, std::string content,
                                const std::vector<std::string>& to, std::vector<std::string>* log) {
  // RFC 8460 5.3: the report mail must carry a DKIM signature.
  if (keys) {
    auto sig = keys->SignatureFor(content, now);
    if (sig && !sig->empty()) {
      content = *sig + content;
    } else {
      spdlog::warn("reports: no DKIM key for {}: the report goes unsigned", DomainOf(from));
    }
  }
  store::DeliveryRequest req;
  req.return_path = from;
  req.received_at = now;
  store::OutboundRequest out;
  out.content = content;
  out.sender = from;
  for (const auto& rcpt : to) {
    auto local = store.IsLocalDomain(DomainOf(rcpt));
    if (!local) return local.error();
    if (*local) {
      auto account = store.ResolveRecipient(rcpt);
      if (account) {
        if (std::find(req.account_ids.begin(), req.account_ids.end(), account->id) ==
            req.account_ids.end()) {
          req.account_ids.push_back(account->id);
        }
        continue;
      }
      if (account.error().kind != ErrorKind::kNotFound) return account.error();
      log->push_back("  no local account <" + rcpt + ">: not sent there");
      continue;
    }
    out.recipients.push_back(store::OutboundRecipient{rcpt, smtp::kNotifyNever, ""});
  }
  if (!req.account_ids.empty()) {
    req.content = "Return-Path: <" + from + ">\r\n" + content;
    if (auto tree = mime::Parse(req.content)) req.mime = mime::Serialize(*tree);
  }
  if (!out.recipients.empty()) req.outbound = std::move(out);
  if (req.account_ids.empty() && !req.outbound) return false;
  auto receipt = store::Wait<store::DeliveryReceipt>(
      [&](store::Done<store::DeliveryReceipt> done) { store.Deliver(std::move(req), done); });
  if (!receipt) return receipt.error();
  return true;
}

Result<SendSummary> SendDueReports(store::Store& store, const std::string& data_dir,
                                   const config::Config& cfg, msgauth::DnsLookup& dns,
                                   const SendOptions& options) {
  auto* fs = io::FileSystem::Default();
  SendSummary summary;
  std::string root = data_dir + "/reports";
  if (!fs->Exists(root)) return summary;  // nothing ever recorded
  RunLock lock(root + "/send.lock");
  if (!lock.ok()) return Err(ErrorKind::kTemporary, "reports: cannot lock " + root + "/send.lock");
  int64_t now = options.now;
  std::string from = cfg.reports.from;
  if (from.empty()) {
    auto domains = store.ListDomains();
    if (!domains) return domains.error();
    if (domains->empty()) return Err(ErrorKind::kInvalid, "reports: no local domain to send from");
    from = "postmaster@" + domains->front();
  }
  auto keys = msgauth::KeyRing::Load(*fs, data_dir + "/dkim");
  if (!keys) spdlog::warn("reports: DKIM keys: {}", keys.error().message);
  std::string org = cfg.reports.org_name.empty() ? cfg.hostname : cfg.reports.org_name;
  Context c{store, cfg, dns, keys ? &*keys : nullptr, from, org, now, options, summary, data_dir};
  if (auto st = RetryPosts(c); !st) return st.error();
  if (options.retries_only) return summary;
  std::string today = DayName(now);
  int64_t oldest = DayStart(now) - static_cast<int64_t>(cfg.reports.keep_days) * kDay;
  for (Kind kind : {Kind::kTls, Kind::kDmarc}) {
    bool enabled = kind == Kind::kTls ? cfg.reports.tls_rpt : cfg.reports.dmarc;
    std::string dir = KindDir(data_dir, kind);
    if (!fs->Exists(dir)) continue;
    auto names = fs->ListDir(dir);
    if (!names) return names.error();
    std::sort(names->begin(), names->end());
    for (const auto& name : *names) {
      std::string path = dir + "/" + name;
      int64_t begin = ParseDay(name.substr(0, 8));
      if (begin < 0) continue;
      bool sent = name.size() == 13 && name.substr(8) == ".sent";
      bool pending = name.size() == 14 && name.substr(8) == ".jsonl";
      if (!sent && !pending) continue;
      if (begin < oldest) {
        if (pending)
          summary.log.push_back(std::string(KindName(kind)) + " " + name.substr(0, 8) +
                                ": older than reports.keep_days, dropped unsent");
        (void)fs->Remove(path);
        continue;
      }
      if (sent || !enabled) continue;
      std::string day = name.substr(0, 8);
      if (day > today || (day == today && !options.include_today)) continue;
      int64_t end = day == today ? now : begin + kDay - 1;
      auto text = fs->ReadFile(path);
      if (!text) return text.error();
      std::map<std::string, std::vector<TlsSession>> tls;
      std::map<std::string, std::vector<DmarcRow>> dmarc;
      size_t pos = 0;
      while (pos < text->size()) {
        size_t nl = text->find('\n', pos);
        if (nl == std::string::npos) nl = text->size();
        std::string_view line(text->data() + pos, nl - pos);
        pos = nl + 1;
        if (kind == Kind::kTls) {
          if (auto s = ParseTlsSession(line)) tls[s->policy_domain].push_back(std::move(*s));
        } else if (auto r = ParseDmarcRow(line)) {
          dmarc[r->policy_domain].push_back(std::move(*r));
        }
      }
      for (const auto& [domain, sessions] : tls) {
        if (auto st = SendTls(c, domain, sessions, begin, end); !st) return st.error();
      }
      for (const auto& [domain, rows] : dmarc) {
        if (auto st = SendDmarc(c, domain, rows, begin, end); !st) return st.error();
      }
      if (auto st = fs->Rename(path, dir + "/" + day + ".sent"); !st) return st.error();
    }
  }
  return summary;
}

}  // namespace hato::reports
