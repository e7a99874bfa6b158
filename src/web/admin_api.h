// The admin console's endpoints (issue 13, item 3), under /web/admin/. Every
// one needs an account with the admin role (`hato user add ... --admin`,
// `hato admin grant`), checked here against the store on each request: a
// non-admin gets 403 whatever the page shows. State changes are POSTs, so a
// cookie needs the CSRF header (http/auth.cc); each is written to the audit
// log (web/audit.h), refused ones included. Store operations only, never SQL.
//   GET  /web/admin/overview                 health, key figures (charts), queue size
//   GET  /web/admin/domains                  POST .../domains/add|remove {"domain"}
//   GET  /web/admin/accounts                 live and removed (with the purge date)
//   POST /web/admin/accounts/add             {"address","password","admin"}
//   POST /web/admin/accounts/remove|restore  {"address"}
//   POST /web/admin/accounts/quota           {"address","limit"} (bytes; null = none)
//   POST /web/admin/accounts/password        {"address","password"}
//   POST /web/admin/accounts/admin           {"address","admin"}
//   GET  /web/admin/aliases                  POST .../aliases/add {"alias","account"},
//                                            .../aliases/remove {"alias"}
//   GET  /web/admin/queue                    POST .../queue/action {"id","action"}
//                                            (retry | hold | release | delete)
//   GET  /web/admin/backups                  sets and the running job with its progress
//   POST /web/admin/backups/create           POST .../backups/verify {"id"} ("" = all)
//   GET  /web/admin/dns?domain=D[&check=1]   the records to publish (as `hato init`), and
//                                            with check=1 what DNS answers (`hato dns check`)
//   GET  /web/admin/audit                    the newest audit entries
#pragma once

#include "http/server.h"
#include "web/routes.h"

namespace hato::web {

inline constexpr size_t kAuditShown = 200;         // entries GET /web/admin/audit returns
inline constexpr int kDnsCheckTimeoutSeconds = 5;  // per query of a DNS check

void RegisterAdminRoutes(http::Router& router, const WebContext& ctx);

}  // namespace hato::web
