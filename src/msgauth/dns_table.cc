#include "msgauth/dns_table.h"

#include <algorithm>
#include <cctype>

#include "base/strings.h"

namespace hato::msgauth {
namespace {

std::string Key(std::string_view name) {
  std::string k = AsciiLower(name);
  if (!k.empty() && k.back() == '.') k.pop_back();
  return k;
}

// "a" "b c" -> "ab c"; anything else is taken literally.
std::optional<std::string> TxtData(std::string_view s) {
  if (s.empty() || s.front() != '"') return std::string(s);
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ' || s[i] == '\t') {
      ++i;
      continue;
    }
    if (s[i] != '"') return std::nullopt;
    ++i;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
          std::isdigit(static_cast<unsigned char>(s[i + 2])) &&
          std::isdigit(static_cast<unsigned char>(s[i + 3]))) {
        int v = (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + (s[i + 3] - '0');
        if (v > 255) return std::nullopt;
        out += static_cast<char>(v);
        i += 4;
        continue;
      }
      if (s[i] == '\\' && i + 1 < s.size()) ++i;
      out += s[i++];
    }
    if (i == s.size()) return std::nullopt;
    ++i;
  }
  return out;
}

// A NAME or HOST with \DDD escapes (for spaces and other bytes), as in zone files.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 2])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 3]))) {
      out += static_cast<char>((s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

DnsTable::Entry& DnsTable::At(std::string_view name) { return entries_[Key(name)]; }

void DnsTable::AddTxt(std::string_view name, std::string text) {
  At(name).txt.push_back(std::move(text));
}
void DnsTable::AddA(std::string_view name, std::string_view ip) {
  auto parsed = IpAddress::Parse(ip);
  if (!parsed) return;
  (parsed->v6 ? At(name).aaaa : At(name).a).push_back(*parsed);
}
void DnsTable::AddMx(std::string_view name, uint16_t pref, std::string_view host) {
  At(name).mx.push_back(MxRecord{pref, Key(host)});
}
void DnsTable::AddPtr(std::string_view ip, std::string_view host) {
  auto parsed = IpAddress::Parse(ip);
  if (!parsed) return;
  At(parsed->ReverseLabels() + (parsed->v6 ? ".ip6.arpa" : ".in-addr.arpa"))
      .ptr.push_back(Key(host));
}
void DnsTable::AddTempFail(std::string_view name, std::string_view type) {
  if (type.empty()) {
    At(name).tempfail = true;
  } else {
    At(name).tempfail_types.push_back(AsciiUpper(type));
  }
}

Result<DnsTable> DnsTable::Parse(std::string_view text) {
  DnsTable t;
  size_t pos = 0;
  int lineno = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == text.npos ? text.npos : nl - pos);
    pos = nl == text.npos ? text.size() : nl + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view trimmed = TrimSpaces(line);
    if (trimmed.empty() || trimmed.front() == '#') continue;
    auto bad = [&](const char* why) {
      return Err(ErrorKind::kInvalid, "dns table line " + std::to_string(lineno) + ": " + why);
    };
    auto words = SplitWords(trimmed);
    if (words.size() < 2) return bad("expected NAME TYPE [DATA]");
    std::string type = AsciiUpper(words[1]);
    std::string name_text = Unescape(words[0]);
    std::string_view name = name_text;
    // The data: the rest of the line after the type.
    size_t data_at = static_cast<size_t>(words[1].data() - trimmed.data()) + words[1].size();
    std::string_view data = TrimSpaces(trimmed.substr(data_at));
    if (type == "TEMPFAIL") {
      t.AddTempFail(name, data);
    } else if (type == "TXT") {
      auto d = TxtData(data);
      if (!d) return bad("bad quoted TXT data");
      t.AddTxt(name, std::move(*d));
    } else if (type == "A" || type == "AAAA") {
      auto ip = IpAddress::Parse(data);
      if (!ip || ip->v6 != (type == "AAAA")) return bad("bad address");
      t.AddA(name, data);
    } else if (type == "MX") {
      if (words.size() != 4) return bad("expected NAME MX PREF HOST");
      auto pref = ParseUint(words[2]);
      if (!pref || *pref > 65535) return bad("bad MX preference");
      t.AddMx(name, static_cast<uint16_t>(*pref), Unescape(words[3]));
    } else if (type == "PTR") {
      if (words.size() != 3) return bad("expected IP PTR HOST or NAME PTR HOST");
      if (IpAddress::Parse(name)) {
        t.AddPtr(name, Unescape(words[2]));
      } else {
        t.At(name).ptr.push_back(Key(Unescape(words[2])));
      }
    } else {
      return bad("unknown type");
    }
  }
  return t;
}

Result<const DnsTable::Entry*> DnsTable::Lookup(std::string_view type, std::string_view name) {
  queries_.push_back(std::string(type) + " " + Key(name));
  auto it = entries_.find(Key(name));
  if (it == entries_.end()) return Err(ErrorKind::kNotFound, "NXDOMAIN " + Key(name));
  const auto& tf = it->second.tempfail_types;
  if (it->second.tempfail || std::find(tf.begin(), tf.end(), type) != tf.end()) {
    return Err(ErrorKind::kTemporary, "SERVFAIL " + Key(name));
  }
  return &it->second;
}

Result<std::vector<std::string>> DnsTable::Txt(std::string_view name) {
  auto e = Lookup("TXT", name);
  if (!e) return e.error();
  return (*e)->txt;
}
Result<std::vector<IpAddress>> DnsTable::A(std::string_view name) {
  auto e = Lookup("A", name);
  if (!e) return e.error();
  return (*e)->a;
}
Result<std::vector<IpAddress>> DnsTable::Aaaa(std::string_view name) {
  auto e = Lookup("AAAA", name);
  if (!e) return e.error();
  return (*e)->aaaa;
}
Result<std::vector<MxRecord>> DnsTable::Mx(std::string_view name) {
  auto e = Lookup("MX", name);
  if (!e) return e.error();
  return (*e)->mx;
}
Result<std::vector<std::string>> DnsTable::Ptr(const IpAddress& ip) {
  auto e = Lookup("PTR", ip.ReverseLabels() + (ip.v6 ? ".ip6.arpa" : ".in-addr.arpa"));
  if (!e) return e.error();
  return (*e)->ptr;
}

}  // namespace hato::msgauth
