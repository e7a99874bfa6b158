#include "backup/manifest.h"

#include "base/strings.h"

namespace hato::backup {

std::string FormatManifest(const Manifest& m) {
  std::string out = "hato-backup " + std::to_string(m.version) + "\n";
  out += "id " + m.id + "\n";
  out += "created " + std::to_string(m.created) + "\n";
  out += "schema " + std::to_string(m.schema) + "\n";
  for (const auto& f : m.files) {
    out += "file " + f.path + " " + std::to_string(f.size) + " " + f.sha256_hex + "\n";
  }
  for (const auto& [k, v] : m.counts) out += "count " + k + " " + std::to_string(v) + "\n";
  return out;
}

namespace {

bool SafeRelativePath(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.size() > 255) return false;
  for (size_t start = 0; start <= p.size();) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  for (char c : p) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Result<Manifest> ParseManifest(std::string_view text) {
  if (text.size() > kMaxManifestSize) return Err(ErrorKind::kInvalid, "manifest too large");
  Manifest m;
  size_t line_no = 0;
  bool header = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    auto bad = [&](const std::string& why) {
      return Err(ErrorKind::kInvalid, "manifest line " + std::to_string(line_no) + ": " + why);
    };
    auto words = SplitWords(line);
    if (words.empty()) continue;
    if (!header) {
      if (words.size() != 2 || words[0] != "hato-backup") return bad("not a hato backup manifest");
      auto v = ParseUint(words[1]);
      if (!v) return bad("bad version");
      if (*v > static_cast<uint64_t>(kFormatVersion) || *v == 0) {
        return bad("format version " + std::string(words[1]) + " is not supported by this hato");
      }
      m.version = static_cast<int>(*v);
      header = true;
      continue;
    }
    std::string_view key = words[0];
    if (key == "id" && words.size() == 2) {
      if (!SafeRelativePath(words[1]) || words[1].find('/') != std::string_view::npos) {
        return bad("bad id");
      }
      m.id = std::string(words[1]);
    } else if ((key == "created" || key == "schema") && words.size() == 2) {
      auto v = ParseUint(words[1]);
      uint64_t max = key == "schema" ? (1u << 20) : (1ull << 40);
      if (!v || *v > max) return bad("bad " + std::string(key));
      if (key == "created") {
        m.created = static_cast<int64_t>(*v);
      } else {
        m.schema = static_cast<int>(*v);
      }
    } else if (key == "file" && words.size() == 4) {
      auto size = ParseUint(words[2]);
      if (!SafeRelativePath(words[1])) return bad("unsafe file path");
      if (!size) return bad("bad file size");
      if (!IsHex64(words[3])) return bad("bad sha256");
      m.files.push_back({std::string(words[1]), *size, std::string(words[3])});
    } else if (key == "count" && words.size() == 3) {
      auto v = ParseUint(words[2]);
      if (!v) return bad("bad count");
      m.counts[std::string(words[1])] = *v;
    } else if (key == "id" || key == "created" || key == "schema" || key == "file" ||
               key == "count") {
      return bad("malformed " + std::string(key));
    }
    // Other keys: from a newer hato of the same format version; ignored.
  }
  if (!header) return Err(ErrorKind::kInvalid, "empty manifest");
  if (m.id.empty()) return Err(ErrorKind::kInvalid, "manifest has no id");
  return m;
}

}  // namespace hato::backup
