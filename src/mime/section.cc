// IMAP section specs resolved against a stored Part tree (RFC 3501 section
// 6.4.5, RFC 9051 section 6.4.5): "", HEADER, TEXT, part numbers, N.MIME,
// N.HEADER / N.TEXT of message/rfc822 parts, HEADER.FIELDS[.NOT] (...).
//
// SECURITY: the tree may come from storage; every offset is checked against
// `raw` before slicing (kCorrupt when it does not fit).
#include <string>

#include "base/strings.h"
#include "mime/header.h"
#include "mime/message.h"

namespace hato::mime {
namespace {

Result<std::string_view> Slice(std::string_view raw, size_t begin, size_t end) {
  if (begin > end || end > raw.size()) {
    return Err(ErrorKind::kCorrupt, "mime: part offsets outside the message");
  }
  return raw.substr(begin, end - begin);
}

Error NotFound() { return Err(ErrorKind::kNotFound, "no such body part"); }

}  // namespace

Result<SectionSpec> ParseSection(std::string_view s) {
  SectionSpec spec;
  while (!s.empty() && s[0] >= '0' && s[0] <= '9') {
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    auto v = ParseUint(s.substr(0, n));
    if (!v || *v == 0 || *v > UINT32_MAX) return Err(ErrorKind::kInvalid, "bad part number");
    spec.path.push_back(static_cast<uint32_t>(*v));
    s.remove_prefix(n);
    if (s.empty()) return spec;
    if (s[0] != '.' || s.size() == 1) return Err(ErrorKind::kInvalid, "bad section");
    s.remove_prefix(1);
  }
  if (s.empty()) return spec;
  std::string upper = AsciiUpper(s);
  if (upper == "HEADER") {
    spec.kind = SectionKind::kHeader;
  } else if (upper == "TEXT") {
    spec.kind = SectionKind::kText;
  } else if (upper == "MIME") {
    if (spec.path.empty()) return Err(ErrorKind::kInvalid, "MIME needs a part number");
    spec.kind = SectionKind::kMime;
  } else if (upper.starts_with("HEADER.FIELDS")) {
    std::string_view rest = std::string_view(s).substr(13);
    spec.kind = SectionKind::kHeaderFields;
    if (StartsWithIgnoreCase(rest, ".NOT")) {
      spec.kind = SectionKind::kHeaderFieldsNot;
      rest.remove_prefix(4);
    }
    rest = TrimSpaces(rest);
    if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') {
      return Err(ErrorKind::kInvalid, "HEADER.FIELDS needs a list");
    }
    for (std::string_view w : SplitWords(rest.substr(1, rest.size() - 2))) {
      if (w.size() >= 2 && w.front() == '"' && w.back() == '"') w = w.substr(1, w.size() - 2);
      if (!w.empty()) spec.fields.emplace_back(w);
    }
    if (spec.fields.empty()) return Err(ErrorKind::kInvalid, "HEADER.FIELDS needs a list");
  } else {
    return Err(ErrorKind::kInvalid, "bad section");
  }
  return spec;
}

Result<std::string_view> SectionBytes(std::string_view raw, const Part& root,
                                      const SectionSpec& spec) {
  // Walk the part numbers. A message node's part 1 is its body when it is not
  // multipart; a message/rfc822 part's numbers index its encapsulated message.
  const Part* cur = &root;
  bool at_message = true;
  for (uint32_t n : spec.path) {
    const Part* container = cur;
    bool container_is_message = at_message;
    if (!at_message) {
      if (cur->IsMessage()) {
        if (cur->children.empty()) return NotFound();
        container = &cur->children[0];
        container_is_message = true;
      } else if (!cur->IsMultipart()) {
        return NotFound();
      }
    }
    if (container->IsMultipart()) {
      if (n > container->children.size()) return NotFound();
      cur = &container->children[n - 1];
    } else if (container_is_message && n == 1) {
      cur = container;
    } else {
      return NotFound();
    }
    at_message = false;
  }

  switch (spec.kind) {
    case SectionKind::kAll:
      if (spec.path.empty()) return Slice(raw, root.header_begin, root.body_end);
      return Slice(raw, cur->header_end, cur->body_end);
    case SectionKind::kMime:
      return Slice(raw, cur->header_begin, cur->header_end);
    case SectionKind::kHeader:
    case SectionKind::kHeaderFields:
    case SectionKind::kHeaderFieldsNot:
    case SectionKind::kText: {
      const Part* msg = &root;
      if (!spec.path.empty()) {
        if (!cur->IsMessage()) {
          return Err(ErrorKind::kInvalid, "HEADER and TEXT need a message/rfc822 part");
        }
        if (cur->children.empty()) return NotFound();
        msg = &cur->children[0];
      }
      if (spec.kind == SectionKind::kText) return Slice(raw, msg->header_end, msg->body_end);
      return Slice(raw, msg->header_begin, msg->header_end);
    }
  }
  return NotFound();
}

Result<std::string> Section(std::string_view raw, const Part& root, std::string_view spec) {
  auto parsed = ParseSection(spec);
  if (!parsed.ok()) return parsed.error();
  auto bytes = SectionBytes(raw, root, *parsed);
  if (!bytes.ok()) return bytes.error();
  if (parsed->kind == SectionKind::kHeaderFields || parsed->kind == SectionKind::kHeaderFieldsNot) {
    return HeaderFields(*bytes, parsed->fields, parsed->kind == SectionKind::kHeaderFieldsNot);
  }
  return std::string(*bytes);
}

std::string HeaderFields(std::string_view header, const std::vector<std::string>& names,
                         bool not_) {
  std::string out;
  internal::HeaderScan scan = internal::ScanHeader(header, SIZE_MAX);
  for (const internal::Field& f : scan.fields) {
    bool listed = false;
    for (const std::string& n : names) {
      if (EqualsIgnoreCase(f.name, n)) {
        listed = true;
        break;
      }
    }
    if (listed == not_) continue;
    out.append(header.substr(f.begin, f.end - f.begin));
    if (out.empty() || out.back() != '\n') out += "\r\n";  // the last line had no line break
  }
  out += "\r\n";
  return out;
}

}  // namespace hato::mime
