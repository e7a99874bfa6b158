#include "dns/secure_stub.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <random>

#include "base/strings.h"
#include "dns/message.h"

namespace hato::dns {

using namespace asio::experimental::awaitable_operators;  // NOLINT: operator|| for timeouts

namespace {

constexpr int kRcodeNxDomain = 3;
// Datagrams read per UDP query before giving up on one that matches (others
// are stale answers or spoofing attempts).
constexpr int kMaxStrayDatagrams = 8;
constexpr size_t kMaxUdpAnswer = 65535;

uint16_t RandomId() {
  thread_local std::mt19937 rng{std::random_device{}()};
  return static_cast<uint16_t>(rng());
}

// The answer to our question: same id, name and type.
bool Answers(const Response& r, uint16_t id, const std::string& name, uint16_t type) {
  return r.id == id && r.qtype == type && r.qname == name;
}

}  // namespace

Result<asio::ip::udp::endpoint> LoopbackResolver(std::string_view address) {
  std::string host(address);
  int port = 53;
  size_t at = host.find('@');
  if (at != std::string::npos) {
    port = std::atoi(host.c_str() + at + 1);
    host.resize(at);
  }
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec || port <= 0 || port > 65535) {
    return Err(ErrorKind::kInvalid, "bad resolver address '" + std::string(address) + "'");
  }
  if (!ip.is_loopback()) {
    return Err(ErrorKind::kInvalid,
               "resolver " + std::string(address) +
                   " is not on loopback: its AD bit cannot be trusted (RFC 7672 2.2)");
  }
  return asio::ip::udp::endpoint(ip, static_cast<unsigned short>(port));
}

awaitable<Result<SecureAnswer>> SecureStub::Query(std::string name, uint16_t type) {
  std::string qname = AsciiLower(name);
  if (!qname.empty() && qname.back() == '.') qname.pop_back();
  uint16_t id = RandomId();
  Result<std::string> query = BuildQuery(id, qname, type);
  if (!query) co_return query.error();
  auto timeout = [&] { return Err(ErrorKind::kTemporary, "dns: no answer for " + qname); };
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  asio::steady_timer timer(ex_);
  boost::system::error_code ec, timer_ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  auto timer_token = asio::redirect_error(asio::use_awaitable, timer_ec);

  std::optional<Response> answer;
  {
    asio::ip::udp::socket udp(ex_);
    udp.open(server_.protocol(), ec);
    if (ec) co_return Err(ErrorKind::kTemporary, "dns: " + ec.message());
    timer.expires_at(deadline);
    auto sent = co_await (udp.async_send_to(asio::buffer(*query), server_, token) ||
                          timer.async_wait(timer_token));
    if (sent.index() != 0 || ec) co_return timeout();
    std::string buf(kMaxUdpAnswer, '\0');
    for (int i = 0; i < kMaxStrayDatagrams && !answer; ++i) {
      asio::ip::udp::endpoint from;
      timer.expires_at(deadline);
      auto got = co_await (udp.async_receive_from(asio::buffer(buf), from, token) ||
                           timer.async_wait(timer_token));
      if (got.index() != 0 || ec) co_return timeout();
      if (from != server_) continue;
      Result<Response> r = ParseResponse(std::string_view(buf).substr(0, std::get<0>(got)));
      if (r && Answers(*r, id, qname, type)) answer = std::move(*r);
    }
    if (!answer) co_return timeout();
  }
  if (answer->tc) {
    // Too large for UDP: the same question over TCP (RFC 7766 5), two
    // length octets before each message (RFC 1035 4.2.2).
    tcp::socket conn(ex_);
    timer.expires_at(deadline);
    tcp::endpoint ep(server_.address(), server_.port());
    auto connected = co_await (conn.async_connect(ep, token) || timer.async_wait(timer_token));
    if (connected.index() != 0 || ec) co_return timeout();
    std::string framed;
    framed.push_back(static_cast<char>(query->size() >> 8));
    framed.push_back(static_cast<char>(query->size() & 0xff));
    framed += *query;
    timer.expires_at(deadline);
    auto wrote = co_await (asio::async_write(conn, asio::buffer(framed), token) ||
                           timer.async_wait(timer_token));
    if (wrote.index() != 0 || ec) co_return timeout();
    unsigned char len[2];
    timer.expires_at(deadline);
    auto got_len = co_await (asio::async_read(conn, asio::buffer(len), token) ||
                             timer.async_wait(timer_token));
    if (got_len.index() != 0 || ec) co_return timeout();
    std::string buf((len[0] << 8) | len[1], '\0');
    timer.expires_at(deadline);
    auto got = co_await (asio::async_read(conn, asio::buffer(buf), token) ||
                         timer.async_wait(timer_token));
    if (got.index() != 0 || ec) co_return timeout();
    Result<Response> r = ParseResponse(buf);
    if (!r || !Answers(*r, id, qname, type) || r->tc) {
      co_return Err(ErrorKind::kTemporary, "dns: bad answer over TCP for " + qname);
    }
    answer = std::move(*r);
  }
  SecureAnswer out;
  out.secure = answer->ad;
  out.canonical = answer->canonical;
  if (answer->rcode == kRcodeNxDomain) {
    out.nxdomain = true;
  } else if (answer->rcode != 0) {
    co_return Err(ErrorKind::kTemporary,
                  "dns: server failure (rcode " + std::to_string(answer->rcode) + ") for " + qname);
  } else {
    out.rdata = std::move(answer->rdata);
  }
  co_return out;
}

}  // namespace hato::dns
