// The decoded text of a message for the full-text index behind IMAP SEARCH
// BODY and TEXT (RFC 3501 section 6.4.4, RFC 9051 section 6.4.4.1: matching
// on decoded text is allowed and expected). Pure; see message.h.
#include "mime/message.h"

namespace hato::mime {
namespace {

void AppendCapped(std::string& out, std::string_view text) {
  if (out.size() >= kMaxSearchTextBytes) return;
  size_t room = kMaxSearchTextBytes - out.size();
  if (text.size() > room) {
    // Cut on a character boundary so the index holds valid UTF-8.
    size_t cut = room;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut);
  }
  out.append(text);
  out += '\n';
}

// Decodes a header block field by field (one line each), so that words of
// adjacent fields do not run together.
std::string DecodeFields(std::string_view header) {
  std::string out;
  size_t start = 0;
  for (size_t i = 0; i <= header.size(); ++i) {
    bool end = i == header.size();
    if (!end && header[i] != '\n') continue;
    bool continued =
        !end && i + 1 < header.size() && (header[i + 1] == ' ' || header[i + 1] == '\t');
    if (continued) continue;
    std::string_view field = header.substr(start, (end ? i : i + 1) - start);
    start = i + 1;
    if (field.find_first_not_of("\r\n") == std::string_view::npos) continue;
    out += DecodeHeader(field);
    out += '\n';
  }
  return out;
}

void CollectBody(std::string_view raw, const Part& p, std::string& out, int depth) {
  if (depth > kMaxDepth) return;
  if (p.IsMessage() && !p.children.empty()) {
    // The encapsulated message is part of the body: its header counts too.
    const Part& inner = p.children.front();
    if (inner.header_end <= raw.size() && inner.header_begin <= inner.header_end) {
      AppendCapped(
          out, DecodeFields(raw.substr(inner.header_begin, inner.header_end - inner.header_begin)));
    }
    CollectBody(raw, inner, out, depth + 1);
    return;
  }
  if (p.IsMultipart()) {
    for (const auto& c : p.children) CollectBody(raw, c, out, depth + 1);
    return;
  }
  if (p.type == "text") AppendCapped(out, DecodedText(raw, p));
}

}  // namespace

SearchText ExtractSearchText(std::string_view raw, const Part& root) {
  SearchText t;
  size_t header_end = std::min(root.header_end, raw.size());
  AppendCapped(t.header, DecodeFields(raw.substr(0, header_end)));
  CollectBody(raw, root, t.body, 0);
  return t;
}

}  // namespace hato::mime
