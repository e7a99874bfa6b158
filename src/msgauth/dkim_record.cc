#include "msgauth/dkim_record.h"

#include "base/strings.h"

namespace hato::msgauth {
namespace {

bool IsFws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
// VALCHAR = %x21-3A / %x3C-7E (RFC 6376 section 3.2).
bool IsValChar(char c) { return c >= 0x21 && c <= 0x7e && c != ';'; }

Error Invalid(std::string msg) { return Err(ErrorKind::kInvalid, std::move(msg)); }

const Tag* Find(const std::vector<Tag>& tags, std::string_view name) {
  for (const Tag& t : tags) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// A colon-separated list with FWS around the elements (h= in both formats).
std::vector<std::string> SplitColons(std::string_view v) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t c = v.find(':', start);
    std::string item = StripFws(v.substr(start, c == std::string_view::npos ? v.npos : c - start));
    out.push_back(std::move(item));
    if (c == std::string_view::npos) break;
    start = c + 1;
  }
  return out;
}

std::optional<uint64_t> ParseDigits(std::string_view v, size_t max_digits) {
  if (v.empty() || v.size() > max_digits) return std::nullopt;
  return ParseUint(v);
}

// A domain name as d= allows it (RFC 6376 section 3.5: domain-name, RFC 5321
// sub-domains); lower-cased. Internationalized names arrive as A-labels.
bool ValidDomain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  size_t label = 0;
  for (char c : d) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!(IsAlpha(c) || IsDigit(c) || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
  }
  return true;
}

}  // namespace

std::string StripFws(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (!IsFws(c)) out += c;
  }
  return out;
}

std::string_view AlgorithmName(SigAlgorithm a) {
  return a == SigAlgorithm::kRsaSha256 ? "rsa-sha256" : "ed25519-sha256";
}
std::string_view CanonName(Canon c) { return c == Canon::kSimple ? "simple" : "relaxed"; }

Result<std::vector<Tag>> ParseTagList(std::string_view text) {
  if (text.size() > kMaxTagListBytes) return Invalid("tag list too long");
  std::vector<Tag> tags;
  size_t i = 0;
  const size_t n = text.size();
  while (true) {
    while (i < n && IsFws(text[i])) ++i;
    if (i == n) break;  // empty list, or a trailing ';'
    // tag-name = ALPHA *ALNUMPUNC
    if (!IsAlpha(text[i])) return Invalid("bad tag name");
    size_t name_begin = i;
    while (i < n && (IsAlpha(text[i]) || IsDigit(text[i]) || text[i] == '_')) ++i;
    std::string name(text.substr(name_begin, i - name_begin));
    while (i < n && IsFws(text[i])) ++i;
    if (i == n || text[i] != '=') return Invalid("missing '=' after tag " + name);
    ++i;
    Tag tag;
    tag.begin = i;
    size_t end = text.find(';', i);
    if (end == std::string_view::npos) end = n;
    tag.end = end;
    // tag-value = [ tval *( 1*(WSP / FWS) tval ) ], surrounded by [FWS].
    size_t vb = i, ve = end;
    while (vb < ve && IsFws(text[vb])) ++vb;
    while (ve > vb && IsFws(text[ve - 1])) --ve;
    for (size_t k = vb; k < ve; ++k) {
      if (!IsValChar(text[k]) && !IsFws(text[k])) return Invalid("bad character in tag " + name);
    }
    tag.value = std::string(text.substr(vb, ve - vb));
    if (Find(tags, name) != nullptr) return Invalid("duplicate tag " + name);
    if (tags.size() >= kMaxTags) return Invalid("too many tags");
    tag.name = std::move(name);
    tags.push_back(std::move(tag));
    i = end;
    if (i == n) break;
    ++i;  // ';'
  }
  return tags;
}

