// libFuzzer target for the MIME layer (src/mime/message.h) and the IMAP
// BODYSTRUCTURE/ENVELOPE writers (src/imap/proto/bodystructure.h).
//
//   * Parse never fails; the root spans the whole input; every part has
//     header_begin <= header_end <= body_end, size == body_end - header_end;
//     children lie in order, without overlap, inside their parent's body; the
//     encapsulated message of message/rfc822 spans exactly the part's body;
//     envelopes exist on message nodes only; depth <= kMaxDepth; at most
//     kMaxParts parts; types are lower-case; lines match the body.
//   * Serialize/Deserialize round-trips to an equal tree and the same bytes.
//   * Every part number resolves with SectionBytes to a slice of the input;
//     HEADER/TEXT/MIME sections resolve or fail cleanly.
//   * BODY, BODYSTRUCTURE and ENVELOPE render; decoded subjects and texts
//     are valid UTF-8.
//   * ExtractSearchText (the full-text index text) is valid UTF-8 and capped.
//   * Deserialize of the raw input itself never crashes, and what it accepts
//     re-serializes and renders.
//   * PlainAddress, where it answers (the first line of the input as a field
//     value), gives ParseAddressList's one mailbox and host.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "imap/proto/bodystructure.h"
#include "mime/message.h"

