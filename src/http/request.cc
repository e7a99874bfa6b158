#include "http/request.h"

#include "base/strings.h"

namespace hato::http {
namespace {

bool IsTchar(char c) {  // RFC 9110 section 5.6.2
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether a comma-separated list (Connection) has `token` (case-insensitive).
bool ListHas(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::optional<std::string_view> RequestHead::Get(std::string_view lower_name) const {
  for (const Header& h : headers)
    if (h.name == lower_name) return std::string_view(h.value);
  return std::nullopt;
}

HeadResult ParseRequestHead(std::string_view buf, size_t max_head_bytes) {
  HeadResult r;
  // Skip empty lines before the request line (RFC 9112 section 2.2).
  size_t skipped = 0;
  while (true) {
    if (buf.substr(skipped, 2) == "\r\n") {
      skipped += 2;
    } else if (buf.substr(skipped, 1) == "\n") {
      skipped += 1;
    } else {
      break;
    }
    if (skipped > max_head_bytes) {
      r.verdict = Verdict::kTooLarge;
      return r;
    }
  }
  std::string_view in = buf.substr(skipped);
  // The end of the head: an empty line.
  size_t end = std::string_view::npos, pos = 0;
  while (pos < in.size()) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) break;
    std::string_view line = in.substr(pos, nl - pos);
    if (pos != 0 && (line.empty() || line == "\r")) {
      end = nl + 1;
      break;
    }
    pos = nl + 1;
    if (pos > max_head_bytes) break;
  }
  if (end == std::string_view::npos) {
    r.verdict = in.size() > max_head_bytes ? Verdict::kTooLarge : Verdict::kNeedMore;
    return r;
  }
  if (end > max_head_bytes) {
    r.verdict = Verdict::kTooLarge;
    return r;
  }
  auto bad = [&r](std::string why) -> HeadResult {
    r.verdict = Verdict::kBad;
    r.error = std::move(why);
    return std::move(r);
  };
  std::string_view head = in.substr(0, end);
  size_t nl = head.find('\n');
  std::string_view line = head.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // request-line = method SP request-target SP HTTP-version (RFC 9112 section 3)
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return bad("bad request line");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return bad("bad request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  for (char c : method)
    if (!IsTchar(c)) return bad("bad method");
  if (target.front() != '/') return bad("only origin-form targets are served");
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("bad request target");
  if (version == "HTTP/1.1") {
    r.head.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    r.head.minor_version = 0;
  } else {
    return bad("unsupported HTTP version");
  }
  size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  if (q != std::string_view::npos) r.head.query = std::string(target.substr(q + 1));
  auto path = PercentDecode(raw_path);
  if (!path) return bad("bad escape in the path");
  r.head.path = std::move(*path);
  r.head.target = std::string(target);
  r.head.method = std::string(method);

  // Header fields: name ":" OWS value OWS (RFC 9112 section 5).
  std::optional<uint64_t> content_length;
  bool has_te = false;
  std::string_view rest = head.substr(nl + 1);
  while (!rest.empty()) {
    size_t e = rest.find('\n');
    std::string_view field = rest.substr(0, e);
    rest.remove_prefix(e + 1);
    if (!field.empty() && field.back() == '\r') field.remove_suffix(1);
    if (field.empty()) break;
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad("bad header field");
    std::string_view name = field.substr(0, colon);
    for (char c : name)
      if (!IsTchar(c)) return bad("bad header field name");  // also obs-fold, "name :"
    std::string_view value = Trim(field.substr(colon + 1));
    for (char c : value)
      if (c == '\0' || c == '\r' || c == '\n') return bad("bad header field value");
    std::string lower = AsciiLower(name);
    if (lower == "content-length") {
      auto n = ParseUint(value);
      if (!n) return bad("bad Content-Length");
      if (content_length && *content_length != *n) return bad("conflicting Content-Length");
      content_length = *n;
    } else if (lower == "transfer-encoding") {
      // Only "chunked" is understood (RFC 9112 section 6.1); anything else
      // would leave the body's end unknown.
      if (has_te || !EqualsIgnoreCase(value, "chunked"))
        return bad("unsupported Transfer-Encoding");
      has_te = true;
    }
    r.head.headers.push_back(Header{std::move(lower), std::string(value)});
  }
  if (has_te && content_length) return bad("Transfer-Encoding with Content-Length");
  if (has_te && r.head.minor_version == 0) return bad("Transfer-Encoding in HTTP/1.0");
  r.head.chunked = has_te;
  r.head.content_length = content_length.value_or(0);
  // Persistence (RFC 9112 section 9.3).
  auto conn = r.head.Get("connection");
  if (r.head.minor_version == 0) {
    r.head.keep_alive = conn && ListHas(*conn, "keep-alive");
  } else {
    r.head.keep_alive = !(conn && ListHas(*conn, "close"));
  }
  if (r.head.minor_version == 1 && !r.head.Get("host")) return bad("no Host header");
  r.consumed = skipped + end;
  r.verdict = Verdict::kComplete;
  return r;
}

size_t ChunkedDecoder::Feed(std::string_view in, std::string& out) {
  size_t used = 0;
  while (used < in.size()) {
    std::string_view rest = in.substr(used);
    switch (state_) {
      case State::kSize: {
        // chunk-size [ chunk-ext ] CRLF
        size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) {
          if (rest.size() > 1024) state_ = State::kBad;  // no size line is this long
          return used;
        }
        std::string_view line = rest.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        line = line.substr(0, line.find(';'));
        line = Trim(line);
        if (line.empty() || line.size() > 15) {
          state_ = State::kBad;
          return used;
        }
        uint64_t n = 0;
        for (char c : line) {
          int v = HexValue(c);
          if (v < 0) {
            state_ = State::kBad;
            return used;
          }
          n = n * 16 + static_cast<uint64_t>(v);
        }
        used += nl + 1;
        if (n == 0) {
          state_ = State::kTrailer;
        } else if (n > max_ || total_ + n > max_) {
          state_ = State::kTooLarge;
          return used;
        } else {
          remaining_ = n;
          total_ += n;
          state_ = State::kData;
        }
        break;
      }
      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        out.append(rest.substr(0, take));
        used += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kDataEnd;
        break;
      }
      case State::kDataEnd: {
        if (rest.substr(0, 2) == "\r\n") {
          used += 2;
        } else if (rest.front() == '\n') {
          used += 1;
        } else if (rest == "\r") {
          return used;
        } else {
          state_ = State::kBad;
          return used;
        }
        state_ = State::kSize;
        break;
      }
      case State::kTrailer: {
        // trailer-section CRLF: fields are dropped (RFC 9112 section 7.1.2).
        size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) {
          if (rest.size() > 8192) state_ = State::kBad;
          return used;
        }
        std::string_view line = rest.substr(0, nl);
        used += nl + 1;
        if (line.empty() || line == "\r") {
          state_ = State::kDone;
          return used;
        }
        break;
      }
      case State::kDone:
      case State::kBad:
      case State::kTooLarge:
        return used;
    }
  }
  return used;
}

