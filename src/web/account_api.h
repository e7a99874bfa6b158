// The member's own pages (issue 13, item 2), as JSON endpoints the web site
// (web/src/account.tsx) calls with its session cookie (or any credential of
// http/auth.h); every state change needs the CSRF header (http/auth.cc):
//   GET  /web/api/me                    address, admin role, quota, aliases,
//                                       app passwords, client set-up
//   POST /web/api/password              {"old","new","signOutOthers"}
//   POST /web/api/app-passwords         {"label"} -> the password, shown once
//   POST /web/api/app-passwords/revoke  {"id"}
//   GET  /web/api/export.zip            all one's mail: a zip of the files of
//                                       `hato export ADDRESS DIR` (mbox)
//   GET  /web/api/export.mbox?folder=F  one folder: that export's F.mbox
// Vacation and forwarding are JMAP (VacationResponse), not here.
//
// SECURITY: the old password is checked by the shared login path
// (server::CheckLogin, with its penalties; app passwords do not count); a
// new password obeys [auth]'s policy; the change ends every IMAP, POP3 and
// SMTP session of the account (its session epoch, server/account_sessions.h)
// and, with signOutOthers, every other web session and API token.
// Exports stream one message at a time (bounded memory).
#pragma once

#include "http/server.h"
#include "web/routes.h"

namespace hato::web {

inline constexpr size_t kMaxPasswordField = 1024;
// Messages read from the store per trip to the blocking pool while exporting,
// and the bytes after which a batch stops early.
inline constexpr size_t kExportBatch = 64;
inline constexpr size_t kExportBatchBytes = 4u << 20;

void RegisterAccountRoutes(http::Router& router, const WebContext& ctx);

}  // namespace hato::web
