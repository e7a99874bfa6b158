#include "acme/messages.h"

#include <boost/json.hpp>

namespace hato::acme {
namespace json = boost::json;
namespace {

constexpr int kMaxJsonDepth = 16;

Error Bad(const std::string& what) { return Err(ErrorKind::kInvalid, "acme: " + what); }

Result<json::object> ParseObject(std::string_view text, const char* what) {
  if (text.size() > kMaxResourceBytes) return Bad(std::string(what) + " is too large");
  json::parse_options opt;
  opt.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, json::storage_ptr(), opt);
  if (ec || !v.is_object()) return Bad(std::string(what) + " is not a JSON object");
  return std::move(v.as_object());
}

// A string member; "" when absent. Wrong type: nullopt.
std::optional<std::string> Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

Result<std::string> Required(const json::object& o, std::string_view key, const char* what) {
  auto s = Str(o, key);
  if (!s || s->empty()) {
    return Bad(std::string(what) + " has no " + std::string(key));
  }
  return *s;
}

std::string ErrorDetail(const json::object& o) {
  const json::value* e = o.if_contains("error");
  if (e == nullptr || !e->is_object()) return "";
  auto detail = Str(e->as_object(), "detail");
  auto type = Str(e->as_object(), "type");
  std::string out = type ? *type : "";
  if (detail && !detail->empty()) out += (out.empty() ? "" : ": ") + *detail;
  return out;
}

bool IsBase64UrlChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

Result<Directory> ParseDirectory(std::string_view text) {
  auto o = ParseObject(text, "the directory");
  if (!o) return o.error();
  Directory d;
  for (auto [key, out] :
       {std::pair{"newNonce", &d.new_nonce}, std::pair{"newAccount", &d.new_account},
        std::pair{"newOrder", &d.new_order}}) {
    auto v = Required(*o, key, "the directory");
    if (!v) return v.error();
    *out = *v;
  }
  for (auto [key, out] :
       {std::pair{"revokeCert", &d.revoke_cert}, std::pair{"keyChange", &d.key_change}}) {
    if (auto v = Required(*o, key, "the directory")) *out = *v;
  }
  return d;
}

Result<Order> ParseOrder(std::string_view text) {
  auto o = ParseObject(text, "the order");
  if (!o) return o.error();
  Order order;
  auto status = Required(*o, "status", "the order");
  if (!status) return status.error();
  order.status = *status;
  auto finalize = Required(*o, "finalize", "the order");
  if (!finalize) return finalize.error();
  order.finalize = *finalize;
  auto cert = Str(*o, "certificate");
  if (!cert) return Bad("the order's certificate is not a string");
  order.certificate = *cert;
  const json::value* authz = o->if_contains("authorizations");
  if (authz == nullptr || !authz->is_array()) return Bad("the order has no authorizations");
  if (authz->as_array().size() > kMaxAuthorizations) return Bad("the order has too many names");
  for (const json::value& a : authz->as_array()) {
    if (!a.is_string()) return Bad("an authorization URL is not a string");
    order.authorizations.emplace_back(a.as_string());
  }
  order.error = ErrorDetail(*o);
  return order;
}

Result<Authorization> ParseAuthorization(std::string_view text) {
  auto o = ParseObject(text, "the authorization");
  if (!o) return o.error();
  Authorization a;
  auto status = Required(*o, "status", "the authorization");
  if (!status) return status.error();
  a.status = *status;
  const json::value* id = o->if_contains("identifier");
  if (id == nullptr || !id->is_object()) return Bad("the authorization has no identifier");
  auto value = Required(id->as_object(), "value", "the identifier");
  if (!value) return value.error();
  a.identifier = *value;
  const json::value* ch = o->if_contains("challenges");
  if (ch == nullptr || !ch->is_array()) return Bad("the authorization has no challenges");
  for (const json::value& c : ch->as_array()) {
    if (!c.is_object()) return Bad("a challenge is not an object");
    const json::object& co = c.as_object();
    Challenge out;
    auto type = Str(co, "type");
    auto url = Str(co, "url");
    auto token = Str(co, "token");
    auto st = Str(co, "status");
    if (!type || !url || !token || !st) return Bad("a challenge has a member of the wrong type");
    out.type = *type;
    out.url = *url;
    out.token = *token;
    out.status = *st;
    out.error = ErrorDetail(co);
    a.challenges.push_back(std::move(out));
  }
  return a;
}

const Challenge* Authorization::Find(std::string_view type) const {
  for (const Challenge& c : challenges) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

std::optional<Problem> ParseProblem(std::string_view text) {
  auto o = ParseObject(text, "the problem");
  if (!o) return std::nullopt;
  auto type = Str(*o, "type");
  if (!type || type->empty()) return std::nullopt;
  auto detail = Str(*o, "detail");
  return Problem{*type, detail ? *detail : ""};
}

bool IsValidToken(std::string_view token) {
  if (token.size() < 22 || token.size() > kMaxTokenBytes) return false;
  for (char c : token) {
    if (!IsBase64UrlChar(c)) return false;
  }
  return true;
}

std::string KeyAuthorization(std::string_view token, std::string_view thumbprint) {
  return std::string(token) + "." + std::string(thumbprint);
}

}  // namespace hato::acme
