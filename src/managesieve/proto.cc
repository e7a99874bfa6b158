#include "managesieve/proto.h"

#include <cctype>

#include "base/strings.h"

namespace hato::managesieve {

namespace {

// The end of the current line (index of LF) from `pos`, or npos.
size_t LineEnd(std::string_view in, size_t pos) { return in.find('\n', pos); }

Error Bad(std::string_view in, size_t pos, size_t* consumed, std::string what,
          ErrorKind kind = ErrorKind::kInvalid) {
  size_t lf = LineEnd(in, pos);
  *consumed = lf == std::string_view::npos ? in.size() : lf + 1;
  return Err(kind, std::move(what));
}

}  // namespace

Result<std::optional<Command>> Parse(std::string_view in, size_t* consumed, const Limits& limits) {
  *consumed = 0;
  size_t pos = 0;
  size_t line_bytes = 0;  // bytes of the command outside literals
  size_t literal_total = 0;
  auto need_more = [&]() -> Result<std::optional<Command>> {
    if (line_bytes > limits.max_line) {
      *consumed = in.size();
      return Err(ErrorKind::kTooLarge, "line too long");
    }
    return std::optional<Command>();
  };
  Command c;
  // The command name.
  while (pos < in.size() && (std::isalpha(static_cast<unsigned char>(in[pos])) != 0)) {
    c.name += static_cast<char>(std::toupper(static_cast<unsigned char>(in[pos])));
    ++pos;
    if (c.name.size() > 32) return Bad(in, pos, consumed, "command name too long");
  }
  if (pos >= in.size()) return need_more();
  if (c.name.empty()) {
    if (in[pos] == '\r' || in[pos] == '\n') {
      return Bad(in, pos, consumed, "empty command");
    }
    return Bad(in, pos, consumed, "command name expected");
  }
  while (true) {
    line_bytes = pos - literal_total;
    if (line_bytes > limits.max_line) return need_more();
    if (pos >= in.size()) return need_more();
    char ch = in[pos];
    if (ch == '\r') {
      if (pos + 1 >= in.size()) return need_more();
      if (in[pos + 1] != '\n') return Bad(in, pos, consumed, "bare CR");
      *consumed = pos + 2;
      return std::optional<Command>(std::move(c));
    }
    if (ch == '\n') {  // a bare LF ends the command too (lenient)
      *consumed = pos + 1;
      return std::optional<Command>(std::move(c));
    }
    if (ch != ' ') return Bad(in, pos, consumed, "space expected between arguments");
    ++pos;
    if (pos >= in.size()) return need_more();
    if (c.args.size() >= limits.max_arguments) return Bad(in, pos, consumed, "too many arguments");
    ch = in[pos];
    if (ch == '"') {
      std::string s;
      ++pos;
      while (true) {
        if (pos >= in.size()) return need_more();
        char q = in[pos];
        if (q == '"') break;
        if (q == '\r' || q == '\n' || q == '\0') {
          return Bad(in, pos, consumed, "CR, LF or NUL in a quoted string");
        }
        if (q == '\\') {
          if (pos + 1 >= in.size()) return need_more();
          char e = in[pos + 1];
          if (e != '"' && e != '\\') return Bad(in, pos, consumed, "bad escape in a quoted string");
          s += e;
          pos += 2;
          continue;
        }
        s += q;
        ++pos;
        if (s.size() > limits.max_line)
          return Bad(in, pos, consumed, "line too long", ErrorKind::kTooLarge);
      }
      ++pos;
      c.args.push_back(std::move(s));
      c.numbers.push_back(false);
    } else if (ch == '{') {
      size_t close = in.find('}', pos);
      if (close == std::string_view::npos) {
        if (in.size() - pos > 24) return Bad(in, pos, consumed, "bad literal");
        return need_more();
      }
      std::string_view spec = in.substr(pos + 1, close - pos - 1);
      if (!spec.empty() && spec.back() == '+') spec.remove_suffix(1);
      auto n = ParseUint(spec);
      if (!n || spec.empty() || spec.size() > 10) return Bad(in, pos, consumed, "bad literal");
      if (*n > limits.max_literal) {
        return Bad(in, pos, consumed,
                   "literal larger than " + std::to_string(limits.max_literal) + " bytes",
                   ErrorKind::kTooLarge);
      }
      size_t p = close + 1;
      if (p >= in.size()) return need_more();
      if (in[p] == '\r') {
        if (p + 1 >= in.size()) return need_more();
        ++p;
      }
      if (in[p] != '\n') return Bad(in, pos, consumed, "CRLF expected after a literal's length");
      ++p;
      if (in.size() - p < *n) return std::optional<Command>();  // the literal is still arriving
      c.args.emplace_back(in.substr(p, *n));
      c.numbers.push_back(false);
      pos = p + *n;
      literal_total += *n;  // literal bytes do not count toward the line
    } else if (ch >= '0' && ch <= '9') {
      size_t start = pos;
      while (pos < in.size() && in[pos] >= '0' && in[pos] <= '9') ++pos;
      if (pos >= in.size()) return need_more();
      if (pos - start > 10) return Bad(in, pos, consumed, "number too large");
      c.args.emplace_back(in.substr(start, pos - start));
      c.numbers.push_back(true);
    } else {
      return Bad(in, pos, consumed, "string or number expected");
    }
  }
}

std::string Quote(std::string_view s) {
  bool literal = s.size() > 1024;
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') literal = true;
  }
  if (literal) {
    std::string out = "{";
    out.append(std::to_string(s.size()));
    out.append("}\r\n");
    out.append(s);
    return out;
  }
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace hato::managesieve
