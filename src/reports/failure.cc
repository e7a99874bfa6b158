#include "reports/failure.h"

#include <spdlog/spdlog.h>

#include "base/digest.h"
#include "base/strings.h"
#include "io/fs.h"
#include "msgauth/keyring.h"
#include "outbound/dsn.h"
#include "reports/send.h"

namespace hato::reports {

namespace {
std::string CountsPath(const std::string& data_dir) { return data_dir + "/reports/failure-limit"; }
}  // namespace

void FailureReporter::LoadCounts(int64_t hour) {
  loaded_ = true;
  auto* fs = io::FileSystem::Default();
  std::string path = CountsPath(data_dir_);
  if (!fs->Exists(path)) return;
  auto text = fs->ReadFile(path);
  if (!text) {
    spdlog::warn("reports: {}", text.error().message);
    return;
  }
  size_t nl = text->find('\n');
  if (nl == std::string::npos || text->substr(0, nl) != std::to_string(hour)) return;
  hour_ = hour;
  for (size_t pos = nl + 1; pos < text->size();) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) break;  // a torn last line
    if (end > pos && counts_.size() < kMaxLimitedDomains) ++counts_[text->substr(pos, end - pos)];
    pos = end + 1;
  }
}

void FailureReporter::SaveAdmitted(const std::string& domain, int64_t hour) {
  auto* fs = io::FileSystem::Default();
  std::string path = CountsPath(data_dir_);
  if (file_hour_ != hour || !counts_file_) {
    counts_file_.reset();
    std::string text = std::to_string(hour) + "\n";
    // The hour's counts so far (the first report after a start: those read back).
    for (const auto& [d, n] : counts_) {
      for (int i = d == domain ? 1 : 0; i < n; ++i) text += d + "\n";
    }
    Status st = fs->CreateDirs(data_dir_ + "/reports");
    if (st) st = fs->WriteFileAtomic(path, text);
    if (!st) {
      spdlog::warn("reports: DMARC failure report counts not kept: {}", st.error().message);
      return;
    }
    auto file = fs->OpenAppend(path);
    if (!file) {
      spdlog::warn("reports: DMARC failure report counts not kept: {}", file.error().message);
      return;
    }
    counts_file_ = std::move(*file);
    file_hour_ = hour;
  }
  if (auto st = counts_file_->Append(domain + "\n"); !st) {
    spdlog::warn("reports: DMARC failure report counts not kept: {}", st.error().message);
    counts_file_.reset();
  }
}

bool FailureReporter::Admit(const std::string& domain, int64_t now, int limit) {
  std::lock_guard lock(mu_);
  int64_t hour = now / 3600;
  if (!loaded_) LoadCounts(hour);
  if (hour != hour_ || counts_.size() >= kMaxLimitedDomains) {
    for (const auto& [d, n] : suppressed_) {
      spdlog::info("reports: {} DMARC failure report(s) about {} not sent (over {} an hour)", n, d,
                   limit);
    }
    hour_ = hour;
    counts_.clear();
    suppressed_.clear();
    file_hour_ = -1;  // the file starts again too
  }
  int& n = counts_[domain];
  if (n >= limit) {
    ++suppressed_[domain];
    return false;
  }
  ++n;
  SaveAdmitted(domain, hour);
  return true;
}

bool FailureReporter::Report(const config::Config& cfg, msgauth::DnsLookup& dns,
                             const FailureEvent& e) {
  if (!cfg.reports.dmarc_failure || e.ruf.empty()) return false;
  if (!FailureReportWanted(e.fo, e.facts)) return false;
  std::vector<std::string> log;
  std::vector<std::string> to = PermittedDmarcDestinations(dns, e.record_domain, e.ruf, &log);
  for (const auto& line : log) spdlog::info("reports: dmarc failure {}", line);
  if (to.empty()) return false;
  if (!Admit(e.from_domain, e.now, cfg.reports.dmarc_failure_per_hour)) return false;

  std::string from = cfg.reports.from;
  if (from.empty()) {
    auto domains = store_.ListDomains();
    if (!domains || domains->empty()) {
      spdlog::warn("reports: no local domain to send DMARC failure reports from");
      return false;
    }
    from = "postmaster@" + domains->front();
  }
  FailureReport r;
  r.from = from;
  r.to = to;
  r.date = outbound::Rfc5322Date(e.now);
  r.message_id = "dmarc-failure." +
                 HexEncode(Sha256(e.headers + std::to_string(e.now) + e.source_ip)).substr(0, 16) +
                 "@" + cfg.hostname;
  r.reporter = cfg.hostname;
  r.auth_failure = AuthFailureType(e.fo, e.facts);
  r.identity_alignment = e.identity_alignment;
  r.reported_domain = e.from_domain;
  r.source_ip = e.source_ip;
  r.original_mail_from = e.mail_from;
  r.arrival_date = r.date;
  r.auth_results = e.auth_results;
  r.delivery_result = e.delivery_result;
  r.dkim_domains = e.dkim_domains;
  r.headers = e.headers;
  auto keys = msgauth::KeyRing::Load(*io::FileSystem::Default(), data_dir_ + "/dkim");
  if (!keys) spdlog::warn("reports: DKIM keys: {}", keys.error().message);
  auto queued = QueueReportMessage(store_, keys ? &*keys : nullptr, from, e.now,
                                   ComposeFailureReport(r), to, &log);
  if (!queued) {
    spdlog::warn("reports: DMARC failure report about {} not queued: {}", e.from_domain,
                 queued.error().message);
    return false;
  }
  spdlog::info("reports: DMARC failure report ({}) about {} from {} queued to {}", r.auth_failure,
               e.from_domain, e.source_ip, to.size());
  if (*queued && kick_) kick_();
  return *queued;
}

}  // namespace hato::reports
