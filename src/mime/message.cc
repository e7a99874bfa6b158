// The MIME parser: raw message -> Part tree with offsets, and the envelope
// and address-list parsers.
//
// STANDARDS: RFC 5322 sections 2.1-2.2 (header/body), 3.4 (addresses), 3.6
// (fields), 4.4 (obsolete addressing); RFC 2045 sections 5-6 (Content-Type,
// defaults, Content-Transfer-Encoding); RFC 2046 section 5.1 (multipart
// delimiters, preamble/epilogue), 5.1.5 (digest), 5.2.1 (message/rfc822);
// RFC 2183 (Content-Disposition); RFC 3282 (Content-Language); RFC 6532
// section 3.5 (message/global); RFC 3501 section 7.4.2 (envelope defaults).
//
// SECURITY: recursion is bounded by kMaxDepth and the number of parts by
// kMaxParts; header interpretation by kMaxHeaderBytes. Every offset is
// derived from positions inside `raw`, so children always nest in parents.
#include "mime/message.h"

#include <algorithm>

#include "base/strings.h"
#include "mime/header.h"

namespace hato::mime {

using internal::Field;
using internal::FindField;
using internal::HeaderScan;
using internal::ScanHeader;
using internal::Unfold;

const std::string* Part::FindParam(std::string_view name) const {
  for (const mime::Param& p : params) {
    if (EqualsIgnoreCase(p.name, name)) return &p.value;
  }
  return nullptr;
}

std::string Part::Charset() const {
  const std::string* c = FindParam("charset");
  if (c == nullptr || TrimSpaces(*c).empty()) return "us-ascii";
  return std::string(TrimSpaces(*c));
}

namespace {

// RFC 3501 body-fld-lines, "the size of the body in text lines": the lines
// ended by a line break. An unterminated last line (a body without a final
// CRLF, and every part of a multipart, whose last CRLF belongs to the next
// delimiter, RFC 2046 section 5.1.1) is not counted, as Dovecot counts.
uint64_t CountLines(std::string_view body) {
  return static_cast<uint64_t>(std::count(body.begin(), body.end(), '\n'));
}

Envelope EnvelopeFromFields(const std::vector<Field>& fields) {
  Envelope e;
  auto str = [&](std::string_view name) -> std::optional<std::string> {
    const Field* f = FindField(fields, name);
    if (f == nullptr) return std::nullopt;
    return Unfold(f->value);
  };
  auto list = [&](std::string_view name) -> std::vector<Address> {
    const Field* f = FindField(fields, name);
    if (f == nullptr) return {};
    return ParseAddressList(Unfold(f->value));
  };
  e.date = str("Date");
  e.subject = str("Subject");
  e.from = list("From");
  e.sender = list("Sender");
  e.reply_to = list("Reply-To");
  e.to = list("To");
  e.cc = list("Cc");
  e.bcc = list("Bcc");
  e.in_reply_to = str("In-Reply-To");
  e.message_id = str("Message-ID");
  // RFC 3501 section 7.4.2: absent or empty Sender / Reply-To are set to From.
  if (e.sender.empty()) e.sender = e.from;
  if (e.reply_to.empty()) e.reply_to = e.from;
  return e;
}

class Parser {
 public:
  explicit Parser(std::string_view raw) : raw_(raw) {}

  // Parses the entity (header + body) in [begin, end) at `depth`.
  Part Entity(size_t begin, size_t end, int depth, bool digest_child, bool message) {
    Part p;
    p.header_begin = begin;
    HeaderScan scan = ScanHeader(raw_.substr(begin, end - begin));
    p.header_end = begin + scan.end;
    p.body_end = end;
    p.size = end - p.header_end;
    ApplyContentFields(scan.fields, digest_child, &p);
    if (message) p.envelope = EnvelopeFromFields(scan.fields);
    std::string_view body = raw_.substr(p.header_end, p.size);
    if (p.type == "text" || p.IsMessage()) p.lines = CountLines(body);

    if (depth >= kMaxDepth) return p;  // too deep: an opaque leaf
    if (p.IsMultipart()) {
      Split(depth, &p);
    } else if (p.IsMessage() && parts_ < kMaxParts &&
               (p.encoding == "7bit" || p.encoding == "8bit" || p.encoding == "binary")) {
      // RFC 2046 section 5.2.1: only identity encodings; anything else is opaque.
      ++parts_;
      p.children.push_back(Entity(p.header_end, p.body_end, depth + 1, false, true));
    }
    return p;
  }

