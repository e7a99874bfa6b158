#include "outbound/mta_sts_policy.h"

#include "base/strings.h"

namespace hato::outbound {
namespace {

// Splits at '\n' (a preceding '\r' dropped).
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

std::optional<std::string> ParseStsRecord(std::string_view txt) {
  // sts-text-record = sts-version 1*(*WSP ";" *WSP sts-field) [";"]
  // sts-version = "v=STSv1"; sts-id = "id=" 1*32(ALPHA / DIGIT)
  std::optional<std::string> id;
  bool first = true;
  while (true) {
    size_t semi = txt.find(';');
    std::string_view field = TrimSpaces(txt.substr(0, semi));
    if (first) {
      if (field != "v=STSv1") return std::nullopt;
      first = false;
    } else if (!field.empty()) {
      size_t eq = field.find('=');
      if (eq == std::string_view::npos || eq == 0) return std::nullopt;
      std::string_view name = field.substr(0, eq), value = field.substr(eq + 1);
      if (name == "id") {
        if (id || value.empty() || value.size() > 32) return std::nullopt;
        for (char c : value) {
          if (!IsAlnum(c)) return std::nullopt;
        }
        id = std::string(value);
      }
    }
    if (semi == std::string_view::npos) break;
    txt.remove_prefix(semi + 1);
  }
  return id;
}

Result<StsPolicy> ParseStsPolicy(std::string_view text) {
  if (text.size() > kMaxPolicyBytes) return Err(ErrorKind::kTooLarge, "MTA-STS policy too large");
  StsPolicy p;
  bool version = false, mode = false, max_age = false;
  for (std::string_view line : Lines(text)) {
    if (TrimSpaces(line).empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Err(ErrorKind::kInvalid, "MTA-STS policy: a line without ':'");
    }
    std::string_view key = TrimSpaces(line.substr(0, colon));
    std::string_view value = TrimSpaces(line.substr(colon + 1));
    if (key == "version") {
      if (value != "STSv1") return Err(ErrorKind::kInvalid, "MTA-STS policy: version is not STSv1");
      version = true;
    } else if (key == "mode") {
      if (value == "enforce") {
        p.mode = StsPolicy::Mode::kEnforce;
      } else if (value == "testing") {
        p.mode = StsPolicy::Mode::kTesting;
      } else if (value == "none") {
        p.mode = StsPolicy::Mode::kNone;
      } else {
        return Err(ErrorKind::kInvalid, "MTA-STS policy: unknown mode");
      }
      mode = true;
    } else if (key == "max_age") {
      auto n = ParseUint(value);
      if (!n || value.size() > 10 || *n > static_cast<uint64_t>(kMaxPolicyAge)) {
        return Err(ErrorKind::kInvalid, "MTA-STS policy: bad max_age");
      }
      p.max_age = static_cast<int64_t>(*n);
      max_age = true;
    } else if (key == "mx") {
      if (value.empty() || value.size() > 255) {
        return Err(ErrorKind::kInvalid, "MTA-STS policy: bad mx");
      }
      std::string mx = AsciiLower(value);
      if (mx.back() == '.') mx.pop_back();
      p.mx.push_back(std::move(mx));
    }
    // Other keys: ignored (section 3.2, extensions).
  }
  if (!version || !mode || !max_age) {
    return Err(ErrorKind::kInvalid, "MTA-STS policy: version, mode or max_age missing");
  }
  if (p.mode != StsPolicy::Mode::kNone && p.mx.empty()) {
    return Err(ErrorKind::kInvalid, "MTA-STS policy: no mx pattern");
  }
  return p;
}

bool StsMxMatches(const StsPolicy& policy, std::string_view host_in) {
  std::string host = AsciiLower(host_in);
  if (!host.empty() && host.back() == '.') host.pop_back();
  for (const std::string& pattern : policy.mx) {
    if (pattern.rfind("*.", 0) == 0) {
      // "*.example.com" matches "mail.example.com", not "example.com" or
      // "a.b.example.com".
      std::string_view suffix = std::string_view(pattern).substr(1);  // ".example.com"
      if (host.size() > suffix.size() &&
          host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0 &&
          host.find('.') == host.size() - suffix.size()) {
        return true;
      }
    } else if (host == pattern) {
      return true;
    }
  }
  return false;
}

Result<std::string> StsPolicyBody(const http::ResponseHead& head, std::string body) {
  if (head.status != 200) {
    // Redirects included: section 3.3 says not to follow them.
    return Err(ErrorKind::kNotFound, "policy fetch answered " + std::to_string(head.status));
  }
  auto type = head.Get("content-type");
  if (!type || !StartsWithIgnoreCase(*type, "text/plain")) {
    return Err(ErrorKind::kInvalid, "policy is not served as text/plain");
  }
  return body;
}

Result<std::string> ParseStsHttpResponse(std::string_view response) {
  // The framing is the one HTTP response parser's (src/http/response.h); the
  // connection has ended.
  constexpr size_t kMaxHeadBytes = 16384;
  http::ResponseResult r =
      http::ParseResponse(response, /*eof=*/true, kMaxHeadBytes, kMaxPolicyBytes);
  if (r.verdict == http::Verdict::kTooLarge) {
    return Err(ErrorKind::kTooLarge, "MTA-STS policy too large");
  }
  if (r.verdict != http::Verdict::kComplete) {
    return Err(ErrorKind::kInvalid, "bad HTTP response: " + r.error);
  }
  return StsPolicyBody(r.head, std::move(r.body));
}

}  // namespace hato::outbound
