#include "scan/proto.h"

#include <boost/json.hpp>

namespace hato::scan {
namespace {

// A header field value with CR, LF and other controls removed.
std::string FieldValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) continue;
    out.push_back(c);
  }
  return out;
}

void Field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += FieldValue(value);
  out += "\r\n";
}

double Number(const boost::json::value* v) {
  if (v == nullptr) return 0;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return 0;
}

}  // namespace

std::string CheckRequestHead(std::string_view host_port, const Envelope& env, size_t body_size) {
  std::string h = "POST /checkv2 HTTP/1.1\r\n";
  Field(h, "Host", host_port);
  Field(h, "User-Agent", "hato");
  Field(h, "MTA-Name", "hato");
  if (!env.peer_ip.empty()) Field(h, "IP", env.peer_ip);
  if (!env.helo.empty()) Field(h, "Helo", env.helo);
  // The null reverse-path is sent as "<>" so rspamd knows it is a bounce.
  Field(h, "From", env.mail_from.empty() ? std::string("<>") : env.mail_from);
  for (const std::string& r : env.rcpts) Field(h, "Rcpt", r);
  if (!env.queue_id.empty()) Field(h, "Queue-Id", env.queue_id);
  if (!env.user.empty()) Field(h, "User", env.user);
  Field(h, "Content-Length", std::to_string(body_size));
  h += "Connection: close\r\n\r\n";
  return h;
}

std::string LearnRequestHead(std::string_view host_port, bool spam, std::string_view password,
                             size_t body_size) {
  std::string h = spam ? "POST /learnspam HTTP/1.1\r\n" : "POST /learnham HTTP/1.1\r\n";
  Field(h, "Host", host_port);
  Field(h, "User-Agent", "hato");
  if (!password.empty()) Field(h, "Password", password);
  Field(h, "Content-Length", std::to_string(body_size));
  h += "Connection: close\r\n\r\n";
  return h;
}

Result<RspamdReply> ParseCheckReply(std::string_view json) {
  boost::json::error_code ec;
  boost::json::parse_options opt;
  opt.max_depth = 16;
  boost::json::value v = boost::json::parse(json, ec, boost::json::storage_ptr(), opt);
  if (ec || !v.is_object()) return Err(ErrorKind::kInvalid, "rspamd: reply is not a JSON object");
  const boost::json::object& o = v.get_object();
  RspamdReply r;
  if (const auto* e = o.if_contains("error"); e && e->is_string()) {
    return Err(ErrorKind::kInvalid, "rspamd: " + std::string(e->get_string()));
  }
  const auto* action = o.if_contains("action");
  if (action == nullptr || !action->is_string()) {
    return Err(ErrorKind::kInvalid, "rspamd: reply has no action");
  }
  r.action = std::string(action->get_string());
  r.score = Number(o.if_contains("score"));
  r.required_score = Number(o.if_contains("required_score"));
  r.time_real = Number(o.if_contains("time_real"));
  if (const auto* s = o.if_contains("is_skipped"); s && s->is_bool()) r.skipped = s->get_bool();
  if (const auto* s = o.if_contains("symbols"); s && s->is_object()) {
    for (const auto& kv : s->get_object()) r.symbols.emplace_back(kv.key());
  }
  return r;
}

Result<bool> ParseLearnReply(int status, std::string_view json) {
  if (status == 208) return true;  // rspamd: this message was already learned
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  std::string error;
  if (!ec && v.is_object()) {
    const boost::json::object& o = v.get_object();
    if (const auto* s = o.if_contains("success");
        s && s->is_bool() && s->get_bool() && status == 200) {
      return true;
    }
    if (const auto* e = o.if_contains("error"); e && e->is_string()) {
      error = std::string(e->get_string());
    }
  }
  if (error.empty()) error = "HTTP " + std::to_string(status);
  return Err(ErrorKind::kTemporary, "rspamd learn: " + error);
}

std::string InstreamRequest(std::string_view content, size_t chunk_bytes) {
  if (chunk_bytes == 0) chunk_bytes = 65536;
  std::string out("zINSTREAM\0", 10);
  out.reserve(10 + content.size() + 4 * (content.size() / chunk_bytes + 2));
  auto length = [&out](uint32_t n) {
    out.push_back(static_cast<char>((n >> 24) & 0xff));
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
  };
  for (size_t pos = 0; pos < content.size(); pos += chunk_bytes) {
    std::string_view chunk = content.substr(pos, chunk_bytes);
    length(static_cast<uint32_t>(chunk.size()));
    out += chunk;
  }
  length(0);
  return out;
}

ClamdReply ParseClamdReply(std::string_view reply) {
  ClamdReply r;
  size_t end = reply.find_first_of(std::string_view("\0\n", 2));
  std::string_view line = reply.substr(0, end);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  r.text = std::string(line);
  // "stream: " with the z-prefixed commands; tolerate its absence.
  std::string_view body = line;
  if (body.substr(0, 8) == "stream: ") body.remove_prefix(8);
  auto ends_with = [](std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
  };
  if (body == "OK") {
    r.kind = ClamdReply::Kind::kClean;
  } else if (ends_with(body, " FOUND") && body.size() > 6) {
    r.kind = ClamdReply::Kind::kFound;
    std::string_view name = body.substr(0, body.size() - 6);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    for (char c : name) {
      auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7f) r.name.push_back(c);  // it goes into a reply and a log
    }
    if (r.name.empty()) r.name = "unknown";
  } else {
    r.kind = ClamdReply::Kind::kError;
  }
  return r;
}

}  // namespace hato::scan
