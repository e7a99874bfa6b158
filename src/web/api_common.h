// Helpers shared by the web site's JSON endpoints (web/account_api.h,
// web/admin_api.h): errors as {"error": ...}, a JSON object body, answers
// that no cache keeps.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "http/server.h"
#include "web/escape.h"

namespace hato::web {

inline http::Response ApiError(int status, std::string_view error) {
  http::Response r = http::Response::Json(status, "{\"error\":" + JsonString(error) + "}");
  r.Set("Cache-Control", "no-store");
  return r;
}

inline http::Response ApiJson(const boost::json::value& v, int status = 200) {
  http::Response r = http::Response::Json(status, boost::json::serialize(v));
  r.Set("Cache-Control", "no-store");
  return r;
}

// A failed store operation as an answer: 404 kNotFound, 409 kExists, 400
// kInvalid, 503 (try later) for the rest.
inline http::Response StoreError(const Error& e) {
  switch (e.kind) {
    case ErrorKind::kNotFound:
      return ApiError(404, e.message);
    case ErrorKind::kExists:
    case ErrorKind::kInUse:
      return ApiError(409, e.message);
    case ErrorKind::kInvalid:
    case ErrorKind::kTooLarge:
      return ApiError(400, e.message);
    default: {
      http::Response r = ApiError(503, "try later");
      r.Set("Retry-After", "5");
      return r;
    }
  }
}

// The request's body as a JSON object, or nullopt.
inline std::optional<boost::json::object> BodyObject(const http::Request& req) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(req.body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// A string member of at most `max` bytes, or nullopt.
inline std::optional<std::string> StringField(const boost::json::object& o, std::string_view key,
                                              size_t max = 1024) {
  const auto* p = o.if_contains(key);
  if (!p || !p->is_string() || p->as_string().size() > max) return std::nullopt;
  return std::string(p->as_string());
}

inline bool BoolField(const boost::json::object& o, std::string_view key) {
  const auto* p = o.if_contains(key);
  return p && p->is_bool() && p->as_bool();
}

inline std::optional<int64_t> IntField(const boost::json::object& o, std::string_view key) {
  const auto* p = o.if_contains(key);
  if (!p) return std::nullopt;
  if (p->is_int64()) return p->as_int64();
  if (p->is_uint64() && p->as_uint64() <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(p->as_uint64());
  return std::nullopt;
}

}  // namespace hato::web
