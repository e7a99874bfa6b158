#include "imap/server/render.h"

#include <algorithm>
#include <cstring>

#include "base/digest.h"
#include "base/strings.h"
#include "imap/proto/bodystructure.h"
#include "imap/proto/object_ids.h"
#include "imap/proto/response.h"
#include "imap/proto/strings.h"
#include "search/terms.h"

namespace hato::imap {
namespace {

struct FlagName {
  uint32_t bit;
  const char* name;
};
constexpr FlagName kSystemFlags[] = {
    {store::kAnswered, "\\Answered"}, {store::kFlagged, "\\Flagged"},
    {store::kDeleted, "\\Deleted"},   {store::kSeen, "\\Seen"},
    {store::kDraft, "\\Draft"},
};

// The part a section path names (RFC 3501 section 6.4.5): in a non-multipart
// message, part 1 is the body itself; a message/rfc822 part's numbers continue
// inside the encapsulated message.
const mime::Part* FindPart(const mime::Part& root, const std::vector<uint32_t>& path) {
  const mime::Part* p = &root;
  for (uint32_t n : path) {
    if (p != &root && p->IsMessage() && !p->children.empty()) p = &p->children[0];
    if (p->IsMultipart()) {
      if (n < 1 || n > p->children.size()) return nullptr;
      p = &p->children[n - 1];
    } else if (n != 1) {
      return nullptr;
    }
  }
  return p;
}

void AppendLiteral(std::string& out, std::string_view data) {
  out += '{';
  out += std::to_string(data.size());
  out += "}\r\n";
  out.append(data);
}

std::string_view Slice(std::string_view data, const std::optional<Partial>& p) {
  if (!p) return data;
  if (p->offset >= data.size()) return {};
  return data.substr(p->offset, p->count);
}

mime::SectionSpec ToSpec(const Section& s) {
  mime::SectionSpec spec;
  spec.path = s.part;
  switch (s.text) {
    case Section::Text::kNone:
      spec.kind = mime::SectionKind::kAll;
      break;
    case Section::Text::kHeader:
      spec.kind = mime::SectionKind::kHeader;
      break;
    case Section::Text::kHeaderFields:
      spec.kind = mime::SectionKind::kHeaderFields;
      break;
    case Section::Text::kHeaderFieldsNot:
      spec.kind = mime::SectionKind::kHeaderFieldsNot;
      break;
    case Section::Text::kText:
      spec.kind = mime::SectionKind::kText;
      break;
    case Section::Text::kMime:
      spec.kind = mime::SectionKind::kMime;
      break;
  }
  spec.fields = s.fields;
  return spec;
}

// The content of BODY[section]; empty when the section does not exist.
std::string SectionContent(const MessageData& m, const Section& s) {
  mime::SectionSpec spec = ToSpec(s);
  auto bytes = mime::SectionBytes(m.raw, *m.tree, spec);
  if (!bytes) return {};
  if (spec.kind == mime::SectionKind::kHeaderFields ||
      spec.kind == mime::SectionKind::kHeaderFieldsNot) {
    return mime::HeaderFields(*bytes, spec.fields,
                              spec.kind == mime::SectionKind::kHeaderFieldsNot);
  }
  return std::string(*bytes);
}

// PREVIEW (RFC 8970 section 3.1): at most 256 characters of the first text
// part (text/plain preferred, else text/html without its markup), decoded,
// white space collapsed; "" when the message has no text.
constexpr size_t kPreviewChars = 256;

const mime::Part* FirstText(const mime::Part& p, std::string_view subtype) {
  if (p.disposition && *p.disposition == "attachment") return nullptr;
  if (p.type == "text" && p.subtype == subtype) return &p;
  if (!p.IsMultipart()) return nullptr;
  for (const auto& c : p.children) {
    if (const mime::Part* found = FirstText(c, subtype)) return found;
  }
  return nullptr;
}

std::string PreviewText(const MessageData& m) {
  const mime::Part* part = FirstText(*m.tree, "plain");
  bool html = part == nullptr;
  if (html) part = FirstText(*m.tree, "html");
  if (part == nullptr || part->header_end > part->body_end || part->body_end > m.raw.size()) {
    return "";
  }
  std::string text = mime::DecodedText(m.raw, *part);
  std::string out;
  size_t chars = 0;
  bool space = false, in_tag = false;
  for (size_t i = 0; i < text.size() && chars <= kPreviewChars; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (html && c == '<') in_tag = true;
    if (in_tag) {
      if (c == '>') in_tag = false;
      space = true;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c < 0x20) {
      space = true;
      continue;
    }
    if ((c & 0xC0) != 0x80) {  // the first byte of a character
      if (space && !out.empty()) {
        if (++chars > kPreviewChars) break;
        out += ' ';
      }
      if (++chars > kPreviewChars) break;
    }
    space = false;
    out += static_cast<char>(c);
  }
  return out;
}

// BINARY[part] (RFC 3516): the part's body with its transfer encoding undone.
// BINARY[] is the whole message: as stored, except that the body of a
// single-part message with a transfer encoding is decoded (as Dovecot does).
std::optional<std::string> BinaryContent(const MessageData& m, const Section& s) {
  if (s.part.empty()) {
    const mime::Part& top = *m.tree;
    bool identity = top.encoding == "7bit" || top.encoding == "8bit" || top.encoding == "binary";
    if (top.IsMultipart() || top.IsMessage() || identity) return std::string(m.raw);
    if (top.header_end > top.body_end || top.body_end > m.raw.size()) return std::nullopt;
    return std::string(m.raw.substr(0, top.header_end)) +
           mime::DecodeTransfer(m.raw.substr(top.header_end, top.body_end - top.header_end),
                                top.encoding);
  }
  const mime::Part* p = FindPart(*m.tree, s.part);
  if (p == nullptr || p->IsMultipart()) return std::nullopt;
  if (p->header_end > p->body_end || p->body_end > m.raw.size()) return std::nullopt;
  std::string_view body = m.raw.substr(p->header_end, p->body_end - p->header_end);
  return mime::DecodeTransfer(body, p->encoding);
}

// SEARCH's substring match (RFC 9051 section 6.4.4, "case-insensitive"): the
// full-text index's rule (search/terms.h: its case folding, whitespace runs
// compared as one space), so that a message scanned because it is not
// indexed yet matches exactly as it will once it is.
bool ContainsFolded(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  return search::MatchesFolded(search::Fold(haystack), search::Fold(needle));
}

// The unfolded values of a header field in the top-level header.
std::vector<std::string> HeaderValues(const MessageData& m, std::string_view name) {
  std::vector<std::string> out;
  if (m.tree == nullptr || m.tree->header_end > m.raw.size()) return out;
  std::string fields =
      mime::HeaderFields(m.raw.substr(0, m.tree->header_end), {std::string(name)}, false);
  // "Name: value\r\n\tcontinued\r\n...\r\n"
  std::string cur;
  bool have = false;
  size_t pos = 0;
  while (pos < fields.size()) {
    size_t end = fields.find("\r\n", pos);
    if (end == std::string::npos) end = fields.size();
    std::string_view line(fields.data() + pos, end - pos);
    pos = end + 2;
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      cur += ' ';
      cur += TrimSpaces(line);
      continue;
    }
    if (have) out.push_back(cur);
    size_t colon = line.find(':');
    cur = std::string(TrimSpaces(colon == std::string_view::npos ? "" : line.substr(colon + 1)));
    have = true;
  }
  if (have) out.push_back(cur);
  return out;
}

// FROM/TO/CC/BCC against the envelope: display names decoded, and the
// address as mailbox@host (RFC 3501 section 6.4.4: substring of the field).
bool AddressesContain(const std::vector<mime::Address>& list, std::string_view needle) {
  for (const auto& a : list) {
    std::string text;
    if (a.name) text += mime::DecodeHeader(*a.name) + " ";
    if (a.mailbox) text += *a.mailbox;
    if (a.host) text += "@" + *a.host;
    if (ContainsFolded(text, needle)) return true;
  }
  return false;
}

const mime::Envelope* EnvelopeOf(const MessageData& m) {
  return m.tree && m.tree->envelope ? &*m.tree->envelope : nullptr;
}

bool HeaderContains(const MessageData& m, std::string_view name, std::string_view needle) {
  for (const auto& v : HeaderValues(m, name)) {
    if (ContainsFolded(mime::DecodeHeader(v), needle)) return true;
  }
  return false;
}

void CollectText(const MessageData& m, const mime::Part& p, std::string& out, int depth) {
  if (depth > mime::kMaxDepth) return;
  if (p.IsMultipart() || (p.IsMessage() && !p.children.empty())) {
    for (const auto& c : p.children) CollectText(m, c, out, depth + 1);
    return;
  }
  if (p.type == "text") {
    out += mime::DecodedText(m.raw, p);
    out += '\n';
  }
}

bool BodyContains(const MessageData& m, std::string_view needle) {
  if (m.tree == nullptr) return false;
  std::string text;
  CollectText(m, *m.tree, text, 0);
  return ContainsFolded(text, needle);
}

// The date of a Date: header value (RFC 5322 section 3.3), ignoring time and zone.
std::optional<Date> SentDate(const MessageData& m) {
  if (!m.tree || !m.tree->envelope || !m.tree->envelope->date) return std::nullopt;
  auto words = SplitWords(*m.tree->envelope->date);
  size_t i = 0;
  if (!words.empty() && words[0].find(',') != std::string_view::npos) ++i;  // "Sun,"
  if (i + 2 >= words.size()) return std::nullopt;
  auto day = ParseUint(words[i]);
  if (!day) return std::nullopt;
  int month = 0;
  for (int k = 1; k <= 12; ++k) {
    if (EqualsIgnoreCase(words[i + 1].substr(0, 3), MonthName(k))) month = k;
  }
  auto year = ParseUint(words[i + 2]);
  if (!year || month == 0) return std::nullopt;
  int y = static_cast<int>(*year);
  if (y < 50) y += 2000;  // obsolete 2-digit years (RFC 5322 section 4.3)
  if (y < 1000) y += 1900;
  return Date{y, month, static_cast<int>(*day)};
}

int CompareDates(const Date& a, const Date& b) {
  if (a.year != b.year) return a.year < b.year ? -1 : 1;
  if (a.month != b.month) return a.month < b.month ? -1 : 1;
  if (a.day != b.day) return a.day < b.day ? -1 : 1;
  return 0;
}

Date InternalDate(const store::MessageMeta& meta) { return FromUnixTime(meta.internal_date).date; }
Date SaveDate(const store::MessageMeta& meta) { return FromUnixTime(meta.saved_date).date; }

}  // namespace

