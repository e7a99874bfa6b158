// JMAP over HTTP (RFC 8620, RFC 8621): the session resource, the API
// endpoint, blob upload/download and EventSource push, registered on the
// HTTP router (app/http_routes.cc).
//
// The life of a request: the HTTP server authenticates it (http/auth.h);
// POST /jmap/api/ decodes the body (jmap/request.h, pure); the whole request
// then runs on the blocking pool: each method call resolves its result
// references, runs its handler (jmap/mail.cc), which reads through store
// operations and writes through them too (acknowledged only after the
// store's commit), and the responses are serialised. Push: the store's
// change feed wakes EventSource streams, which compare states and send
// StateChange (section 7.3).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "http/server.h"
#include "jmap/request.h"
#include "server/services.h"

namespace hato::jmap {

// Registers /.well-known/jmap, /jmap/api/, /jmap/upload/, /jmap/download/
// and /jmap/eventsource/ on `router`. `data_dir` holds uploaded blobs.
void AddRoutes(http::Router& router, server::Services& services, const std::string& data_dir);

// The account's mailboxes and messages as one request sees them, loaded on
// first use and reloaded after a write.
struct AccountData {
  std::vector<store::MailboxInfo> mailboxes;
  std::vector<store::EmailRow> rows;                  // live rows, by message id
  std::map<std::string, std::vector<size_t>> emails;  // Email id -> indexes into rows
};

// What a method handler works with. Runs on the blocking pool.
struct Context {
  server::Services& svc;
  const config::Config& cfg;
  int64_t account_id = 0;
  std::string address;
  std::string data_dir;
  std::map<std::string, std::string> created_ids;  // creation id -> server id
  std::optional<AccountData> data;                 // Load() fills it; writes reset it

  // The account's data; nullptr after a store error (then `error` says why).
  const AccountData* Load();
  std::string error;
  // A shared, read-only account (a list archive, jmap/mail.h SharedAccount):
  // only the read methods run (RunRequest), Mailbox myRights say so.
  bool read_only = false;
};

// A method's output: responses (usually one), or an error.
struct MethodOutput {
  std::vector<std::pair<std::string, json::object>> responses;
  std::string error_type;  // method-level error (section 3.6.2); "" = none
  std::string error_description;
  static MethodOutput Error(std::string type, std::string description = {}) {
    MethodOutput o;
    o.error_type = std::move(type);
    o.error_description = std::move(description);
    return o;
  }
  static MethodOutput One(std::string name, json::object args) {
    MethodOutput o;
    o.responses.emplace_back(std::move(name), std::move(args));
    return o;
  }
};

using MethodFn = MethodOutput (*)(Context& ctx, json::object& args);

// The mail methods (jmap/mail.cc): name -> handler, with the capability each needs.
struct MethodEntry {
  const char* name;
  const char* capability;
  MethodFn fn;
};
const std::vector<MethodEntry>& MailMethods();

// Account ids in JMAP form ("a" + store id) and back.
std::string AccountId(int64_t id);

// The optional maxChanges argument of /changes and /queryChanges (RFC 8620
// sections 5.2 and 5.6): a positive UnsignedInt, or absent or null (no
// limit: `out` left empty). False when it is anything else (invalidArguments).
bool ReadMaxChanges(const json::object& args, std::optional<uint64_t>& out);

// Runs a decoded request (blocking). Returns the Response object.
json::object RunRequest(Context& ctx, ApiRequest& req);

}  // namespace hato::jmap
