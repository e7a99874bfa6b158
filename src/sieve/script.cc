// RFC 5228 section 8 grammar: a recursive-descent parser over a small lexer.
#include "sieve/script.h"

#include <optional>

#include "base/strings.h"

namespace hato::sieve {
namespace {

struct Token {
  enum class Kind { kEnd, kIdent, kTag, kNumber, kString, kPunct };
  Kind kind = Kind::kEnd;
  std::string text;  // identifier/tag (lower-cased), string value, or the punctuation char
  uint64_t number = 0;
  int line = 1;
};

class Parser {
 public:
  Parser(std::string_view s, const Limits& l) : s_(s), limits_(l) {}

  Result<Script> Run() {
    if (s_.size() > limits_.max_script_bytes) {
      return Err(ErrorKind::kTooLarge,
                 "script larger than " + std::to_string(limits_.max_script_bytes) + " bytes");
    }
    Script script;
    if (!Next()) return error_;
    while (tok_.kind != Token::Kind::kEnd) {
      auto c = ParseCommand(0);
      if (!c) return c.error();
      script.commands.push_back(std::move(*c));
    }
    return script;
  }

 private:
  Error Fail(int line, const std::string& what, ErrorKind kind = ErrorKind::kInvalid) {
    return Err(kind, "line " + std::to_string(line) + ": " + what);
  }

  bool Count() {
    if (++nodes_ > limits_.max_nodes) {
      error_ = Fail(tok_.line,
                    "script has more than " + std::to_string(limits_.max_nodes) +
                        " commands, tests and arguments",
                    ErrorKind::kTooLarge);
      return false;
    }
    return true;
  }