std::string FlagList(const store::MessageMeta& m) {
  std::string out = "(";
  for (const auto& f : kSystemFlags) {
    if (m.flags & f.bit) {
      if (out.size() > 1) out += ' ';
      out += f.name;
    }
  }
  if (m.flags & kRecentFlag) {
    if (out.size() > 1) out += ' ';
    out += "\\Recent";
  }
  for (auto k : SplitWords(m.keywords)) {
    if (out.size() > 1) out += ' ';
    out.append(k);
  }
  out += ')';
  return out;
}

Result<store::FlagChange> ParseFlags(const std::vector<std::string>& flags) {
  store::FlagChange change;
  for (const auto& f : flags) {
    if (!f.empty() && f[0] == '\\') {
      bool known = false;
      for (const auto& sf : kSystemFlags) {
        if (EqualsIgnoreCase(f, sf.name)) {
          change.flags |= sf.bit;
          known = true;
        }
      }
      if (!known && !EqualsIgnoreCase(f, "\\Recent")) {
        return Err(ErrorKind::kInvalid, "unknown system flag " + f);
      }
    } else {
      change.keywords.push_back(f);
    }
  }
  return change;
}

bool NeedsContent(const std::vector<FetchItem>& items) {
  for (const auto& i : items) {
    switch (i.att) {
      case FetchAtt::kRfc822:
      case FetchAtt::kRfc822Header:
      case FetchAtt::kRfc822Text:
      case FetchAtt::kBodySection:
      case FetchAtt::kBinary:
      case FetchAtt::kBinarySize:
      case FetchAtt::kPreview:
      case FetchAtt::kEmailId:   // the body's hash
      case FetchAtt::kThreadId:  // its References, In-Reply-To, Message-ID
        return true;
      default:
        break;
    }
  }
  return false;
}

