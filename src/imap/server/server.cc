#include "imap/server/server.h"

#include "imap/server/session.h"
#include "server/login.h"

namespace hato::imap {

void Server::Attach(asio::any_io_executor executor) {
  hub_.SetFallback(std::move(executor));
  // The store calls back on its writer thread after each commit; the hub
  // hands each session its call on the session's own event loop.
  auto relay = [this](const std::vector<int64_t>& mailboxes) { hub_.Notify(mailboxes); };
  if (services_.changes) {
    subscription_ = services_.changes->Subscribe(std::move(relay));
    // Mailbox names and subscriptions (NOTIFY MailboxName, SubscriptionChange).
    records_subscription_ = services_.changes->SubscribeRecords([this](int64_t account) {
      if (account > 0) hub_.NotifyAccount(account);
    });
  } else {
    services_.store->SetChangeListener(std::move(relay));
  }
}

void Server::Detach() {
  if (services_.changes) {
    services_.changes->Unsubscribe(subscription_);
    services_.changes->UnsubscribeRecords(records_subscription_);
  } else {
    services_.store->SetChangeListener(nullptr);
  }
}

awaitable<void> Server::Serve(tcp::socket socket, bool implicit_tls) {
  auto cfg = services_.config->Get();
  std::string refusal_total = "* BYE [UNAVAILABLE] too many connections, try again later";
  std::string refusal_ip =
      "* BYE [UNAVAILABLE] too many connections from your address, try again later";
  std::optional<server::Admission::Ticket> ticket = co_await server::Admit(
      admission_, socket, cfg->imap.max_connections, cfg->imap.max_connections_per_ip,
      cfg->per_ip_limits_on_loopback, refusal_total, refusal_ip);
  if (!ticket) co_return;
  Session session(services_, hub_, trees_, sort_keys_, std::move(socket), implicit_tls);
  server::SessionRegistry::Scope registered(registry_, &session);
  co_await session.Run();
}

}  // namespace hato::imap