  // Skips white space and comments (RFC 5228 section 2.3).
  bool SkipSpace() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == '/' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '*') {
        size_t end = s_.find("*/", pos_ + 2);
        if (end == std::string_view::npos) {
          error_ = Fail(line_, "unterminated comment");
          return false;
        }
        for (size_t i = pos_; i < end; ++i) line_ += s_[i] == '\n';
        pos_ = end + 2;
      } else {
        break;
      }
    }
    return true;
  }

  static bool IdentStart(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  static bool IdentChar(char c) { return IdentStart(c) || (c >= '0' && c <= '9'); }

  // Reads the next token into tok_; false with error_ set on a lexical error.
  bool Next() {
    if (!SkipSpace()) return false;
    tok_ = Token{};
    tok_.line = line_;
    if (pos_ >= s_.size()) return true;
    char c = s_[pos_];
    if (IdentStart(c) || c == ':') {
      bool tag = c == ':';
      size_t start = pos_ + (tag ? 1 : 0);
      size_t i = start;
      if (i >= s_.size() || !IdentStart(s_[i])) {
        error_ = Fail(line_, "bad tag");
        return false;
      }
      while (i < s_.size() && IdentChar(s_[i])) ++i;
      std::string word = AsciiLower(s_.substr(start, i - start));
      pos_ = i;
      if (!tag && word == "text" && pos_ < s_.size() && s_[pos_] == ':') {
        ++pos_;
        return MultiLine();
      }
      tok_.kind = tag ? Token::Kind::kTag : Token::Kind::kIdent;
      tok_.text = std::move(word);
      return true;
    }
    if (c >= '0' && c <= '9') {
      uint64_t n = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        if (n > (UINT64_MAX - 9) / 10) {
          error_ = Fail(line_, "number too large");
          return false;
        }
        n = n * 10 + static_cast<uint64_t>(s_[pos_++] - '0');
      }
      uint64_t mul = 1;
      if (pos_ < s_.size()) {
        char q = static_cast<char>(s_[pos_] | 0x20);
        if (q == 'k') mul = 1024;
        if (q == 'm') mul = 1024 * 1024;
        if (q == 'g') mul = 1024ull * 1024 * 1024;
        if (mul != 1) ++pos_;
      }
      if (n > UINT64_MAX / mul) {
        error_ = Fail(line_, "number too large");
        return false;
      }
      tok_.kind = Token::Kind::kNumber;
      tok_.number = n * mul;
      return true;
    }
    if (c == '"') return Quoted();
    if (c == ';' || c == ',' || c == '(' || c == ')' || c == '[' || c == ']' || c == '{' ||
        c == '}') {
      tok_.kind = Token::Kind::kPunct;
      tok_.text = std::string(1, c);
      ++pos_;
      return true;
    }
    error_ = Fail(line_, "unexpected character");
    return false;
  }

  // quoted-string (RFC 5228 section 2.4.2): "\" quotes the next character.
  bool Quoted() {
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      if (s_[pos_] == '\n') ++line_;
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) {
      error_ = Fail(tok_.line, "unterminated string");
      return false;
    }
    ++pos_;
    tok_.kind = Token::Kind::kString;
    tok_.text = std::move(out);
    return true;
  }

  // multi-line (RFC 5228 section 2.4.2): "text:" to a line holding only ".",
  // with ".." at a line start standing for ".".
  bool MultiLine() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '#') {
      while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '\r') ++pos_;
    if (pos_ >= s_.size() || s_[pos_] != '\n') {
      error_ = Fail(line_, "text: must end its line");
      return false;
    }
    ++pos_;
    ++line_;
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) {
        error_ = Fail(tok_.line, "unterminated text: block");
        return false;
      }
      size_t eol = s_.find('\n', pos_);
      std::string_view l = s_.substr(pos_, eol == std::string_view::npos ? s_.npos : eol - pos_);
      pos_ = eol == std::string_view::npos ? s_.size() : eol + 1;
      ++line_;
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      if (l == ".") break;
      if (l.starts_with("..")) l.remove_prefix(1);
      out += l;
      out += "\r\n";
    }
    tok_.kind = Token::Kind::kString;
    tok_.text = std::move(out);
    return true;
  }

  bool IsPunct(char c) const { return tok_.kind == Token::Kind::kPunct && tok_.text[0] == c; }

  Result<Argument> ParseStringList() {
    Argument a;
    a.kind = Argument::Kind::kStrings;
    if (tok_.kind == Token::Kind::kString) {
      a.strings.push_back(std::move(tok_.text));
      if (!Next()) return error_;
      return a;
    }
    a.list = true;
    if (!Next()) return error_;  // "["
    while (true) {
      if (tok_.kind != Token::Kind::kString) return Fail(tok_.line, "string expected in list");
      if (!Count()) return error_;
      a.strings.push_back(std::move(tok_.text));
      if (!Next()) return error_;
      if (IsPunct(']')) break;
      if (!IsPunct(',')) return Fail(tok_.line, "\",\" or \"]\" expected");
      if (!Next()) return error_;
    }
    if (!Next()) return error_;
    return a;
  }

  // arguments = *argument [ test / test-list ]
  Status ParseArguments(std::vector<Argument>& args, std::vector<Test>& tests, size_t depth,
                        bool allow_tests) {
    while (true) {
      if (tok_.kind == Token::Kind::kTag) {
        if (!Count()) return error_;
        Argument a;
        a.kind = Argument::Kind::kTag;
        a.tag = std::move(tok_.text);
        args.push_back(std::move(a));
        if (!Next()) return error_;
      } else if (tok_.kind == Token::Kind::kNumber) {
        if (!Count()) return error_;
        Argument a;
        a.kind = Argument::Kind::kNumber;
        a.number = tok_.number;
        args.push_back(std::move(a));
        if (!Next()) return error_;
      } else if (tok_.kind == Token::Kind::kString || IsPunct('[')) {
        if (!Count()) return error_;
        auto a = ParseStringList();
        if (!a) return a.error();
        args.push_back(std::move(*a));
      } else {
        break;
      }
    }
    if (!allow_tests) return Ok();
    if (tok_.kind == Token::Kind::kIdent) {
      auto t = ParseTest(depth + 1);
      if (!t) return t.error();
      tests.push_back(std::move(*t));
    } else if (IsPunct('(')) {
      if (!Next()) return error_;
      while (true) {
        auto t = ParseTest(depth + 1);
        if (!t) return t.error();
        tests.push_back(std::move(*t));
        if (IsPunct(')')) break;
        if (!IsPunct(',')) return Fail(tok_.line, "\",\" or \")\" expected");
        if (!Next()) return error_;
      }
      if (!Next()) return error_;
    }
    return Ok();
  }

  Result<Test> ParseTest(size_t depth) {
    if (depth > limits_.max_nesting) {
      return Fail(tok_.line, "tests nested too deeply", ErrorKind::kTooLarge);
    }
    if (tok_.kind != Token::Kind::kIdent) return Fail(tok_.line, "test expected");
    if (!Count()) return error_;
    Test t;
    t.name = std::move(tok_.text);
    t.line = tok_.line;
    if (!Next()) return error_;
    if (auto st = ParseArguments(t.args, t.tests, depth, true); !st) return st.error();
    return t;
  }

  Result<Command> ParseCommand(size_t depth) {
    if (depth > limits_.max_nesting) {
      return Fail(tok_.line, "blocks nested too deeply", ErrorKind::kTooLarge);
    }
    if (tok_.kind != Token::Kind::kIdent) return Fail(tok_.line, "command expected");
    if (!Count()) return error_;
    Command c;
    c.name = std::move(tok_.text);
    c.line = tok_.line;
    if (!Next()) return error_;
    if (auto st = ParseArguments(c.args, c.tests, depth, true); !st) return st.error();
    if (IsPunct(';')) {
      if (!Next()) return error_;
      return c;
    }
    if (!IsPunct('{')) return Fail(tok_.line, "\";\" or \"{\" expected");
    if (!Next()) return error_;
    c.has_block = true;
    while (!IsPunct('}')) {
      if (tok_.kind == Token::Kind::kEnd) return Fail(tok_.line, "missing \"}\"");
      auto inner = ParseCommand(depth + 1);
      if (!inner) return inner.error();
      c.block.push_back(std::move(*inner));
    }
    if (!Next()) return error_;
    return c;
  }

  std::string_view s_;
  const Limits& limits_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t nodes_ = 0;
  Token tok_;
  Error error_;
};

}  // namespace

Result<Script> Parse(std::string_view text, const Limits& limits) {
  Parser p(text, limits);
  return p.Run();
}

}  // namespace hato::sieve