bool NeedsTree(const std::vector<FetchItem>& items) {
  for (const auto& i : items) {
    if (i.att == FetchAtt::kEnvelope || i.att == FetchAtt::kBody ||
        i.att == FetchAtt::kBodyStructure) {
      return true;
    }
  }
  return NeedsContent(items);
}

void RenderFetch(std::string& out, const MessageData& m, const std::vector<FetchItem>& items,
                 bool uid_fetch, bool with_modseq) {
  const store::MessageMeta& meta = *m.meta;
  out += "* ";
  out += std::to_string(m.seq);
  out += " FETCH (";
  bool first = true;
  auto sep = [&] {
    if (!first) out += ' ';
    first = false;
  };
  bool uid_done = false, modseq_done = false;
  if (uid_fetch) {  // UID first, as clients parsing around literals expect (RFC 3501 6.4.8)
    sep();
    out += "UID " + std::to_string(meta.uid);
    uid_done = true;
  }
  for (const auto& item : items) {
    switch (item.att) {
      case FetchAtt::kUid:
        if (uid_done) break;
        sep();
        out += "UID " + std::to_string(meta.uid);
        uid_done = true;
        break;
      case FetchAtt::kFlags:
        sep();
        out += "FLAGS " + FlagList(meta);
        break;
      case FetchAtt::kInternalDate:
        sep();
        out += "INTERNALDATE \"" + FormatDateTime(FromUnixTime(meta.internal_date)) + "\"";
        break;
      case FetchAtt::kSaveDate:
        // RFC 8514 section 4.1: "SAVEDATE" SP (date-time / nil); every
        // message here has one (store::MessageMeta::saved_date).
        sep();
        out += "SAVEDATE \"" + FormatDateTime(FromUnixTime(meta.saved_date)) + "\"";
        break;
      case FetchAtt::kRfc822Size:
        sep();
        out += "RFC822.SIZE " + std::to_string(meta.size);
        break;
      case FetchAtt::kEmailId:
        // RFC 8474 section 5.1: "EMAILID" SP "(" objectid ")".
        sep();
        out += "EMAILID (" + EmailObjectId(Sha256(m.raw)) + ")";
        break;
      case FetchAtt::kThreadId:
        // RFC 8474 section 5.2: every message has a thread id here (one of
        // its own when it has no References, In-Reply-To or Message-ID).
        sep();
        out += "THREADID (" + ThreadObjectId(m.raw) + ")";
        break;
      case FetchAtt::kModSeq:
        if (modseq_done) break;
        sep();
        out += "MODSEQ (" + std::to_string(meta.modseq) + ")";
        modseq_done = true;
        break;
      case FetchAtt::kEnvelope:
        sep();
        out += "ENVELOPE ";
        out +=
            m.tree && m.tree->envelope ? Envelope(*m.tree->envelope) : Envelope(mime::Envelope{});
        break;
      case FetchAtt::kBody:
      case FetchAtt::kBodyStructure:
        sep();
        out += item.att == FetchAtt::kBody ? "BODY " : "BODYSTRUCTURE ";
        out += m.tree ? BodyStructure(*m.tree, item.att == FetchAtt::kBodyStructure)
                      : "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)";
        break;
      case FetchAtt::kRfc822:
        sep();
        out += "RFC822 ";
        AppendLiteral(out, m.raw);
        break;
      case FetchAtt::kRfc822Header:
        sep();
        out += "RFC822.HEADER ";
        AppendLiteral(out, m.tree ? m.raw.substr(0, std::min(m.tree->header_end, m.raw.size()))
                                  : std::string_view());
        break;
      case FetchAtt::kRfc822Text:
        sep();
        out += "RFC822.TEXT ";
        AppendLiteral(out, m.tree ? m.raw.substr(std::min(m.tree->header_end, m.raw.size()))
                                  : std::string_view());
        break;
      case FetchAtt::kBodySection: {
        sep();
        std::string content = m.tree ? SectionContent(m, item.section) : std::string();
        out += "BODY[" + item.section.canonical + "]";
        if (item.partial) out += "<" + std::to_string(item.partial->offset) + ">";
        out += ' ';
        AppendLiteral(out, Slice(content, item.partial));
        break;
      }
      case FetchAtt::kBinary: {
        sep();
        auto content = m.tree ? BinaryContent(m, item.section) : std::nullopt;
        out += "BINARY[" + item.section.canonical + "]";
        if (item.partial) out += "<" + std::to_string(item.partial->offset) + ">";
        out += ' ';
        if (!content) {
          out += "NIL";
        } else {
          // RFC 3516 section 4.3: literal8 when the content holds NUL.
          if (content->find('\0') != std::string::npos) out += '~';
          AppendLiteral(out, Slice(*content, item.partial));
        }
        break;
      }
      case FetchAtt::kPreview:
        sep();
        out += "PREVIEW ";
        if (m.tree) {
          AppendString(out, PreviewText(m));
        } else {
          out += "NIL";
        }
        break;
      case FetchAtt::kBinarySize: {
        sep();
        auto content = m.tree ? BinaryContent(m, item.section) : std::nullopt;
        out += "BINARY.SIZE[" + item.section.canonical + "] ";
        out += content ? std::to_string(content->size()) : "NIL";
        break;
      }
    }
  }
  if (with_modseq && !modseq_done) {
    sep();
    out += "MODSEQ (" + std::to_string(meta.modseq) + ")";
  }
  out += ")\r\n";
}

