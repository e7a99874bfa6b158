#include "dns/resolver.h"

#include <idn2.h>
#include <spdlog/spdlog.h>
#include <unbound.h>

#include <functional>

#include "base/strings.h"
#include "io/await.h"

namespace hato::dns {
namespace {

constexpr int kTypeA = 1;
constexpr int kTypeMx = 15;
constexpr int kTypeAaaa = 28;
constexpr int kClassIn = 1;
constexpr int kRcodeNxDomain = 3;

// What libunbound answered for one name and type.
struct Raw {
  bool nxdomain = false;
  std::vector<std::string> rdata;
};

class UnboundResolver final : public Resolver {
 public:
  UnboundResolver(asio::any_io_executor ex, ResolverOptions options)
      : ex_(std::move(ex)), options_(std::move(options)), fd_(ex_) {}

  ~UnboundResolver() override {
    *alive_ = false;
    boost::system::error_code ec;
    fd_.cancel(ec);
    fd_.release();  // the fd belongs to the ub_ctx
    if (ctx_) ub_ctx_delete(ctx_);
  }

  Status Open() {
    ctx_ = ub_ctx_create();
    if (!ctx_) return Err(ErrorKind::kInternal, "dns: cannot create the libunbound context");
    int rc = 0;
    if (!options_.forward_to.empty()) {
      // A resolver on this host (a local cache, or the tests' DNS server)
      // must be allowed: libunbound refuses to query localhost by default.
      rc = ub_ctx_set_option(ctx_, "do-not-query-localhost:", "no");
      if (rc == 0) rc = ub_ctx_set_fwd(ctx_, options_.forward_to.c_str());
    } else {
      rc = ub_ctx_resolvconf(ctx_, nullptr);
    }
    if (rc != 0) {
      return Err(ErrorKind::kInvalid,
                 "dns: resolver '" + options_.forward_to + "': " + ub_strerror(rc));
    }
    // Answers come back through ub_fd, which the event loop watches.
    if ((rc = ub_ctx_async(ctx_, 1)) != 0) {
      return Err(ErrorKind::kInternal, std::string("dns: ") + ub_strerror(rc));
    }
    fd_.assign(ub_fd(ctx_));
    Pump();
    return Ok();
  }

  awaitable<Result<std::vector<MxRecord>>> LookupMx(std::string domain) override {
    Result<Raw> raw = co_await Query(domain, kTypeMx);
    if (!raw) co_return raw.error();
    if (raw->nxdomain) co_return Err(ErrorKind::kNotFound, "no such domain: " + domain);
    std::vector<MxRecord> out;
    for (const auto& rd : raw->rdata) {
      auto mx = ParseMx(rd);
      if (mx) out.push_back(std::move(*mx));
    }
    co_return out;
  }

  awaitable<Result<std::vector<std::string>>> LookupAddresses(std::string host) override {
    std::vector<std::string> out;
    bool nx = false;
    for (int type : {kTypeA, kTypeAaaa}) {
      Result<Raw> raw = co_await Query(host, type);
      if (!raw) co_return raw.error();
      nx = nx || raw->nxdomain;
      for (const auto& rd : raw->rdata) {
        auto a = ParseAddress(rd);
        if (a) out.push_back(std::move(*a));
      }
    }
    if (out.empty() && nx) co_return Err(ErrorKind::kNotFound, "no such host: " + host);
    co_return out;
  }

 private:
  // One resolve_async in flight: owns the completion until libunbound calls back.
  struct Pending {
    std::function<void(Result<Raw>)> done;
  };

  static void OnAnswer(void* arg, int err, ub_result* result) {
    std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
    if (err != 0 || !result) {
      if (result) ub_resolve_free(result);
      p->done(Err(ErrorKind::kTemporary, std::string("dns: ") + ub_strerror(err)));
      return;
    }
    Raw raw;
    if (result->rcode == kRcodeNxDomain || result->nxdomain) {
      raw.nxdomain = true;
    } else if (result->rcode != 0) {
      int rcode = result->rcode;
      ub_resolve_free(result);
      p->done(
          Err(ErrorKind::kTemporary, "dns: server failure (rcode " + std::to_string(rcode) + ")"));
      return;
    } else if (result->havedata) {
      for (int i = 0; result->data[i]; ++i) {
        raw.rdata.emplace_back(result->data[i], static_cast<size_t>(result->len[i]));
      }
    }
    ub_resolve_free(result);
    p->done(std::move(raw));
  }

  awaitable<Result<Raw>> Query(const std::string& name, int type) {
    ub_ctx* ctx = ctx_;
    std::string qname = name;
    auto start = [ctx, qname, type](std::function<void(Result<Raw>)> done) {
      auto p = std::make_unique<Pending>(Pending{std::move(done)});
      int rc = ub_resolve_async(ctx, qname.c_str(), type, kClassIn, p.get(), &OnAnswer, nullptr);
      if (rc != 0) {
        p->done(Err(ErrorKind::kTemporary, std::string("dns: ") + ub_strerror(rc)));
        return;
      }
      p.release();  // OnAnswer owns it now
    };
    std::chrono::milliseconds timeout = std::chrono::seconds(options_.timeout_seconds);
    Result<Raw> r = co_await io::AwaitCallback<Raw>(std::move(start), timeout);
    co_return r;
  }

  // Waits for libunbound's fd to become readable and lets it deliver answers.
  void Pump() {
    std::shared_ptr<bool> alive = alive_;
    fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                   [this, alive](boost::system::error_code ec) {
                     if (!*alive || ec == asio::error::operation_aborted) return;
                     if (!ec) ub_process(ctx_);
                     Pump();
                   });
  }

  asio::any_io_executor ex_;
  ResolverOptions options_;
  asio::posix::stream_descriptor fd_;
  ub_ctx* ctx_ = nullptr;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

Result<std::unique_ptr<Resolver>> NewUnboundResolver(asio::any_io_executor executor,
                                                     const ResolverOptions& options) {
  auto r = std::make_unique<UnboundResolver>(std::move(executor), options);
  if (auto st = r->Open(); !st) return st.error();
  return std::unique_ptr<Resolver>(std::move(r));
}

Result<std::string> ToAsciiDomain(std::string_view domain) {
  bool ascii = true;
  for (unsigned char c : domain) ascii = ascii && c < 0x80;
  if (ascii) return AsciiLower(domain);
  std::string in(domain);
  char* out = nullptr;
  int rc = idn2_to_ascii_8z(in.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  if (rc != IDN2_OK) {
    return Err(ErrorKind::kInvalid,
               "invalid international domain '" + in + "': " + idn2_strerror(rc));
  }
  std::string ascii_name(out);
  idn2_free(out);
  return AsciiLower(ascii_name);
}

}  // namespace hato::dns
