#include "metrics/http.h"

namespace hato::metrics {
namespace {

bool IsTchar(char c) {  // RFC 9110 section 5.6.2
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool EqualsLower(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

HttpRequest ParseHttpRequest(std::string_view buf) {
  HttpRequest r;
  using V = HttpRequest::Verdict;
  // The end of the header section: an empty line.
  size_t end = std::string_view::npos, pos = 0;
  while (pos < buf.size()) {
    size_t nl = buf.find('\n', pos);
    if (nl == std::string_view::npos) break;
    std::string_view line = buf.substr(pos, nl - pos);
    if (line.empty() || line == "\r") {
      if (pos == 0) {  // RFC 9112 section 2.2: ignore empty lines before the request line
        buf.remove_prefix(nl + 1);
        r.consumed += nl + 1;
        continue;
      }
      end = nl + 1;
      break;
    }
    pos = nl + 1;
  }
  if (end == std::string_view::npos) {
    r.verdict = buf.size() + r.consumed > kMaxHttpRequestBytes ? V::kTooLarge : V::kNeedMore;
    return r;
  }
  if (end + r.consumed > kMaxHttpRequestBytes) {
    r.verdict = V::kTooLarge;
    return r;
  }
  r.verdict = V::kBad;
  std::string_view head = buf.substr(0, end);
  size_t nl = head.find('\n');
  std::string_view line = head.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // request-line = method SP request-target SP HTTP-version
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return r;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return r;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  for (char c : method)
    if (!IsTchar(c)) return r;
  if (target.front() != '/') return r;
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return r;
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return r;
  // Header fields: name ":" OWS value OWS. A body is refused.
  std::string_view rest = head.substr(nl + 1);
  while (!rest.empty()) {
    size_t e = rest.find('\n');
    std::string_view field = rest.substr(0, e);
    rest.remove_prefix(e + 1);
    if (!field.empty() && field.back() == '\r') field.remove_suffix(1);
    if (field.empty()) break;
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return r;
    std::string_view name = field.substr(0, colon);
    for (char c : name)
      if (!IsTchar(c)) return r;  // also rejects obs-fold and "name :" (RFC 9112 section 5.1)
    std::string_view value = Trim(field.substr(colon + 1));
    for (char c : value)
      if (c == '\0' || c == '\r') return r;
    if (EqualsLower(name, "transfer-encoding")) return r;
    if (EqualsLower(name, "content-length") && value != "0") return r;
  }
  r.method = std::string(method);
  size_t q = target.find('?');
  r.target = std::string(target.substr(0, q));
  r.consumed += end;
  r.verdict = V::kComplete;
  return r;
}

std::string HttpResponse(int status, std::string_view reason, std::string_view content_type,
                         std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += body;
  return out;
}

}  // namespace hato::metrics