SearchNeeds SearchNeedsOf(const SearchKey& key) {
  SearchNeeds needs = SearchNeeds::kMeta;
  switch (key.op) {
    case SearchOp::kBcc:
    case SearchOp::kCc:
    case SearchOp::kFrom:
    case SearchOp::kSubject:
    case SearchOp::kTo:
    case SearchOp::kSentBefore:
    case SearchOp::kSentOn:
    case SearchOp::kSentSince:
      needs = SearchNeeds::kTree;
      break;
    case SearchOp::kBody:
    case SearchOp::kText:
    case SearchOp::kHeader:
    case SearchOp::kEmailId:
    case SearchOp::kThreadId:
      return SearchNeeds::kContent;
    default:
      break;
  }
  for (const auto& c : key.children) needs = std::max(needs, SearchNeedsOf(c));
  return needs;
}

bool Matches(const SearchKey& key, const MessageData& m, uint32_t max_seq, uint32_t max_uid) {
  const store::MessageMeta& meta = *m.meta;
  auto has = [&](uint32_t bit) { return (meta.flags & bit) != 0; };
  switch (key.op) {
    case SearchOp::kAll:
      return true;
    case SearchOp::kAnd:
      return std::all_of(key.children.begin(), key.children.end(),
                         [&](const SearchKey& c) { return Matches(c, m, max_seq, max_uid); });
    case SearchOp::kOr:
      return key.children.size() == 2 && (Matches(key.children[0], m, max_seq, max_uid) ||
                                          Matches(key.children[1], m, max_seq, max_uid));
    case SearchOp::kNot:
      return key.children.size() == 1 && !Matches(key.children[0], m, max_seq, max_uid);
    case SearchOp::kSequenceSet:
      return key.set.Resolve(max_seq).Contains(m.seq);
    case SearchOp::kUid:
      return key.set.Contains(meta.uid, max_uid);
    case SearchOp::kAnswered:
      return has(store::kAnswered);
    case SearchOp::kDeleted:
      return has(store::kDeleted);
    case SearchOp::kDraft:
      return has(store::kDraft);
    case SearchOp::kFlagged:
      return has(store::kFlagged);
    case SearchOp::kSeen:
      return has(store::kSeen);
    case SearchOp::kUnanswered:
      return !has(store::kAnswered);
    case SearchOp::kUndeleted:
      return !has(store::kDeleted);
    case SearchOp::kUndraft:
      return !has(store::kDraft);
    case SearchOp::kUnflagged:
      return !has(store::kFlagged);
    case SearchOp::kUnseen:
      return !has(store::kSeen);
    case SearchOp::kNew:  // RFC 3501 section 6.4.4: RECENT UNSEEN
      return has(kRecentFlag) && !has(store::kSeen);
    case SearchOp::kRecent:
      return has(kRecentFlag);
    case SearchOp::kOld:
      return !has(kRecentFlag);
    case SearchOp::kKeyword:
    case SearchOp::kUnkeyword: {
      bool found = false;
      for (auto w : SplitWords(meta.keywords)) found = found || EqualsIgnoreCase(w, key.text);
      return key.op == SearchOp::kKeyword ? found : !found;
    }
    case SearchOp::kBcc:
      return EnvelopeOf(m) && AddressesContain(EnvelopeOf(m)->bcc, key.text);
    case SearchOp::kCc:
      return EnvelopeOf(m) && AddressesContain(EnvelopeOf(m)->cc, key.text);
    case SearchOp::kFrom:
      return EnvelopeOf(m) && AddressesContain(EnvelopeOf(m)->from, key.text);
    case SearchOp::kTo:
      return EnvelopeOf(m) && AddressesContain(EnvelopeOf(m)->to, key.text);
    case SearchOp::kSubject:
      return EnvelopeOf(m) && EnvelopeOf(m)->subject &&
             ContainsFolded(mime::DecodeHeader(*EnvelopeOf(m)->subject), key.text);
    case SearchOp::kHeader:
      if (key.text.empty()) return !HeaderValues(m, key.field).empty();
      return HeaderContains(m, key.field, key.text);
    case SearchOp::kBody:
      return BodyContains(m, key.text);
    case SearchOp::kText: {
      if (m.tree == nullptr) return false;
      std::string_view header = m.raw.substr(0, std::min(m.tree->header_end, m.raw.size()));
      return ContainsFolded(mime::DecodeHeader(header), key.text) || BodyContains(m, key.text);
    }
    case SearchOp::kBefore:
      return CompareDates(InternalDate(meta), key.date) < 0;
    case SearchOp::kOn:
      return CompareDates(InternalDate(meta), key.date) == 0;
    case SearchOp::kSince:
      return CompareDates(InternalDate(meta), key.date) >= 0;
    // RFC 8514 section 4.2: as BEFORE/ON/SINCE, on the save date.
    case SearchOp::kSavedBefore:
      return CompareDates(SaveDate(meta), key.date) < 0;
    case SearchOp::kSavedOn:
      return CompareDates(SaveDate(meta), key.date) == 0;
    case SearchOp::kSavedSince:
      return CompareDates(SaveDate(meta), key.date) >= 0;
    case SearchOp::kSaveDateSupported:
      return true;
    case SearchOp::kSentBefore:
    case SearchOp::kSentOn:
    case SearchOp::kSentSince: {
      auto d = SentDate(m);
      if (!d) return false;
      int c = CompareDates(*d, key.date);
      return key.op == SearchOp::kSentBefore ? c < 0
             : key.op == SearchOp::kSentOn   ? c == 0
                                             : c >= 0;
    }
    case SearchOp::kLarger:
      return meta.size > key.number;
    case SearchOp::kSmaller:
      return meta.size < key.number;
    case SearchOp::kModSeq:
      return meta.modseq >= key.number;
    case SearchOp::kEmailId:
      return EmailObjectId(Sha256(m.raw)) == key.text;
    case SearchOp::kThreadId:
      return ThreadObjectId(m.raw) == key.text;
  }
  return false;
}

}  // namespace hato::imap