  size_t parts_ = 1;  // the root

 private:
  static void ApplyContentFields(const std::vector<Field>& fields, bool digest_child, Part* p) {
    // RFC 2045 section 5.2 defaults; RFC 2046 section 5.1.5 for digest parts.
    if (digest_child) {
      p->type = "message";
      p->subtype = "rfc822";
    } else {
      p->params.push_back(Param{"charset", "us-ascii"});
    }
    if (const Field* f = FindField(fields, "Content-Type")) {
      std::string type, subtype;
      std::vector<Param> params;
      if (internal::ParseContentHeader(f->value, true, &type, &subtype, &params)) {
        p->type = std::move(type);
        p->subtype = std::move(subtype);
        p->params = std::move(params);
      }  // else: syntactically invalid, the defaults stand (RFC 2045 section 5.2)
    }
    if (const Field* f = FindField(fields, "Content-Transfer-Encoding")) {
      std::string enc = AsciiLower(TrimSpaces(internal::StripComments(Unfold(f->value))));
      if (!enc.empty()) p->encoding = std::move(enc);
    }
    if (const Field* f = FindField(fields, "Content-Disposition")) {
      std::string type;
      std::vector<Param> params;
      if (internal::ParseContentHeader(f->value, false, &type, nullptr, &params)) {
        p->disposition = std::move(type);
        p->disposition_params = std::move(params);
      }
    }
    if (const Field* f = FindField(fields, "Content-ID")) p->id = Unfold(f->value);
    if (const Field* f = FindField(fields, "Content-Description")) {
      p->description = Unfold(f->value);
    }
    if (const Field* f = FindField(fields, "Content-Location")) p->location = Unfold(f->value);
    if (const Field* f = FindField(fields, "Content-MD5")) p->md5 = Unfold(f->value);
    if (const Field* f = FindField(fields, "Content-Language")) {
      // RFC 3282 section 2: Language-List = #Language-Tag, CFWS allowed.
      std::string v = internal::StripComments(Unfold(f->value));
      std::string_view rest = v;
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        std::string_view tag = TrimSpaces(rest.substr(0, comma));
        if (!tag.empty()) p->language.emplace_back(tag);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
  }

  // RFC 2046 section 5.1.1: splits a multipart body at its delimiter lines.
  // The line break before a delimiter belongs to the delimiter. Tolerated: a
  // missing close delimiter (the last part ends where the body ends) and
  // transport padding (SP/HTAB) after a delimiter.
  void Split(int depth, Part* p) {
    const std::string* boundary = p->FindParam("boundary");
    if (boundary == nullptr || boundary->empty() || boundary->size() > kMaxBoundaryLength) return;
    const std::string delim = "--" + *boundary;
    const size_t begin = p->header_end;
    const size_t end = p->body_end;
    const bool digest = p->subtype == "digest";
    std::optional<size_t> part_start;
    size_t pos = begin;
    while (pos < end) {
      size_t nl = raw_.find('\n', pos);
      size_t next = (nl == std::string_view::npos || nl >= end) ? end : nl + 1;
      size_t content_end = next;
      if (content_end > pos && raw_[content_end - 1] == '\n') --content_end;
      if (content_end > pos && raw_[content_end - 1] == '\r') --content_end;
      if (raw_[pos] == '-' && content_end - pos >= delim.size() &&
          raw_.compare(pos, delim.size(), delim) == 0) {
        size_t k = pos + delim.size();
        bool close = false;
        if (content_end - k >= 2 && raw_[k] == '-' && raw_[k + 1] == '-') {
          close = true;
          k += 2;
        }
        while (k < content_end && (raw_[k] == ' ' || raw_[k] == '\t')) ++k;
        if (k == content_end) {  // a delimiter line
          size_t before = pos;
          if (before > begin && raw_[before - 1] == '\n') {
            --before;
            if (before > begin && raw_[before - 1] == '\r') --before;
          }
          if (part_start) AddChild(*part_start, std::max(*part_start, before), depth, digest, p);
          part_start.reset();
          if (close) return;                // the rest is the epilogue
          if (parts_ >= kMaxParts) return;  // limit: the rest stays in the body, uninterpreted
          part_start = next;
        }
      }
      pos = next;
    }
    if (part_start) AddChild(*part_start, end, depth, digest, p);  // no close delimiter
  }

  void AddChild(size_t begin, size_t end, int depth, bool digest, Part* parent) {
    ++parts_;
    parent->children.push_back(Entity(begin, end, depth + 1, digest, false));
  }

  std::string_view raw_;
};

// ---- RFC 5322 address lists --------------------------------------------------

struct Token {
  enum Kind { kAtom, kQuoted, kLiteral, kSpecial } kind;
  std::string text;  // atom / unescaped quoted content / literal / the special
  std::string raw;   // as written (quoted strings keep quotes and escapes)
  bool space_before = false;
  std::string comment;  // the text of a comment right after the token, if any
  bool Is(char c) const { return kind == kSpecial && text[0] == c; }
};

bool IsAddrSpecial(char c) {
  return c == '<' || c == '>' || c == '@' || c == ',' || c == ':' || c == ';' || c == '.';
}

std::vector<Token> Tokenize(std::string_view s) {
  std::vector<Token> out;
  bool space = false;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = true;
      ++i;
    } else if (c == '(') {  // comment (section 3.2.2): kept on the token before it
      int depth = 0;
      std::string text;
      while (i < s.size()) {
        if (s[i] == '\\') {
          if (i + 1 < s.size()) text += s[i + 1];
          i += 2;
          continue;
        }
        if (s[i] == '(' && depth++ == 0) {
          ++i;
          continue;
        }
        if (s[i] == ')' && --depth == 0) {
          ++i;
          break;
        }
        text += s[i];
        ++i;
      }
      if (!out.empty()) out.back().comment = TrimSpaces(text);
      space = true;
    } else if (c == '"') {  // quoted-string (section 3.2.4)
      Token t{Token::kQuoted, "", "\"", space, {}};
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) {
          t.raw += s[i++];
        }
        t.text += s[i];
        t.raw += s[i++];
      }
      if (i < s.size()) ++i;
      t.raw += '"';
      out.push_back(std::move(t));
      space = false;
    } else if (c == '[') {  // domain-literal (section 3.4.1)
      size_t close = s.find(']', i);
      size_t stop = close == std::string_view::npos ? s.size() : close + 1;
      std::string lit(s.substr(i, stop - i));
      out.push_back(Token{Token::kLiteral, lit, lit, space, {}});
      i = stop;
      space = false;
    } else if (IsAddrSpecial(c)) {
      out.push_back(Token{Token::kSpecial, std::string(1, c), std::string(1, c), space, {}});
      ++i;
      space = false;
    } else {
      size_t start = i;
      while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n' &&
             s[i] != '(' && s[i] != '"' && s[i] != '[' && !IsAddrSpecial(s[i])) {
        ++i;
      }
      std::string a(s.substr(start, i - start));
      out.push_back(Token{Token::kAtom, a, a, space, {}});
      space = false;
    }
  }
  return out;
}

