#include "dns/resolver.h"

#include <idn2.h>
#include <spdlog/spdlog.h>
#include <unbound.h>

#include <functional>

#include "base/strings.h"
#include "dns/unbound.h"
#include "io/await.h"

namespace hato::dns {
namespace {

using Raw = UnboundAnswer;

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
    auto ctx = NewUnboundContext(options_.forward_to);
    if (!ctx) return ctx.error();
    ctx_ = *ctx;
    // Answers come back through ub_fd, which the event loop watches.
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

  awaitable<Result<std::vector<std::string>>> LookupTxt(std::string name) override {
    Result<Raw> raw = co_await Query(name, kTypeTxt);
    if (!raw) co_return raw.error();
    if (raw->nxdomain) co_return Err(ErrorKind::kNotFound, "no such name: " + name);
    std::vector<std::string> out;
    for (const auto& rd : raw->rdata) {
      auto txt = ParseTxt(rd);
      if (txt) out.push_back(std::move(*txt));
    }
    co_return out;
  }

 private:
  // One resolve_async in flight: owns the completion until libunbound calls back.
  struct Pending {
    std::function<void(Result<Raw>)> done;
  };

  static void OnAnswer(void* arg, int err, ub_result* result) {
    std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
    p->done(TakeAnswer(err, result));
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
