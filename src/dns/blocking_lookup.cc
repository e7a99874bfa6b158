#include "dns/blocking_lookup.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unbound.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "base/strings.h"
#include "dns/rdata.h"
#include "dns/unbound.h"

namespace hato::dns {
namespace {

// How often the pump thread looks at its stop flag while no answer arrives.
constexpr int kPumpPollMs = 200;
// Answers are also kept here, in front of libunbound's own cache: a hit
// costs a map lookup instead of two thread hand-offs. Kept for their TTL, at
// most kMaxAnswerCacheSeconds; at most kMaxCachedAnswers (oldest out first).
constexpr int kMaxAnswerCacheSeconds = 300;
constexpr size_t kMaxCachedAnswers = 4096;

using RawAnswer = UnboundAnswer;

// One query in flight: the waiting thread and libunbound's callback share it.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Result<RawAnswer> answer = Err(ErrorKind::kTemporary, "dns: no answer");
};

}  // namespace

class SharedLookup {
 public:
  explicit SharedLookup(LookupOptions options) : options_(std::move(options)) {}
  SharedLookup(const SharedLookup&) = delete;
  SharedLookup& operator=(const SharedLookup&) = delete;

  ~SharedLookup() {
    stop_ = true;
    if (pump_.joinable()) pump_.join();
    if (ctx_) ub_ctx_delete(ctx_);
  }

  Status Open() {
    // Resolution runs on libunbound's thread; answers come back through
    // ub_fd, which the pump thread watches and hands to the waiters.
    auto ctx = NewUnboundContext(options_.forward_to);
    if (!ctx) return ctx.error();
    ctx_ = *ctx;
    pump_ = std::thread([this] { Pump(); });
    return Ok();
  }

  // The cached answer, or waits for it until `deadline` (and at most the
  // query timeout). Temporary failures are not cached.
  Result<RawAnswer> Resolve(const std::string& name, int type,
                            std::chrono::steady_clock::time_point deadline) {
    std::string key = std::to_string(type) + " " + AsciiLower(name);
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(cache_mu_);
      auto it = cache_.find(key);
      if (it != cache_.end() && it->second.expires > now) return it->second.answer;
    }
    Result<RawAnswer> answer = ResolveUncached(name, type, deadline);
    if (answer && answer->ttl > 0) {
      auto ttl = std::chrono::seconds(std::min(answer->ttl, kMaxAnswerCacheSeconds));
      std::lock_guard lock(cache_mu_);
      if (cache_.size() >= kMaxCachedAnswers && !order_.empty()) {
        cache_.erase(order_.front());
        order_.pop_front();
      }
      auto [it, added] = cache_.insert_or_assign(key, Cached{*answer, now + ttl});
      if (added) order_.push_back(key);
    }
    return answer;
  }

 private:
  struct Cached {
    RawAnswer answer;
    std::chrono::steady_clock::time_point expires;
  };

  Result<RawAnswer> ResolveUncached(const std::string& name, int type,
                                    std::chrono::steady_clock::time_point deadline) {
    auto now = std::chrono::steady_clock::now();
    deadline = std::min(deadline, now + options_.query_timeout);
    if (now >= deadline) {
      return Err(ErrorKind::kTemporary, "dns: time budget spent before looking up " + name);
    }
    auto waiter = std::make_shared<Waiter>();
    // Owned by OnAnswer once the query is started, unless it is cancelled.
    auto* ticket = new std::shared_ptr<Waiter>(waiter);
    int id = 0;
    int rc = ub_resolve_async(ctx_, name.c_str(), type, kClassIn, ticket, &OnAnswer, &id);
    if (rc != 0) {
      delete ticket;
      return Err(ErrorKind::kTemporary, std::string("dns: ") + ub_strerror(rc));
    }
    std::unique_lock lock(waiter->mu);
    if (!waiter->cv.wait_until(lock, deadline, [&] { return waiter->done; })) {
      lock.unlock();
      // Cancelled: the callback will not run, the ticket is ours to free.
      // Otherwise the answer is being delivered and OnAnswer frees it.
      if (ub_cancel(ctx_, id) == 0) delete ticket;
      return Err(ErrorKind::kTemporary, "dns: timed out looking up " + name);
    }
    return std::move(waiter->answer);
  }

  static void OnAnswer(void* arg, int err, ub_result* result) {
    std::unique_ptr<std::shared_ptr<Waiter>> ticket(static_cast<std::shared_ptr<Waiter>*>(arg));
    Result<RawAnswer> answer = TakeAnswer(err, result);
    Waiter& w = **ticket;
    std::lock_guard lock(w.mu);
    w.answer = std::move(answer);
    w.done = true;
    w.cv.notify_all();
  }

  void Pump() {
    pollfd p{ub_fd(ctx_), POLLIN, 0};
    while (!stop_) {
      int n = ::poll(&p, 1, kPumpPollMs);
      if (n > 0) ub_process(ctx_);
    }
  }

  LookupOptions options_;
  ub_ctx* ctx_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread pump_;
  std::mutex cache_mu_;
  std::map<std::string, Cached> cache_;
  std::deque<std::string> order_;  // keys, oldest first
};

