#include "jmap/request.h"

#include <algorithm>

namespace hato::jmap {

std::string ErrorUrn(std::string_view short_type) {
  return "urn:ietf:params:jmap:error:" + std::string(short_type);
}

bool IsValidId(std::string_view s) {
  if (s.empty() || s.size() > kMaxIdLength) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::optional<json::value> ParseJson(std::string_view text) {
  json::parse_options opt;
  opt.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, json::storage_ptr(), opt);
  if (ec) return std::nullopt;
  return v;
}

std::string ProblemJson(const RequestError& e) {
  json::object o;
  o["type"] = e.type;
  o["status"] = e.status;
  if (!e.detail.empty()) o["detail"] = e.detail;
  if (!e.limit.empty()) o["limit"] = e.limit;
  return json::serialize(o);
}

std::variant<ApiRequest, RequestError> DecodeApiRequest(
    std::string_view body, const DecodeLimits& limits,
    const std::vector<std::string>& known_capabilities) {
  auto error = [](std::string_view type, std::string detail, std::string limit = {}) {
    return RequestError{ErrorUrn(type), 400, std::move(detail), std::move(limit)};
  };
  if (body.size() > limits.max_size_request)
    return error("limit", "the request is larger than maxSizeRequest", "maxSizeRequest");
  json::parse_options opt;
  opt.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec, json::storage_ptr(), opt);
  if (ec) {
    if (ec == json::error::too_deep)
      return error("notJSON", "the JSON is nested more deeply than the server accepts");
    return error("notJSON", "the request body is not valid JSON (I-JSON, RFC 7493)");
  }
  const json::object* root = v.if_object();
  if (!root) return error("notRequest", "the request is not a JSON object");
  ApiRequest req;
  // using: [String]
  const json::value* using_v = root->if_contains("using");
  const json::value* calls_v = root->if_contains("methodCalls");
  if (!using_v || !using_v->is_array())
    return error("notRequest", "\"using\" must be an array of capability URIs");
  if (!calls_v || !calls_v->is_array())
    return error("notRequest", "\"methodCalls\" must be an array of invocations");
  for (const json::value& u : using_v->get_array()) {
    if (!u.is_string()) return error("notRequest", "\"using\" must hold strings");
    std::string cap(u.get_string());
    if (std::find(known_capabilities.begin(), known_capabilities.end(), cap) ==
        known_capabilities.end()) {
      return error("unknownCapability", "the server does not support " + cap);
    }
    req.using_capabilities.push_back(std::move(cap));
  }
  const json::array& calls = calls_v->get_array();
  if (calls.size() > limits.max_calls_in_request)
    return error("limit", "more method calls than maxCallsInRequest", "maxCallsInRequest");
  for (const json::value& c : calls) {
    const json::array* inv = c.if_array();
    if (!inv || inv->size() != 3 || !(*inv)[0].is_string() || !(*inv)[1].is_object() ||
        !(*inv)[2].is_string()) {
      return error("notRequest",
                   "each method call must be [name (String), arguments (Object), id (String)]");
    }
    req.calls.push_back(Invocation{std::string((*inv)[0].get_string()), (*inv)[1].get_object(),
                                   std::string((*inv)[2].get_string())});
  }
  if (const json::value* ci = root->if_contains("createdIds")) {
    if (!ci->is_object()) return error("notRequest", "\"createdIds\" must be an object");
    std::map<std::string, std::string> ids;
    for (const auto& kv : ci->get_object()) {
      if (!kv.value().is_string()) return error("notRequest", "\"createdIds\" values are Ids");
      ids[std::string(kv.key())] = std::string(kv.value().get_string());
    }
    req.created_ids = std::move(ids);
  }
  for (const auto& kv : *root) {
    if (kv.key() != "using" && kv.key() != "methodCalls" && kv.key() != "createdIds")
      return error("notRequest", "unknown request property \"" + std::string(kv.key()) + "\"");
  }
  return req;
}

namespace {

// One reference token of a JSON Pointer, unescaped (~1 -> /, ~0 -> ~).
std::optional<std::string> Unescape(std::string_view t) {
  std::string out;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '~') {
      out.push_back(t[i]);
      continue;
    }
    if (i + 1 >= t.size()) return std::nullopt;
    if (t[i + 1] == '0') {
      out.push_back('~');
    } else if (t[i + 1] == '1') {
      out.push_back('/');
    } else {
      return std::nullopt;
    }
    ++i;
  }
  return out;
}

std::optional<json::value> Evaluate(const json::value& cur, std::string_view rest, int depth) {
  if (depth > static_cast<int>(kMaxJsonDepth) + 2) return std::nullopt;
  if (rest.empty()) return cur;
  if (rest.front() != '/') return std::nullopt;
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  std::string_view raw = rest.substr(0, slash);
  std::string_view after =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  auto token = Unescape(raw);
  if (!token) return std::nullopt;
  if (const json::array* a = cur.if_array()) {
    if (*token == "*") {
      // RFC 8620 section 3.7: apply the rest to each item; arrays are flattened.
      json::array out;
      for (const json::value& item : *a) {
        auto r = Evaluate(item, after, depth + 1);
        if (!r) return std::nullopt;
        if (r->is_array()) {
          for (auto& x : r->get_array()) out.push_back(x);
        } else {
          out.push_back(std::move(*r));
        }
      }
      return json::value(std::move(out));
    }
    if (token->empty() || token->size() > 9) return std::nullopt;
    if (token->size() > 1 && (*token)[0] == '0') return std::nullopt;
    size_t idx = 0;
    for (char c : *token) {
      if (c < '0' || c > '9') return std::nullopt;
      idx = idx * 10 + static_cast<size_t>(c - '0');
    }
    if (idx >= a->size()) return std::nullopt;
    return Evaluate((*a)[idx], after, depth + 1);
  }
  if (const json::object* o = cur.if_object()) {
    const json::value* next = o->if_contains(*token);
    if (!next) return std::nullopt;
    return Evaluate(*next, after, depth + 1);
  }
  return std::nullopt;
}

}  // namespace

std::optional<json::value> EvaluatePointer(const json::value& root, std::string_view pointer) {
  return Evaluate(root, pointer, 0);
}

std::optional<std::string> ResolveReferences(json::object& args,
                                             const std::vector<Response>& responses) {
  std::vector<std::string> refs;
  for (const auto& kv : args)
    if (!kv.key().empty() && kv.key().front() == '#') refs.emplace_back(kv.key());
  for (const std::string& key : refs) {
    std::string plain = key.substr(1);
    if (args.contains(plain)) return std::string("invalidArguments");
    const json::object* ref = args.at(key).if_object();
    if (!ref) return std::string("invalidResultReference");
    const json::value* result_of = ref->if_contains("resultOf");
    const json::value* name = ref->if_contains("name");
    const json::value* path = ref->if_contains("path");
    if (!result_of || !result_of->is_string() || !name || !name->is_string() || !path ||
        !path->is_string())
      return std::string("invalidResultReference");
    const Response* found = nullptr;
    for (const Response& r : responses) {
      if (r.id == result_of->get_string() && r.name == name->get_string()) {
        found = &r;
        break;
      }
    }
    if (!found) return std::string("invalidResultReference");
    json::value root(found->args);
    auto v = EvaluatePointer(root, path->get_string());
    if (!v) return std::string("invalidResultReference");
    args.erase(key);
    args[plain] = std::move(*v);
  }
  return std::nullopt;
}

}  // namespace hato::jmap
