#include "imap/server/server.h"

#include "imap/server/session.h"

namespace hato::imap {

void Server::Attach(asio::any_io_executor executor) {
  executor_ = std::move(executor);
  // The store calls back on its writer thread after each commit; hop to the
  // event loop, where the hub and the sessions live.
  services_.store->SetChangeListener([this](const std::vector<int64_t>& mailboxes) {
    asio::post(executor_, [this, mailboxes] { hub_.Notify(mailboxes); });
  });
}

void Server::Detach() { services_.store->SetChangeListener(nullptr); }

awaitable<void> Server::Serve(tcp::socket socket) {
  auto cfg = services_.config->Get();
  if (!sessions_.TryAcquire(cfg->imap.max_connections)) {
    std::string msg = "* BYE [UNAVAILABLE] too many connections, try again later\r\n";
    boost::system::error_code ec;
    auto buffer = asio::buffer(msg);
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    co_await asio::async_write(socket, buffer, token);
    co_return;
  }
  auto slot = sessions_.Adopt();
  Session session(services_, hub_, std::move(socket));
  server::SessionRegistry::Scope registered(registry_, &session);
  co_await session.Run();
}

}  // namespace hato::imap
