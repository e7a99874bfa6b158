// RFC 8058 one-click unsubscribe over HTTP, on the one HTTP server
// (src/http): /lists/unsubscribe?token=TOKEN (lists::UnsubscribeToken).
//
//   POST with the body List-Unsubscribe=One-Click   the member leaves the list
//                                                    at once, no login (RFC 8058
//                                                    section 3.2); 200 and a page
//   GET                                              a confirm page with a button
//                                                    that makes that POST; a GET
//                                                    never unsubscribes
//   a token that is malformed or not ours            400 and a page saying so
//
// Pages in English or Japanese by Accept-Language. Thread-safety: the handler
// runs on any session loop; the store calls go to the blocking pool.
#pragma once

#include <string>

#include "http/server.h"
#include "server/services.h"

namespace hato::lists {

inline constexpr std::string_view kUnsubscribePath = "/lists/unsubscribe";

void AddUnsubscribeRoutes(http::Router& router, server::Services* services, std::string key);

}  // namespace hato::lists