std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0') return std::nullopt;
      out.push_back(d);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '\0') {
      return std::nullopt;  // a raw NUL is refused like an escaped one
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string_view k = item.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    auto dk = PercentDecode(k, true);
    auto dv = PercentDecode(v, true);
    out.emplace_back(dk ? *dk : std::string(k), dv ? *dv : std::string(v));
  }
  return out;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    case 507:
      return "Insufficient Storage";
    default:
      return "";
  }
}

std::string_view ContentTypeFor(std::string_view file_name) {
  size_t dot = file_name.rfind('.');
  size_t slash = file_name.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
    return "application/octet-stream";
  std::string ext = AsciiLower(file_name.substr(dot + 1));
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"txt", "text/plain; charset=utf-8"},
      {"xml", "application/xml"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/vnd.microsoft.icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"wasm", "application/wasm"},
      {"pdf", "application/pdf"},
      {"webmanifest", "application/manifest+json"},
  };
  for (const auto& [e, type] : kTypes)
    if (e == ext) return type;
  return "application/octet-stream";
}

}  // namespace hato::http

namespace hato::http {

std::optional<std::string> SafeRelativePath(std::string_view p) {
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  std::string out;
  while (!p.empty()) {
    size_t slash = p.find('/');
    std::string_view seg = p.substr(0, slash);
    p = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
    if (seg.empty()) {
      if (p.empty()) break;  // a trailing slash
      return std::nullopt;
    }
    if (seg == "." || seg == "..") return std::nullopt;
    for (char c : seg)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') return std::nullopt;
    if (!out.empty()) out.push_back('/');
    out.append(seg);
  }
  return out;
}

bool AcceptsEncoding(std::string_view ae, std::string_view coding) {
  bool star = false;
  while (!ae.empty()) {
    size_t comma = ae.find(',');
    std::string_view item = TrimSpaces(ae.substr(0, comma));
    ae = comma == std::string_view::npos ? std::string_view() : ae.substr(comma + 1);
    size_t semi = item.find(';');
    std::string_view name = TrimSpaces(item.substr(0, semi));
    bool zero = false;
    if (semi != std::string_view::npos) {
      std::string_view params = TrimSpaces(item.substr(semi + 1));
      if (StartsWithIgnoreCase(params, "q=")) {
        std::string_view q = params.substr(2);
        zero = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    if (EqualsIgnoreCase(name, coding)) return !zero;
    if (name == "*") star = !zero;
  }
  return star;
}

bool EtagMatches(std::string_view inm, std::string_view etag) {
  auto opaque = [](std::string_view t) {
    t = TrimSpaces(t);
    if (t.substr(0, 2) == "W/") t.remove_prefix(2);
    return t;
  };
  while (!inm.empty()) {
    size_t comma = inm.find(',');
    std::string_view item = TrimSpaces(inm.substr(0, comma));
    inm = comma == std::string_view::npos ? std::string_view() : inm.substr(comma + 1);
    if (item == "*") return true;
    if (opaque(item) == opaque(etag)) return true;
  }
  return false;
}

}  // namespace hato::http