namespace {

using hato::mime::Part;

struct Walk {
  std::string_view raw;
  size_t parts = 0;
};

uint64_t CountLines(std::string_view body) {
  return static_cast<uint64_t>(std::count(body.begin(), body.end(), '\n'));
}

void CheckPart(Walk& w, const Part& p, int depth, bool message, const std::string& number) {
  ++w.parts;
  FUZZ_CHECK(depth <= hato::mime::kMaxDepth);
  FUZZ_CHECK(p.header_begin <= p.header_end && p.header_end <= p.body_end);
  FUZZ_CHECK(p.body_end <= w.raw.size());
  FUZZ_CHECK(p.size == p.body_end - p.header_end);
  FUZZ_CHECK(p.envelope.has_value() == message);
  FUZZ_CHECK(!hato::fuzz::HasAsciiUpper(p.type) && !hato::fuzz::HasAsciiUpper(p.subtype));
  std::string_view body = w.raw.substr(p.header_end, p.size);
  if (p.type == "text" || p.IsMessage()) {
    FUZZ_CHECK(p.lines == CountLines(body));
  } else {
    FUZZ_CHECK(p.lines == 0);
  }
  if (p.IsMessage() && !p.children.empty()) {
    FUZZ_CHECK(p.children.size() == 1);
    FUZZ_CHECK(p.children[0].header_begin == p.header_end);
    FUZZ_CHECK(p.children[0].body_end == p.body_end);
    CheckPart(w, p.children[0], depth + 1, true, number);
  } else {
    FUZZ_CHECK(p.IsMultipart() || p.children.empty());
    size_t next = p.header_end;
    for (size_t i = 0; i < p.children.size(); ++i) {
      const Part& c = p.children[i];
      FUZZ_CHECK(c.header_begin >= next && c.body_end <= p.body_end);
      next = c.body_end;
      std::string child =
          number.empty() ? std::to_string(i + 1) : number + "." + std::to_string(i + 1);
      CheckPart(w, c, depth + 1, false, child);
    }
  }
  if (p.type == "text" && p.children.empty()) {
    FUZZ_CHECK(hato::IsValidUtf8(hato::mime::DecodedText(w.raw, p)));
  }
  if (p.envelope && p.envelope->subject) {
    FUZZ_CHECK(hato::IsValidUtf8(hato::mime::DecodeHeader(*p.envelope->subject)));
  }
}

// Resolves every part number of the tree (as IMAP numbers them) and checks
// that the section is exactly the part's body.
void CheckSections(std::string_view raw, const Part& root, const Part& p, bool at_message,
                   const std::string& number) {
  const Part* container = &p;
  if (!at_message && p.IsMessage()) {
    if (p.children.empty()) return;
    container = &p.children[0];
  } else if (!at_message && !p.IsMultipart()) {
    return;
  }
  for (size_t i = 0; i < container->children.size() && i < 64; ++i) {
    if (!container->IsMultipart()) break;
    const Part& c = container->children[i];
    std::string n = number.empty() ? std::to_string(i + 1) : number + "." + std::to_string(i + 1);
    auto spec = hato::mime::ParseSection(n);
    FUZZ_CHECK(spec.ok());
    auto bytes = hato::mime::SectionBytes(raw, root, *spec);
    FUZZ_CHECK(bytes.ok());
    FUZZ_CHECK(bytes->data() == raw.data() + c.header_end && bytes->size() == c.size);
    auto mime = hato::mime::Section(raw, root, n + ".MIME");
    FUZZ_CHECK(mime.ok() && mime->size() == c.header_end - c.header_begin);
    if (c.IsMessage() && !c.children.empty()) {
      auto header = hato::mime::Section(raw, root, n + ".HEADER");
      FUZZ_CHECK(header.ok());
      auto fields = hato::mime::Section(raw, root, n + ".HEADER.FIELDS (Subject From)");
      FUZZ_CHECK(fields.ok());
    }
    CheckSections(raw, root, c, false, n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);

  auto parsed = hato::mime::Parse(raw);
  FUZZ_CHECK(parsed.ok());
  const Part& root = *parsed;
  FUZZ_CHECK(root.header_begin == 0 && root.body_end == raw.size());
  Walk w{raw};
  CheckPart(w, root, 0, true, "");
  FUZZ_CHECK(w.parts <= hato::mime::kMaxParts);

  std::string stored = hato::mime::Serialize(root);
  auto back = hato::mime::Deserialize(stored);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(*back == root);
  FUZZ_CHECK_EQ_STR(hato::mime::Serialize(*back), stored);

  for (const char* spec : {"", "HEADER", "TEXT", "1", "HEADER.FIELDS (Subject)"}) {
    auto s = hato::mime::Section(raw, root, spec);
    FUZZ_CHECK(s.ok() || s.error().kind == hato::ErrorKind::kNotFound);
  }
  CheckSections(raw, root, root, true, "");

  std::string body = hato::imap::BodyStructure(root, false);
  std::string ext = hato::imap::BodyStructure(root, true);
  FUZZ_CHECK(!body.empty() && body.front() == '(' && ext.size() >= body.size());
  (void)hato::imap::Envelope(*root.envelope);

  // Stored bytes are untrusted too: arbitrary input must never crash.
  auto any = hato::mime::Deserialize(raw);
  if (any.ok()) {
    auto again = hato::mime::Deserialize(hato::mime::Serialize(*any));
    FUZZ_CHECK(again.ok() && *again == *any);
    (void)hato::imap::BodyStructure(*any, true);
    (void)hato::mime::Section(raw, *any, "1.2");
  } else {
    FUZZ_CHECK(any.error().kind == hato::ErrorKind::kCorrupt);
  }

  // The address shortcut of Sieve's address tests agrees with the parser.
  std::string_view line = raw.substr(0, std::min(raw.find('\n'), size_t{1024}));
  if (auto plain = hato::mime::PlainAddress(line)) {
    auto list = hato::mime::ParseAddressList(line);
    FUZZ_CHECK(list.size() == 1);
    FUZZ_CHECK(list[0].mailbox && *list[0].mailbox == plain->first);
    FUZZ_CHECK(list[0].host && *list[0].host == plain->second);
  }

  // The decoders on the raw input.
  (void)hato::mime::DecodeTransfer(raw.substr(0, 4096), "base64");
  (void)hato::mime::DecodeTransfer(raw.substr(0, 4096), "quoted-printable");
  FUZZ_CHECK(hato::IsValidUtf8(hato::mime::DecodeHeader(raw.substr(0, 1024))));
  // The full-text index text (SEARCH BODY/TEXT): valid UTF-8, within its caps.
  hato::mime::SearchText text = hato::mime::ExtractSearchText(raw, *parsed);
  FUZZ_CHECK(hato::IsValidUtf8(text.header) && hato::IsValidUtf8(text.body));
  FUZZ_CHECK(text.header.size() <= hato::mime::kMaxSearchTextBytes + 1);
  FUZZ_CHECK(text.body.size() <= hato::mime::kMaxSearchTextBytes + 1);
  return 0;
}