// A phrase (display name or group name): words joined by single spaces where
// the source had white space or comments; quoted strings unquoted.
std::string Phrase(const std::vector<Token>& t, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (!out.empty() && t[i].space_before) out += ' ';
    out += t[i].text;
  }
  return out;
}

// A local part or domain: tokens concatenated as written (obsolete CFWS around
// dots dropped, section 4.4).
std::string Joined(const std::vector<Token>& t, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) out += t[i].raw;
  return out;
}

bool EndsMailbox(const Token& t) { return t.Is(',') || t.Is(';') || t.Is('>') || t.Is('<'); }

}  // namespace

std::vector<Address> ParseAddressList(std::string_view value) {
  std::vector<Token> t = Tokenize(value);
  const size_t n = t.size();
  std::vector<Address> out;
  bool in_group = false;
  size_t i = 0;
  while (i < n) {
    if (t[i].Is(',')) {
      ++i;
      continue;
    }
    if (t[i].Is(';')) {  // group end (section 3.4)
      if (in_group) out.push_back(Address{});
      in_group = false;
      ++i;
      continue;
    }
    if (t[i].Is('>')) {  // stray
      ++i;
      continue;
    }
    size_t start = i;
    while (i < n && !t[i].Is('<') && !t[i].Is('@') && !t[i].Is(':') && !t[i].Is(',') &&
           !t[i].Is(';') && !t[i].Is('>')) {
      ++i;
    }
    if (i < n && t[i].Is(':')) {  // group start: display-name ":"
      if (!in_group) {
        Address g;
        g.mailbox = Phrase(t, start, i);
        out.push_back(std::move(g));
        in_group = true;
      }
      ++i;
      continue;
    }
    Address a;
    if (i < n && t[i].Is('<')) {  // [display-name] angle-addr
      if (i > start) a.name = Phrase(t, start, i);
      ++i;
      if (i < n && t[i].Is('@')) {  // obs-route: "@a,@b:" (section 4.4)
        size_t route = i;
        while (i < n && !t[i].Is(':') && !t[i].Is('>')) ++i;
        if (i < n && t[i].Is(':')) {
          a.adl = Joined(t, route, i);
          ++i;
        } else {
          i = route;  // not a route after all
        }
      }
      size_t local = i;
      while (i < n && !t[i].Is('@') && !t[i].Is('>')) ++i;
      a.mailbox = Joined(t, local, i);
      if (i < n && t[i].Is('@')) {
        size_t domain = ++i;
        while (i < n && !t[i].Is('>')) ++i;
        a.host = Joined(t, domain, i);
      } else {
        a.host = "";
      }
      if (i < n) ++i;                                       // '>'
      while (i < n && !t[i].Is(',') && !t[i].Is(';')) ++i;  // junk after the address
    } else if (i < n && t[i].Is('@')) {                     // addr-spec
      a.mailbox = Joined(t, start, i);
      size_t domain = ++i;
      while (i < n && !EndsMailbox(t[i])) ++i;
      a.host = Joined(t, domain, i);
      // "user@domain (Real Name)": the obsolete RFC 822 form still sent by
      // old systems; the comment is the display name (as Dovecot reads it).
      for (size_t k = start; k < i; ++k) {
        if (!t[k].comment.empty()) a.name = t[k].comment;
      }
    } else {             // a bare word: a local part without a domain
      if (i == start) {  // unreachable (every special is handled above); never loop
        ++i;
        continue;
      }
      a.mailbox = Joined(t, start, i);
      a.host = "";
    }
    out.push_back(std::move(a));
  }
  if (in_group) out.push_back(Address{});  // unterminated group
  return out;
}