Result<std::shared_ptr<SharedLookup>> OpenSharedLookup(const LookupOptions& options) {
  auto shared = std::make_shared<SharedLookup>(options);
  if (auto st = shared->Open(); !st) return st.error();
  return shared;
}

namespace {

// Resolves and maps the answers of one type; NXDOMAIN is kNotFound.
template <typename T, typename Parse>
Result<std::vector<T>> Lookup(SharedLookup& shared, std::string_view name, int type,
                              std::chrono::steady_clock::time_point deadline, Parse parse) {
  std::string qname(name);
  Result<RawAnswer> raw = shared.Resolve(qname, type, deadline);
  if (!raw) return raw.error();
  if (raw->nxdomain) return Err(ErrorKind::kNotFound, "no such domain: " + qname);
  std::vector<T> out;
  for (const auto& rd : raw->rdata) {
    std::optional<T> v = parse(rd);
    if (v) out.push_back(std::move(*v));
  }
  return out;
}

std::optional<msgauth::IpAddress> ParseIp(std::string_view rdata) {
  std::optional<std::string> text = ParseAddress(rdata);
  if (!text) return std::nullopt;
  return msgauth::IpAddress::Parse(*text);
}

}  // namespace

BudgetLookup::BudgetLookup(std::shared_ptr<SharedLookup> shared, std::chrono::milliseconds budget)
    : shared_(std::move(shared)), deadline_(std::chrono::steady_clock::now() + budget) {}

Result<std::vector<std::string>> BudgetLookup::Txt(std::string_view name) {
  return Lookup<std::string>(*shared_, name, kTypeTxt, deadline_, ParseTxt);
}

Result<std::vector<msgauth::IpAddress>> BudgetLookup::A(std::string_view name) {
  return Lookup<msgauth::IpAddress>(*shared_, name, kTypeA, deadline_, ParseIp);
}

Result<std::vector<msgauth::IpAddress>> BudgetLookup::Aaaa(std::string_view name) {
  return Lookup<msgauth::IpAddress>(*shared_, name, kTypeAaaa, deadline_, ParseIp);
}

Result<std::vector<msgauth::MxRecord>> BudgetLookup::Mx(std::string_view name) {
  auto parse = [](std::string_view rd) -> std::optional<msgauth::MxRecord> {
    std::optional<MxRecord> mx = ParseMx(rd);
    if (!mx) return std::nullopt;
    return msgauth::MxRecord{mx->preference, mx->host};
  };
  return Lookup<msgauth::MxRecord>(*shared_, name, kTypeMx, deadline_, parse);
}

Result<std::vector<std::string>> BudgetLookup::Ptr(const msgauth::IpAddress& ip) {
  std::string name = ip.ReverseLabels() + (ip.v6 ? ".ip6.arpa" : ".in-addr.arpa");
  return Lookup<std::string>(*shared_, name, kTypePtr, deadline_, ParseName);
}

Result<std::vector<SrvRecord>> BudgetLookup::Srv(std::string_view name) {
  return Lookup<SrvRecord>(*shared_, name, kTypeSrv, deadline_, ParseSrv);
}

Result<std::vector<std::string>> BudgetLookup::Cname(std::string_view name) {
  return Lookup<std::string>(*shared_, name, kTypeCname, deadline_, ParseName);
}

}  // namespace hato::dns
