#include "transfer/imap_response.h"

#include "base/strings.h"

namespace hato::transfer {

void ImapResponseReader::Feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (1u << 16)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<ImapResponse>> ImapResponseReader::Next() {
  if (failed_) return Err(ErrorKind::kInvalid, "IMAP response reader failed earlier");
  while (true) {
    if (in_literal_) {
      size_t n = std::min(literal_left_, buf_.size() - pos_);
      cur_.literals.back().append(buf_, pos_, n);
      pos_ += n;
      literal_left_ -= n;
      if (literal_left_ > 0) return std::optional<ImapResponse>();
      in_literal_ = false;
      continue;
    }
    size_t nl = buf_.find('\n', pos_);
    if (nl == std::string::npos) {
      if (buf_.size() - pos_ + cur_.text.size() > kMaxResponseLine) {
        failed_ = true;
        return Err(ErrorKind::kInvalid, "IMAP response line too long");
      }
      return std::optional<ImapResponse>();
    }
    std::string_view line(buf_.data() + pos_, nl - pos_);
    pos_ = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (cur_.text.size() + line.size() > kMaxResponseLine) {
      failed_ = true;
      return Err(ErrorKind::kInvalid, "IMAP response line too long");
    }
    // A literal announced at the end of the line: "{123}".
    if (!line.empty() && line.back() == '}') {
      size_t open = line.rfind('{');
      if (open != std::string_view::npos) {
        auto n = ParseUint(line.substr(open + 1, line.size() - open - 2));
        if (n) {
          if (*n > kMaxLiteral) {
            failed_ = true;
            return Err(ErrorKind::kInvalid,
                       "IMAP literal of " + std::to_string(*n) + " bytes is over the limit");
          }
          cur_.text.append(line.substr(0, open));
          cur_.text += "{}";
          cur_.literals.emplace_back();
          literal_left_ = static_cast<size_t>(*n);
          in_literal_ = true;
          continue;
        }
      }
    }
    cur_.text.append(line);
    ImapResponse done = std::move(cur_);
    cur_ = ImapResponse{};
    return std::optional<ImapResponse>(std::move(done));
  }
}

namespace {

// A tiny tokenizer over a response text: atoms, "quoted", (lists), {} literals.
class Scanner {
 public:
  Scanner(std::string_view s, const std::vector<std::string>& literals)
      : s_(s), literals_(literals) {}
  void Skip() {
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
  }
  bool Eat(char c) {
    Skip();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  // An atom, quoted string or literal; nullopt at ')' or the end.
  std::optional<std::string> String() {
    Skip();
    if (i_ >= s_.size() || s_[i_] == ')' || s_[i_] == '(') return std::nullopt;
    if (s_[i_] == '"') {
      std::string out;
      for (++i_; i_ < s_.size() && s_[i_] != '"'; ++i_) {
        if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
        out += s_[i_];
      }
      if (i_ < s_.size()) ++i_;
      return out;
    }
    if (s_.substr(i_, 2) == "{}") {
      i_ += 2;
      if (next_literal_ < literals_.size()) return literals_[next_literal_++];
      return std::string();
    }
    size_t start = i_;
    int depth = 0;  // BODY[...] holds spaces only in sections we do not ask for
    while (i_ < s_.size() && (depth > 0 || (s_[i_] != ' ' && s_[i_] != ')' && s_[i_] != '('))) {
      if (s_[i_] == '[') ++depth;
      if (s_[i_] == ']' && depth > 0) --depth;
      ++i_;
    }
    return std::string(s_.substr(start, i_ - start));
  }
  // A parenthesised list of strings (nested lists flattened away).
  std::optional<std::vector<std::string>> List() {
    if (!Eat('(')) return std::nullopt;
    std::vector<std::string> out;
    int guard = 0;
    while (!Eat(')')) {
      if (++guard > 10000 || i_ >= s_.size()) return std::nullopt;
      if (Eat('(')) {
        --i_;
        if (!List()) return std::nullopt;
        continue;
      }
      auto v = String();
      if (!v) return std::nullopt;
      out.push_back(std::move(*v));
    }
    return out;
  }
  bool AtEnd() {
    Skip();
    return i_ >= s_.size();
  }

 private:
  std::string_view s_;
  const std::vector<std::string>& literals_;
  size_t i_ = 0;
  size_t next_literal_ = 0;
};

}  // namespace

std::optional<ListEntry> ParseListResponse(const ImapResponse& r) {
  Scanner sc(r.text, r.literals);
  if (!sc.Eat('*')) return std::nullopt;
  auto kw = sc.String();
  if (!kw || !EqualsIgnoreCase(*kw, "LIST")) return std::nullopt;
  auto attrs = sc.List();
  if (!attrs) return std::nullopt;
  ListEntry e;
  for (const auto& a : *attrs) {
    if (EqualsIgnoreCase(a, "\\Noselect") || EqualsIgnoreCase(a, "\\NonExistent")) {
      e.noselect = true;
    }
  }
  auto sep = sc.String();
  if (!sep) return std::nullopt;
  if (sep->size() == 1) e.separator = (*sep)[0];
  auto name = sc.String();
  if (!name || name->empty()) return std::nullopt;
  e.name = std::move(*name);
  return e;
}

std::optional<FetchItem> ParseFetchResponse(const ImapResponse& r) {
  Scanner sc(r.text, r.literals);
  if (!sc.Eat('*')) return std::nullopt;
  auto seq = sc.String();
  auto kw = sc.String();
  if (!seq || !kw || !ParseUint(*seq) || !EqualsIgnoreCase(*kw, "FETCH")) return std::nullopt;
  if (!sc.Eat('(')) return std::nullopt;
  FetchItem item;
  for (int guard = 0; guard < 64 && !sc.Eat(')'); ++guard) {
    auto name = sc.String();
    if (!name) return std::nullopt;
    std::string upper = AsciiUpper(*name);
    if (upper == "UID") {
      auto v = sc.String();
      auto n = v ? ParseUint(*v) : std::nullopt;
      if (!n || *n == 0 || *n > 0xffffffffu) return std::nullopt;
      item.uid = static_cast<uint32_t>(*n);
    } else if (upper == "FLAGS") {
      auto flags = sc.List();
      if (!flags) return std::nullopt;
      item.flags = std::move(*flags);
    } else if (upper == "INTERNALDATE") {
      auto v = sc.String();
      if (!v) return std::nullopt;
      item.internal_date = std::move(*v);
    } else if (upper == "BODY[]" || upper == "RFC822") {
      auto v = sc.String();
      if (!v) return std::nullopt;
      item.body = std::move(*v);
    } else {
      // Something we did not ask for (MODSEQ, ...): skip its value.
      if (!sc.List() && !sc.String()) return std::nullopt;
    }
  }
  return item;
}

Result<std::string> Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return Err(ErrorKind::kInvalid, "CR, LF or NUL cannot be sent as a quoted string");
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace hato::transfer
