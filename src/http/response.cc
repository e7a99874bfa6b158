#include "http/response.h"

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

}  // namespace

std::optional<std::string_view> ResponseHead::Get(std::string_view lower_name) const {
  for (const Header& h : headers)
    if (h.name == lower_name) return std::string_view(h.value);
  return std::nullopt;
}

ResponseHeadResult ParseResponseHead(std::string_view buf, size_t max_head_bytes) {
  ResponseHeadResult r;
  // The end of the head: the first empty line.
  size_t end = std::string_view::npos, pos = 0;
  while (pos < buf.size() && pos <= max_head_bytes) {
    size_t nl = buf.find('\n', pos);
    if (nl == std::string_view::npos) break;
    std::string_view line = buf.substr(pos, nl - pos);
    if (pos != 0 && (line.empty() || line == "\r")) {
      end = nl + 1;
      break;
    }
    pos = nl + 1;
  }
  if (end == std::string_view::npos) {
    r.verdict = buf.size() > max_head_bytes ? Verdict::kTooLarge : Verdict::kNeedMore;
    return r;
  }
  if (end > max_head_bytes) {
    r.verdict = Verdict::kTooLarge;
    return r;
  }
  auto bad = [&r](std::string why) -> ResponseHeadResult {
    r.verdict = Verdict::kBad;
    r.error = std::move(why);
    return std::move(r);
  };
  std::string_view head = buf.substr(0, end);
  size_t nl = head.find('\n');
  std::string_view line = head.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 section 4)
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
    return bad("bad status line");
  }
  if (line[7] != '0' && line[7] != '1') return bad("unsupported HTTP version");
  r.head.minor_version = line[7] - '0';
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return bad("bad status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return bad("bad status code");
  if (line.size() > 12 && line[12] != ' ') return bad("bad status line");
  r.head.status = status;

  bool has_te = false;
  std::string_view rest = head.substr(nl + 1);
  while (!rest.empty()) {
    size_t e = rest.find('\n');
    std::string_view field = rest.substr(0, e);
    rest.remove_prefix(e == std::string_view::npos ? rest.size() : e + 1);
    if (!field.empty() && field.back() == '\r') field.remove_suffix(1);
    if (field.empty()) break;
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad("bad header field");
    std::string_view name = field.substr(0, colon);
    for (char c : name)
      if (!IsTchar(c)) return bad("bad header field name");
    std::string_view value = Trim(field.substr(colon + 1));
    for (char c : value)
      if (c == '\0' || c == '\r' || c == '\n') return bad("bad header field value");
    std::string lower = AsciiLower(name);
    if (lower == "content-length") {
      auto n = ParseUint(value);
      if (!n) return bad("bad Content-Length");
      if (r.head.content_length && *r.head.content_length != *n) {
        return bad("conflicting Content-Length");
      }
      r.head.content_length = *n;
    } else if (lower == "transfer-encoding") {
      if (has_te || !EqualsIgnoreCase(value, "chunked")) {
        return bad("unsupported Transfer-Encoding");
      }
      has_te = true;
    }
    r.head.headers.push_back(Header{std::move(lower), std::string(value)});
  }
  // RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length; a
  // client refuses the pair rather than guess.
  if (has_te && r.head.content_length) return bad("Transfer-Encoding with Content-Length");
  r.head.chunked = has_te;
  r.consumed = end;
  r.verdict = Verdict::kComplete;
  return r;
}

ResponseResult ParseResponse(std::string_view buf, bool eof, size_t max_head_bytes,
                             uint64_t max_body_bytes) {
  ResponseResult r;
  ResponseHeadResult h = ParseResponseHead(buf, max_head_bytes);
  if (h.verdict != Verdict::kComplete) {
    r.verdict = h.verdict;
    if (h.verdict == Verdict::kNeedMore && eof) {
      r.verdict = Verdict::kBad;
      r.error = "connection closed in the response head";
    } else {
      r.error = std::move(h.error);
    }
    return r;
  }
  r.head = std::move(h.head);
  if (r.head.status < 200) {
    r.verdict = Verdict::kBad;
    r.error = "interim response";
    return r;
  }
  std::string_view body = buf.substr(h.consumed);
  // No body: 204 and 304 (RFC 9112 section 6.3).
  if (r.head.status == 204 || r.head.status == 304) {
    r.verdict = Verdict::kComplete;
    return r;
  }
  if (r.head.chunked) {
    ChunkedDecoder dec(max_body_bytes);
    dec.Feed(body, r.body);
    if (dec.done()) {
      r.verdict = Verdict::kComplete;
    } else if (dec.too_large()) {
      r.verdict = Verdict::kTooLarge;
    } else if (dec.failed() || eof) {
      r.verdict = Verdict::kBad;
      r.error = "bad chunked body";
    }
    if (r.verdict != Verdict::kComplete) r.body.clear();
    return r;
  }
  if (r.head.content_length) {
    uint64_t n = *r.head.content_length;
    if (n > max_body_bytes) {
      r.verdict = Verdict::kTooLarge;
    } else if (body.size() >= n) {
      r.body = std::string(body.substr(0, n));
      r.verdict = Verdict::kComplete;
    } else if (eof) {
      r.verdict = Verdict::kBad;
      r.error = "connection closed in the body";
    }
    return r;
  }
  // Read to the end of the connection.
  if (body.size() > max_body_bytes) {
    r.verdict = Verdict::kTooLarge;
  } else if (eof) {
    r.body = std::string(body);
    r.verdict = Verdict::kComplete;
  }
  return r;
}

}  // namespace hato::http