std::optional<std::pair<std::string_view, std::string_view>> PlainAddress(std::string_view value) {
  // atext (RFC 5322 section 3.2.3) and ".": a run of such characters is what
  // Tokenize makes atoms and "." specials of, which Joined gives back as written.
  auto word_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
  };
  auto addr_spec =
      [&](std::string_view s) -> std::optional<std::pair<std::string_view, std::string_view>> {
    size_t at = s.find('@');
    if (at == 0 || at == std::string_view::npos || at + 1 == s.size()) return std::nullopt;
    for (size_t i = 0; i < s.size(); ++i) {
      if (i != at && !word_char(s[i])) return std::nullopt;  // a second "@" too
    }
    return std::make_pair(s.substr(0, at), s.substr(at + 1));
  };
  std::string_view v = TrimSpaces(value);
  size_t open = v.find('<');
  if (open == std::string_view::npos) return addr_spec(v);
  if (v.empty() || v.back() != '>') return std::nullopt;
  for (size_t i = 0; i < open; ++i) {  // the display name: words and spaces
    if (!word_char(v[i]) && v[i] != ' ' && v[i] != '\t') return std::nullopt;
  }
  return addr_spec(v.substr(open + 1, v.size() - open - 2));
}

Envelope ParseEnvelope(std::string_view header) {
  return EnvelopeFromFields(ScanHeader(header).fields);
}

Result<Part> Parse(std::string_view raw) {
  Parser parser(raw);
  return parser.Entity(0, raw.size(), 0, false, true);
}

}  // namespace hato::mime
