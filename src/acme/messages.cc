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

std::optional<HttpsUrl> ParseHttpsUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() > 2048 || url.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  url.remove_prefix(kScheme.size());
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  HttpsUrl out;
  out.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  for (char c : out.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  }
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no userinfo
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // an IPv6 literal
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') return std::nullopt;
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? "" : authority.substr(colon);
  }
  if (!authority.empty()) {  // ":port"
    std::string_view digits = authority.substr(1);
    if (digits.empty() || digits.size() > 5) return std::nullopt;
    int port = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) return std::nullopt;
    out.port = port;
  }
  if (host.empty()) return std::nullopt;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == ':';
    if (!ok) return std::nullopt;
  }
  out.host = std::string(host);
  return out;
}

}  // namespace hato::acme
