#include "jmap/state.h"

namespace hato::jmap {
namespace {

void AppendBase36(std::string& out, uint64_t v) {
  char buf[16];
  int n = 0;
  do {
    uint64_t d = v % 36;
    buf[n++] = static_cast<char>(d < 10 ? '0' + d : 'a' + (d - 10));
    v /= 36;
  } while (v != 0);
  while (n > 0) out.push_back(buf[--n]);
}

std::optional<uint64_t> ParseBase36(std::string_view s) {
  if (s.empty() || s.size() > 13) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;  // one spelling per number
  uint64_t v = 0;
  for (char c : s) {
    uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'z') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    if (v > (UINT64_MAX - d) / 36) return std::nullopt;
    v = v * 36 + d;
  }
  return v;
}

}  // namespace

uint32_t Hash32(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string EncodeState(char kind, const std::vector<MailboxMark>& marks) {
  std::string out(1, kind);
  for (const MailboxMark& m : marks) {
    out.push_back('_');
    AppendBase36(out, static_cast<uint64_t>(m.id));
    out.push_back('-');
    AppendBase36(out, m.modseq);
    out.push_back('-');
    AppendBase36(out, m.uidnext);
    if (kind == 'm') {
      out.push_back('-');
      AppendBase36(out, m.meta);
    }
  }
  return out;
}

std::optional<std::vector<MailboxMark>> DecodeState(char kind, std::string_view s) {
  if (s.empty() || s.front() != kind) return std::nullopt;
  s.remove_prefix(1);
  std::vector<MailboxMark> out;
  size_t fields = kind == 'm' ? 4 : 3;
  while (!s.empty()) {
    if (s.front() != '_') return std::nullopt;
    s.remove_prefix(1);
    size_t end = s.find('_');
    std::string_view item = s.substr(0, end);
    s = end == std::string_view::npos ? std::string_view() : s.substr(end);
    uint64_t v[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < fields; ++i) {
      size_t dash = item.find('-');
      if ((i + 1 < fields) == (dash == std::string_view::npos)) return std::nullopt;
      auto n = ParseBase36(item.substr(0, dash));
      if (!n) return std::nullopt;
      v[i] = *n;
      item = dash == std::string_view::npos ? std::string_view() : item.substr(dash + 1);
    }
    if (v[0] > INT64_MAX || v[2] > UINT32_MAX || v[3] > UINT32_MAX) return std::nullopt;
    MailboxMark m{static_cast<int64_t>(v[0]), v[1], static_cast<uint32_t>(v[2]),
                  static_cast<uint32_t>(v[3])};
    if (!out.empty() && out.back().id >= m.id) return std::nullopt;  // sorted, unique
    out.push_back(m);
    if (out.size() > kMaxStateMailboxes) return std::nullopt;
  }
  return out;
}

}  // namespace hato::jmap