Result<DkimSignature> ParseSignature(std::string_view value) {
  auto parsed = ParseTagList(value);
  if (!parsed) return parsed.error();
  const auto& tags = *parsed;
  // RFC 6376 section 6.1.1: v, a, b, bh, d, h, s are required.
  for (const char* req : {"v", "a", "b", "bh", "d", "h", "s"}) {
    if (Find(tags, req) == nullptr) return Invalid(std::string("missing tag ") + req + "=");
  }
  DkimSignature sig;
  if (Find(tags, "v")->value != "1")
    return Invalid("unsupported version v=" + Find(tags, "v")->value);

  std::string a = AsciiLower(Find(tags, "a")->value);
  if (a == "rsa-sha256") {
    sig.algorithm = SigAlgorithm::kRsaSha256;
  } else if (a == "ed25519-sha256") {
    sig.algorithm = SigAlgorithm::kEd25519Sha256;
  } else if (a == "rsa-sha1") {
    return Invalid("rsa-sha1 is not accepted (RFC 8301 section 3.1)");
  } else {
    return Invalid("unknown algorithm a=" + a);
  }

  const Tag* b = Find(tags, "b");
  sig.b_text = StripFws(b->value);
  auto bdec = Base64Decode(sig.b_text);
  if (!bdec || bdec->empty()) return Invalid("b= is not base64");
  sig.signature = std::move(*bdec);
  sig.b_begin = b->begin;
  sig.b_end = b->end;
  auto bh = Base64Decode(StripFws(Find(tags, "bh")->value));
  if (!bh || bh->empty()) return Invalid("bh= is not base64");
  sig.body_hash = std::move(*bh);

  if (const Tag* c = Find(tags, "c")) {
    std::string v = AsciiLower(c->value);
    size_t slash = v.find('/');
    std::string hc = v.substr(0, slash);
    std::string bc = slash == std::string::npos ? "simple" : v.substr(slash + 1);
    auto canon = [](const std::string& s) -> std::optional<Canon> {
      if (s == "simple") return Canon::kSimple;
      if (s == "relaxed") return Canon::kRelaxed;
      return std::nullopt;
    };
    auto h = canon(hc), bo = canon(bc);
    if (!h || !bo) return Invalid("unknown canonicalization c=" + c->value);
    sig.header_canon = *h;
    sig.body_canon = *bo;
  }

  sig.domain = AsciiLower(Find(tags, "d")->value);
  if (!ValidDomain(sig.domain)) return Invalid("bad domain d=");
  sig.selector = AsciiLower(Find(tags, "s")->value);
  // The selector is one or more labels prefixed to "._domainkey." (section 3.1).
  if (!ValidDomain(sig.selector)) return Invalid("bad selector s=");

  sig.headers = SplitColons(Find(tags, "h")->value);
  if (sig.headers.size() > kMaxSignedHeaders) return Invalid("too many names in h=");
  bool has_from = false;
  for (const auto& h : sig.headers) {
    if (h.empty()) return Invalid("empty header name in h=");
    if (EqualsIgnoreCase(h, "from")) has_from = true;
  }
  if (!has_from) return Invalid("h= does not include From (RFC 6376 section 5.4)");

  if (const Tag* i = Find(tags, "i")) {
    // The domain of i= must be d= or a subdomain of it (section 3.5).
    size_t at = i->value.rfind('@');
    if (at == std::string::npos) return Invalid("i= has no '@'");
    std::string idom = AsciiLower(i->value.substr(at + 1));
    if (idom != sig.domain &&
        !(idom.size() > sig.domain.size() && idom.ends_with("." + sig.domain))) {
      return Invalid("i= domain is not d= or a subdomain of it");
    }
    sig.identity = i->value;
  } else {
    sig.identity = "@" + sig.domain;
  }
  // l=, t=, x=: 1*76DIGIT; bigger than uint64 is refused.
  if (const Tag* l = Find(tags, "l")) {
    sig.body_length = ParseDigits(l->value, 20);
    if (!sig.body_length) return Invalid("bad l=");
  }
  if (const Tag* q = Find(tags, "q")) {
    bool dns = false;
    for (const auto& m : SplitColons(q->value)) {
      if (EqualsIgnoreCase(m, "dns/txt")) dns = true;
    }
    if (!dns) return Invalid("q= does not offer dns/txt");
  }
  if (const Tag* t = Find(tags, "t")) {
    sig.timestamp = ParseDigits(t->value, 20);
    if (!sig.timestamp) return Invalid("bad t=");
  }
  if (const Tag* x = Find(tags, "x")) {
    sig.expiration = ParseDigits(x->value, 20);
    if (!sig.expiration) return Invalid("bad x=");
    if (sig.timestamp && *sig.expiration < *sig.timestamp) return Invalid("x= is before t=");
  }
  return sig;
}

