#include "scan/trainer.h"

#include <spdlog/spdlog.h>

#include <map>

#include "scan/client.h"

namespace hato::scan {

std::vector<LearnItem> LearnItems(const store::CopyResult& copy,
                                  const std::vector<store::MailboxInfo>& mailboxes) {
  std::map<int64_t, std::string_view> use;
  for (const store::MailboxInfo& m : mailboxes) use[m.id] = m.special_use;
  auto is = [&use](int64_t id, std::string_view special) {
    auto it = use.find(id);
    return it != use.end() && it->second == special;
  };
  std::vector<LearnItem> out;
  bool to_junk = is(copy.dest_mailbox_id, "\\Junk");
  bool to_trash = is(copy.dest_mailbox_id, "\\Trash");
  for (size_t i = 0; i < copy.dest_ids.size() && i < copy.source_mailbox_ids.size(); ++i) {
    bool from_junk = is(copy.source_mailbox_ids[i], "\\Junk");
    if (to_junk && !from_junk) out.push_back({copy.dest_ids[i], true});
    // Out of Junk into a real folder: it was not spam. Deleting (to Trash)
    // says nothing.
    if (!to_junk && !to_trash && from_junk) out.push_back({copy.dest_ids[i], false});
  }
  return out;
}

Trainer::Trainer(store::Store* store, const server::ConfigSource* config,
                 server::Counters* counters)
    : store_(store), config_(config), counters_(counters) {
  worker_ = std::thread([this] { Run(); });
}

Trainer::~Trainer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void Trainer::OnCopy(int64_t account_id, const store::CopyResult& copy) {
  std::shared_ptr<const config::Config> cfg = config_->Get();
  if (cfg->scan.rspamd_controller_url.empty() || copy.dest_ids.empty()) return;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    if (queued_ + copy.dest_ids.size() > cfg->scan.learn_queue) {
      if (counters_) counters_->learn_dropped.fetch_add(copy.dest_ids.size());
      return;
    }
    queued_ += copy.dest_ids.size();
    queue_.push_back(Job{account_id, copy});
  }
  cv_.notify_one();
}

void Trainer::Run() {
  while (true) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Train(job);
    {
      std::lock_guard lock(mu_);
      queued_ -= job.copy.dest_ids.size();
    }
  }
}

void Trainer::Train(const Job& job) {
  std::shared_ptr<const config::Config> cfg = config_->Get();
  if (cfg->scan.rspamd_controller_url.empty()) return;
  Result<std::vector<store::MailboxInfo>> boxes = store_->ListMailboxes(job.account_id);
  if (!boxes) {
    spdlog::warn("scan: junk training: mailboxes of account {}: {}", job.account_id,
                 boxes.error().message);
    if (counters_) counters_->learn_failed.fetch_add(job.copy.dest_ids.size());
    return;
  }
  for (const LearnItem& item : LearnItems(job.copy, *boxes)) {
    Result<std::string> content = store_->ReadMessage(job.account_id, item.message_id);
    if (!content) {
      if (counters_) counters_->learn_failed.fetch_add(1);
      continue;
    }
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg->scan.timeout_ms);
    Status st = RspamdLearn(cfg->scan, item.spam, *content, deadline);
    if (!st) {
      spdlog::warn("scan: learn{} for account {} message {}: {}", item.spam ? "spam" : "ham",
                   job.account_id, item.message_id, st.error().message);
      if (counters_) counters_->learn_failed.fetch_add(1);
    } else {
      spdlog::info("scan: learned {} for account {} message {}", item.spam ? "spam" : "ham",
                   job.account_id, item.message_id);
      if (counters_) counters_->learn_sent.fetch_add(1);
    }
  }
}

}  // namespace hato::scan