Result<DkimKey> ParseKeyRecord(std::string_view text) {
  auto parsed = ParseTagList(text);
  if (!parsed) return parsed.error();
  const auto& tags = *parsed;
  DkimKey key;
  if (const Tag* v = Find(tags, "v")) {
    if (&tags.front() != v) return Invalid("v= is not the first tag of the key record");
    if (v->value != "DKIM1") return Invalid("key record v= is not DKIM1");
  }
  if (const Tag* h = Find(tags, "h")) {
    bool sha256 = false;
    for (const auto& alg : SplitColons(h->value)) {
      if (EqualsIgnoreCase(alg, "sha256")) sha256 = true;
    }
    if (!sha256) return Invalid("key record h= does not allow sha256");
  }
  if (const Tag* k = Find(tags, "k")) {
    if (EqualsIgnoreCase(k->value, "rsa")) {
      key.type = KeyType::kRsa;
    } else if (EqualsIgnoreCase(k->value, "ed25519")) {
      key.type = KeyType::kEd25519;
    } else {
      return Invalid("unknown key type k=" + k->value);
    }
  }
  if (const Tag* s = Find(tags, "s")) {
    bool ok = false;
    for (const auto& st : SplitColons(s->value)) {
      if (st == "*" || EqualsIgnoreCase(st, "email")) ok = true;
    }
    if (!ok) return Invalid("key record is not for email (s=)");
  }
  if (const Tag* t = Find(tags, "t")) {
    for (const auto& flag : SplitColons(t->value)) {
      if (flag == "y") key.testing = true;
      if (flag == "s") key.strict = true;
    }
  }
  const Tag* p = Find(tags, "p");
  if (p == nullptr) return Invalid("key record has no p=");
  std::string p64 = StripFws(p->value);
  if (p64.empty()) {
    key.revoked = true;
    return key;
  }
  auto decoded = Base64Decode(p64);
  if (!decoded || decoded->empty()) return Invalid("p= is not base64");
  key.public_key = std::move(*decoded);
  if (key.type == KeyType::kEd25519 && key.public_key.size() != 32) {
    return Invalid("ed25519 key is not 32 bytes (RFC 8463 section 4)");
  }
  return key;
}

std::string CanonHeader(Canon c, std::string_view field) {
  std::string out;
  if (c == Canon::kSimple) {
    out.assign(field);
    if (!out.ends_with("\r\n")) out += "\r\n";
    return out;
  }
  // Relaxed (section 3.4.2): lower-case name, unfold, compress WSP, no WSP
  // at the end of the value or around the colon.
  size_t colon = field.find(':');
  std::string_view name = field.substr(0, colon);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  out = AsciiLower(name);
  out += ':';
  if (colon == std::string_view::npos) return out + "\r\n";
  bool pending_space = false;
  bool started = false;
  for (char ch : field.substr(colon + 1)) {
    if (ch == '\r' || ch == '\n') continue;
    if (ch == ' ' || ch == '\t') {
      pending_space = true;
      continue;
    }
    if (pending_space && started) out += ' ';
    pending_space = false;
    started = true;
    out += ch;
  }
  out += "\r\n";
  return out;
}

std::string CanonBody(Canon c, std::string_view body) {
  std::string out;
  out.reserve(body.size() + 2);
  size_t pos = 0;
  size_t kept = 0;  // length of `out` up to the last non-empty line
  while (pos < body.size()) {
    size_t eol = body.find("\r\n", pos);
    std::string_view line = body.substr(pos, eol == std::string_view::npos ? body.npos : eol - pos);
    pos = eol == std::string_view::npos ? body.size() : eol + 2;
    const size_t line_start = out.size();
    if (c == Canon::kRelaxed) {
      // Section 3.4.4: WSP runs become one SP; WSP at the end of a line goes.
      bool space = false;
      for (char ch : line) {
        if (ch == ' ' || ch == '\t') {
          space = true;
          continue;
        }
        if (space) out += ' ';
        space = false;
        out += ch;
      }
    } else {
      out += line;
    }
    bool empty = out.size() == line_start;
    out += "\r\n";
    if (!empty) kept = out.size();
  }
  out.resize(kept);  // trailing empty lines are ignored (3.4.3, 3.4.4)
  if (c == Canon::kSimple && out.empty()) out = "\r\n";  // 3.4.3: an empty body is CRLF
  return out;
}

}  // namespace hato::msgauth
