// The IMAP command grammar (RFC 3501 section 9, RFC 9051 section 9, and the
// extensions listed in imap/proto/command.h): a recursive-descent parser over
// one framed command. Each rule cites the ABNF it implements.
//
// SECURITY: this is the first code to see untrusted bytes after the framing.
// Every repetition is bounded by a named limit in Limits, recursion by
// Limits::max_depth, and literal lengths are checked before any allocation.
#include <algorithm>
#include <cstring>

#include "base/strings.h"
#include "imap/proto/command.h"
#include "imap/proto/object_ids.h"
#include "imap/proto/response.h"
#include "imap/proto/utf7.h"

namespace hato::imap {
namespace {

#define TRY(expr)              \
  do {                         \
    if (!(expr)) return false; \
  } while (0)

struct VerbEntry {
  const char* name;
  Verb verb;
  bool uid_ok;  // may follow "UID" (RFC 3501 section 6.4.8, RFC 4315, RFC 6851)
};

constexpr VerbEntry kVerbs[] = {
    {"CAPABILITY", Verb::kCapability, false},
    {"NOOP", Verb::kNoop, false},
    {"LOGOUT", Verb::kLogout, false},
    {"STARTTLS", Verb::kStartTls, false},
    {"AUTHENTICATE", Verb::kAuthenticate, false},
    {"LOGIN", Verb::kLogin, false},
    {"SELECT", Verb::kSelect, false},
    {"EXAMINE", Verb::kExamine, false},
    {"CREATE", Verb::kCreate, false},
    {"DELETE", Verb::kDelete, false},
    {"RENAME", Verb::kRename, false},
    {"SUBSCRIBE", Verb::kSubscribe, false},
    {"UNSUBSCRIBE", Verb::kUnsubscribe, false},
    {"LIST", Verb::kList, false},
    {"LSUB", Verb::kLsub, false},
    {"STATUS", Verb::kStatus, false},
    {"APPEND", Verb::kAppend, false},
    {"IDLE", Verb::kIdle, false},
    {"NAMESPACE", Verb::kNamespace, false},
    {"ID", Verb::kId, false},
    {"ENABLE", Verb::kEnable, false},
    {"GETQUOTA", Verb::kGetQuota, false},
    {"GETQUOTAROOT", Verb::kGetQuotaRoot, false},
    {"SETQUOTA", Verb::kSetQuota, false},
    {"COMPRESS", Verb::kCompress, false},
    {"GETMETADATA", Verb::kGetMetadata, false},
    {"SETMETADATA", Verb::kSetMetadata, false},
    {"RESETKEY", Verb::kResetKey, false},
    {"GENURLAUTH", Verb::kGenUrlAuth, false},
    {"URLFETCH", Verb::kUrlFetch, false},
    {"NOTIFY", Verb::kNotify, false},
    {"CHECK", Verb::kCheck, false},
    {"CLOSE", Verb::kClose, false},
    {"UNSELECT", Verb::kUnselect, false},
    {"CANCELUPDATE", Verb::kCancelUpdate, false},
    {"EXPUNGE", Verb::kExpunge, true},
    {"SEARCH", Verb::kSearch, true},
    {"FETCH", Verb::kFetch, true},
    {"STORE", Verb::kStore, true},
    {"COPY", Verb::kCopy, true},
    {"MOVE", Verb::kMove, true},
    {"SORT", Verb::kSort, true},
    {"THREAD", Verb::kThread, true},
};

struct SortEntry {
  const char* name;
  SortField field;
};
constexpr SortEntry kSortFields[] = {
    {"ARRIVAL", SortField::kArrival},
    {"CC", SortField::kCc},
    {"DATE", SortField::kDate},
    {"FROM", SortField::kFrom},
    {"SIZE", SortField::kSize},
    {"SUBJECT", SortField::kSubject},
    {"TO", SortField::kTo},
    {"DISPLAYFROM", SortField::kDisplayFrom},
    {"DISPLAYTO", SortField::kDisplayTo},
};

struct StatusEntry {
  const char* name;
  StatusItem item;
};
constexpr StatusEntry kStatusItems[] = {
    {"MESSAGES", StatusItem::kMessages},   {"RECENT", StatusItem::kRecent},
    {"UIDNEXT", StatusItem::kUidNext},     {"UIDVALIDITY", StatusItem::kUidValidity},
    {"UNSEEN", StatusItem::kUnseen},       {"HIGHESTMODSEQ", StatusItem::kHighestModSeq},
    {"SIZE", StatusItem::kSize},           {"APPENDLIMIT", StatusItem::kAppendLimit},
    {"DELETED", StatusItem::kDeleted},     {"DELETED-STORAGE", StatusItem::kDeletedStorage},
    {"MAILBOXID", StatusItem::kMailboxId},
};

// Search keys without arguments (RFC 3501 section 6.4.4).
struct SearchWord {
  const char* name;
  SearchOp op;
};
constexpr SearchWord kSearchFlags[] = {
    {"ALL", SearchOp::kAll},
    {"ANSWERED", SearchOp::kAnswered},
    {"DELETED", SearchOp::kDeleted},
    {"DRAFT", SearchOp::kDraft},
    {"FLAGGED", SearchOp::kFlagged},
    {"NEW", SearchOp::kNew},
    {"OLD", SearchOp::kOld},
    {"RECENT", SearchOp::kRecent},
    {"SEEN", SearchOp::kSeen},
    {"UNANSWERED", SearchOp::kUnanswered},
    {"UNDELETED", SearchOp::kUndeleted},
    {"UNDRAFT", SearchOp::kUndraft},
    {"UNFLAGGED", SearchOp::kUnflagged},
    {"UNSEEN", SearchOp::kUnseen},
    {"SAVEDATESUPPORTED", SearchOp::kSaveDateSupported},  // RFC 8514 section 4.2
};
constexpr SearchWord kSearchStrings[] = {
    {"BCC", SearchOp::kBcc},   {"BODY", SearchOp::kBody},       {"CC", SearchOp::kCc},
    {"FROM", SearchOp::kFrom}, {"SUBJECT", SearchOp::kSubject}, {"TEXT", SearchOp::kText},
    {"TO", SearchOp::kTo},
};
constexpr SearchWord kSearchDates[] = {
    {"BEFORE", SearchOp::kBefore},
    {"ON", SearchOp::kOn},
    {"SINCE", SearchOp::kSince},
    {"SENTBEFORE", SearchOp::kSentBefore},
    {"SENTON", SearchOp::kSentOn},
    {"SENTSINCE", SearchOp::kSentSince},
    // RFC 8514 section 4.2.
    {"SAVEDBEFORE", SearchOp::kSavedBefore},
    {"SAVEDON", SearchOp::kSavedOn},
    {"SAVEDSINCE", SearchOp::kSavedSince},
};

// RFC 3501 section 9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
// quoted-specials / resp-specials; ATOM-CHAR = <any CHAR except atom-specials>.
bool IsAtomChar(unsigned char c) {
  if (c <= 0x20 || c >= 0x7f) return false;
  return std::strchr("(){%*\"\\]", c) == nullptr;
}
// ASTRING-CHAR = ATOM-CHAR / resp-specials
bool IsAstringChar(unsigned char c) { return IsAtomChar(c) || c == ']'; }
// list-char = ATOM-CHAR / list-wildcards / resp-specials
bool IsListChar(unsigned char c) { return IsAstringChar(c) || c == '%' || c == '*'; }
bool IsDigit(int c) { return c >= '0' && c <= '9'; }

// System flags in their canonical spelling (RFC 3501 section 2.3.2); flags are
// case-insensitive, so "\seen" is returned as "\Seen".
std::string CanonicalFlag(std::string_view f) {
  static constexpr const char* kSystem[] = {"\\Answered", "\\Flagged", "\\Deleted",
                                            "\\Seen",     "\\Draft",   "\\Recent"};
  for (const char* s : kSystem) {
    if (EqualsIgnoreCase(f, s)) return s;
  }
  return std::string(f);
}

class Parser {
 public:
  Parser(std::string_view in, const Limits& limits) : in_(in), lim_(limits) {}

  // Parses the whole input into `cmd`; on failure error() says why.
  bool Run(Command& cmd);
  Error error() const { return err_.value_or(Err(ErrorKind::kInvalid, "syntax error")); }
  // The failure came from running out of input, not from bad input (for a prefix).
  bool incomplete() const { return hit_end_; }

 private:
  // ---- Low-level input ----
  int Peek() {
    if (pos_ >= in_.size()) {
      hit_end_ = true;
      return -1;
    }
    return static_cast<unsigned char>(in_[pos_]);
  }
  int PeekAt(size_t off) {
    if (pos_ + off >= in_.size()) {
      hit_end_ = true;
      return -1;
    }
    return static_cast<unsigned char>(in_[pos_ + off]);
  }
  bool Fail(std::string msg, ErrorKind kind = ErrorKind::kInvalid) {
    if (!err_) err_ = Err(kind, std::move(msg));
    return false;
  }
  bool Limit(const char* what) {
    return Fail(std::string("too many ") + what, ErrorKind::kTooLarge);
  }
  bool Char(char c) {
    if (Peek() != static_cast<unsigned char>(c)) {
      return Fail(std::string("expected '") + c + "'");
    }
    ++pos_;
    return true;
  }
  bool Sp() { return Char(' '); }
  bool At(char c) { return Peek() == static_cast<unsigned char>(c); }
  bool AtEnd() { return Peek() == -1; }
  // Consumes `c` if it is next.
  bool Take(char c) {
    if (!At(c)) return false;
    ++pos_;
    return true;
  }
  // The next run of chars for which pred holds (possibly empty).
  template <typename Pred>
  std::string_view Scan(Pred pred) {
    size_t start = pos_;
    while (pos_ < in_.size() && pred(static_cast<unsigned char>(in_[pos_]))) ++pos_;
    if (pos_ == in_.size()) hit_end_ = true;
    return in_.substr(start, pos_ - start);
  }
  // atom = 1*ATOM-CHAR
  bool Atom(std::string_view& out, const char* what) {
    out = Scan(IsAtomChar);
    if (out.empty()) return Fail(std::string("expected ") + what);
    return true;
  }
  // A keyword (atom), upper-cased.
  bool Keyword(std::string& out, const char* what) {
    std::string_view a;
    TRY(Atom(a, what));
    out = AsciiUpper(a);
    return true;
  }
  // Peeks whether the next atom equals `word` (case-insensitive); consumes it if so.
  bool TakeWord(std::string_view word) {
    size_t save = pos_;
    std::string_view a = Scan(IsAtomChar);
    if (EqualsIgnoreCase(a, word)) return true;
    pos_ = save;
    return false;
  }
  // Counts one item of a list against Limits::max_list_items.
  bool Item(size_t& n) { return ++n <= lim_.max_list_items || Limit("list items"); }
  bool Depth(size_t depth) { return depth <= lim_.max_depth || Limit("nested parentheses"); }

  // ---- Numbers (RFC 3501 section 9 number, nz-number; RFC 7162 mod-sequence-value) ----
  bool Number64(uint64_t& out, uint64_t max, const char* what) {
    std::string_view d = Scan([](unsigned char c) { return IsDigit(c); });
    auto v = ParseUint(d);
    if (!v || *v > max) return Fail(std::string("bad ") + what);
    out = *v;
    return true;
  }
  bool Number(uint32_t& out, const char* what) {
    uint64_t v;
    TRY(Number64(v, UINT32_MAX, what));
    out = static_cast<uint32_t>(v);
    return true;
  }
  bool NzNumber(uint32_t& out, const char* what) {
    TRY(Number(out, what));
    return out != 0 || Fail(std::string("bad ") + what + ": zero");
  }
  // mod-sequence-value = 1*DIGIT, positive 63-bit (RFC 7162 section 7); valzer allows 0.
  bool ModSeq(uint64_t& out, bool zero_ok) {
    TRY(Number64(out, INT64_MAX, "mod-sequence value"));
    return zero_ok || out != 0 || Fail("bad mod-sequence value: zero");
  }

  // ---- Strings (RFC 3501 section 4.3 and 9: string, quoted, literal, astring, nstring) ----
  bool Quoted(std::string& out);
  bool Literal(std::string& out, bool allow_nul);
  bool String(std::string& out) {
    if (At('"')) return Quoted(out);
    if (At('{')) return Literal(out, false);
    return Fail("expected string");
  }
  // astring = 1*ASTRING-CHAR / string
  bool Astring(std::string& out, const char* what) {
    if (At('"') || At('{')) return String(out);
    std::string_view a = Scan(IsAstringChar);
    if (a.empty()) return Fail(std::string("expected ") + what);
    out = std::string(a);
    return true;
  }
  // nstring = string / nil
  bool Nstring(std::optional<std::string>& out) {
    if (TakeWord("NIL")) {
      out.reset();
      return true;
    }
    out.emplace();
    return String(*out);
  }
  // mailbox = "INBOX" / astring  (INBOX is case-insensitive, section 5.1)
  bool Mailbox(std::string& out) {
    TRY(Astring(out, "mailbox name"));
    if (IsInbox(out)) out = "INBOX";
    return true;
  }
  // list-mailbox = 1*list-char / string
  bool ListMailbox(std::string& out) {
    if (At('"') || At('{')) return String(out);
    std::string_view a = Scan(IsListChar);
    if (a.empty()) return Fail("expected mailbox pattern");
    out = std::string(a);
    return true;
  }

  // ---- Shared productions ----
  bool SequenceSet(SeqSet& out);
  bool Flag(std::string& out);
  bool FlagList(std::vector<std::string>& out);
  bool SearchDate(Date& out);
  bool StatusAtt(StatusItem& out);
  bool StatusAttList(std::vector<StatusItem>& out);

  // ---- Commands ----
  bool ParseArgs(Command& c);
  bool Authenticate(Command& c);
  bool Select(Command& c);
  bool Create(Command& c);
  bool List(Command& c);
  bool Lsub(Command& c);
  bool Status(Command& c);
  bool Append(Command& c);
  bool AppendMessageP(std::vector<std::string>& flags, std::optional<DateTime>& date_time,
                      std::string& message, std::vector<CatPart>& catenate);
  bool Catenate(std::vector<CatPart>& parts);
  bool Search(Command& c);
  bool SearchReturn(SearchArgs& a);
  bool PartialRange(std::pair<int64_t, int64_t>& range);
  bool SearchKeys(SearchArgs& a);
  bool Sort(Command& c);
  bool Thread(Command& c);
  bool SearchKeyP(SearchKey& k, size_t depth);
  bool Fetch(Command& c);
  bool FetchAttP(std::vector<FetchItem>& items, bool top);
  bool SectionP(Section& s, bool binary);
  bool PartialP(std::optional<Partial>& p);
  bool Store(Command& c);
  bool Id(Command& c);
  bool SetQuota(Command& c);
  bool GetMetadata(Command& c);
  bool SetMetadata(Command& c);
  bool MetadataEntry(std::string& out, bool allow_root);
  bool Notify(Command& c);
  bool NotifyGroupP(NotifyGroup& g);

  std::string_view in_;
  size_t pos_ = 0;
  const Limits& lim_;
  bool hit_end_ = false;
  bool has_8bit_ = false;
  size_t literals_ = 0;
  size_t search_keys_ = 0;
  std::optional<Error> err_;
};

// quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR = <any TEXT-CHAR except
// quoted-specials> / "\" quoted-specials (RFC 3501 section 9), plus UTF8-2/3/4
// (RFC 9051 section 9): accepted when valid UTF-8 and flagged in has_8bit_.
bool Parser::Quoted(std::string& out) {
  TRY(Char('"'));
  out.clear();
  bool eight = false;
  for (;;) {
    int c = Peek();
    if (c == -1) return Fail("unterminated quoted string");
    ++pos_;
    if (c == '"') break;
    if (c == '\\') {
      int e = Peek();
      if (e != '"' && e != '\\') return Fail("bad escape in quoted string");
      ++pos_;
      out += static_cast<char>(e);
      continue;
    }
    if (c == '\r' || c == '\n' || c == 0) return Fail("CR, LF or NUL in quoted string");
    if (c >= 0x80) eight = true;
    out += static_cast<char>(c);
  }
  if (eight) {
    if (!IsValidUtf8(out)) return Fail("8-bit quoted string is not UTF-8");
    has_8bit_ = true;
  }
  return true;
}

// literal = "{" number ["+"] "}" CRLF *CHAR8 (RFC 3501 section 9, RFC 7888
// section 8 for "+"). CommandReader has framed it, so the n bytes are here
// (unless this is a partial prefix); a bare LF is accepted as the line end.
// CHAR8 excludes NUL: only the APPEND message may carry one.
bool Parser::Literal(std::string& out, bool allow_nul) {
  TRY(Char('{'));
  uint64_t n;
  TRY(Number64(n, UINT64_MAX, "literal length"));
  Take('+');
  TRY(Char('}'));
  Take('\r');
  if (!Take('\n')) return Fail("expected CRLF after literal length");
  if (++literals_ > lim_.max_literals) return Limit("literals");
  if (n > lim_.max_literal) return Fail("literal too big", ErrorKind::kTooLarge);
  if (in_.size() - pos_ < n) {
    hit_end_ = true;
    return Fail("literal data missing");
  }
  std::string_view data = in_.substr(pos_, n);
  if (!allow_nul && data.find('\0') != std::string_view::npos) return Fail("NUL in literal");
  out.assign(data);
  pos_ += n;
  return true;
}

// sequence-set = (seq-number / seq-range) ["," sequence-set]; seq-range =
// seq-number ":" seq-number; seq-number = nz-number / "*" (RFC 3501 section 9).
bool Parser::SequenceSet(SeqSet& out) {
  out.ranges.clear();
  out.saved = false;
  // seq-last-command = "$" (RFC 5182 section 4, RFC 9051 section 9).
  if (Take('$')) {
    out.saved = true;
    return true;
  }
  auto num = [this](uint32_t& v) {
    if (Take('*')) {
      v = kStar;
      return true;
    }
    if (!IsDigit(Peek())) return Fail("expected sequence set");
    return NzNumber(v, "sequence number");
  };
  do {
    if (out.ranges.size() >= lim_.max_seq_ranges) return Limit("sequence set ranges");
    SeqSet::Range r;
    TRY(num(r.first));
    r.last = r.first;
    if (Take(':')) TRY(num(r.last));
    out.ranges.push_back(r);
  } while (Take(','));
  return true;
}

// flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
//        flag-keyword / flag-extension;  flag-extension = "\" atom
bool Parser::Flag(std::string& out) {
  bool system = Take('\\');
  std::string_view a;
  TRY(Atom(a, "flag"));
  out = system ? CanonicalFlag("\\" + std::string(a)) : std::string(a);
  return true;
}

// flag-list = "(" [flag *(SP flag)] ")"
bool Parser::FlagList(std::vector<std::string>& out) {
  TRY(Char('('));
  size_t n = 0;
  out.clear();
  if (Take(')')) return true;
  do {
    TRY(Item(n));
    TRY(Flag(out.emplace_back()));
  } while (Take(' '));
  return Char(')');
}

// date = date-text / DQUOTE date-text DQUOTE; date-text = date-day "-"
// date-month "-" date-year (RFC 3501 section 9).
bool Parser::SearchDate(Date& out) {
  std::string_view text;
  if (Take('"')) {
    text = Scan([](unsigned char c) { return c != '"' && c != '\r' && c != '\n'; });
    TRY(Char('"'));
  } else {
    text = Scan(IsAtomChar);
  }
  auto d = ParseDate(text);
  if (!d) return Fail(d.error().message);
  out = *d;
  return true;
}

bool Parser::StatusAtt(StatusItem& out) {
  std::string k;
  TRY(Keyword(k, "status item"));
  for (const auto& e : kStatusItems) {
    if (k == e.name) {
      out = e.item;
      return true;
    }
  }
  return Fail("unknown status item " + k);
}

// "(" status-att *(SP status-att) ")" (RFC 3501 section 6.3.10, RFC 5819 section 2)
bool Parser::StatusAttList(std::vector<StatusItem>& out) {
  TRY(Char('('));
  size_t n = 0;
  do {
    TRY(Item(n));
    TRY(StatusAtt(out.emplace_back()));
  } while (Take(' '));
  return Char(')');
}

bool Parser::Run(Command& cmd) {
  // command = tag SP (command-any / command-auth / command-nonauth /
  //           command-select) CRLF   (RFC 3501 section 9; CRLF removed by the reader)
  auto tag = ParseTag(in_);
  if (!tag) return Fail("bad tag");
  cmd.tag = std::move(*tag);
  pos_ = cmd.tag.size();
  TRY(Sp());
  std::string word;
  TRY(Keyword(word, "command"));
  if (word == "UID") {
    cmd.uid = true;
    TRY(Sp());
    TRY(Keyword(word, "command after UID"));
  }
  const VerbEntry* entry = nullptr;
  for (const auto& e : kVerbs) {
    if (word == e.name) entry = &e;
  }
  if (entry == nullptr) {
    // A complete unknown word is an error even in a prefix.
    hit_end_ = false;
    return Fail("unknown command " + word.substr(0, 40));
  }
  if (cmd.uid && !entry->uid_ok) {
    hit_end_ = false;
    return Fail("UID " + word + " is not a command");
  }
  cmd.verb = entry->verb;
  TRY(ParseArgs(cmd));
  if (!AtEnd()) return Fail("unexpected characters at end of command");
  cmd.has_8bit = has_8bit_;
  return true;
}

bool Parser::ParseArgs(Command& c) {
  switch (c.verb) {
    case Verb::kCapability:
    case Verb::kNoop:
    case Verb::kLogout:
    case Verb::kStartTls:
    case Verb::kIdle:
    case Verb::kNamespace:
    case Verb::kCheck:
    case Verb::kClose:
    case Verb::kUnselect:
      return true;
    case Verb::kExpunge:
      if (!c.uid) return true;
      {
        // uid-expunge = "UID" SP "EXPUNGE" SP sequence-set (RFC 4315 section 3)
        ExpungeArgs a;
        TRY(Sp());
        TRY(SequenceSet(a.set));
        c.args = std::move(a);
        return true;
      }
    case Verb::kAuthenticate:
      return Authenticate(c);
    case Verb::kLogin: {
      // login = "LOGIN" SP userid SP password; userid = astring; password = astring
      LoginArgs a;
      TRY(Sp());
      TRY(Astring(a.user, "user name"));
      TRY(Sp());
      TRY(Astring(a.password, "password"));
      c.args = std::move(a);
      return true;
    }
    case Verb::kSelect:
    case Verb::kExamine:
      return Select(c);
    case Verb::kCreate:
      return Create(c);
    case Verb::kDelete:
    case Verb::kSubscribe:
    case Verb::kUnsubscribe:
    case Verb::kGetQuotaRoot: {
      MailboxArgs a;
      TRY(Sp());
      TRY(Mailbox(a.mailbox));
      c.args = std::move(a);
      return true;
    }
    case Verb::kGetQuota: {
      // getquota = "GETQUOTA" SP quota-root-name; quota-root-name = astring (RFC 9208 section 9)
      QuotaRootArgs a;
      TRY(Sp());
      TRY(Astring(a.root, "quota root"));
      c.args = std::move(a);
      return true;
    }
    case Verb::kSetQuota:
      return SetQuota(c);
    case Verb::kGetMetadata:
      return GetMetadata(c);
    case Verb::kSetMetadata:
      return SetMetadata(c);
    case Verb::kResetKey: {
      // resetkey = "RESETKEY" [SP mailbox *(SP mechanism)] (RFC 4467 section 9)
      ResetKeyArgs a;
      size_t n = 0;
      if (Take(' ')) {
        a.mailbox.emplace();
        TRY(Mailbox(*a.mailbox));
        while (Take(' ')) {
          TRY(Item(n));
          TRY(Keyword(a.mechanisms.emplace_back(), "mechanism"));
        }
      }
      c.args = std::move(a);
      return true;
    }
    case Verb::kGenUrlAuth: {
      // genurlauth = "GENURLAUTH" 1*(SP url-rump SP mechanism); url-rump = astring
      GenUrlAuthArgs a;
      size_t n = 0;
      do {
        TRY(Sp());
        TRY(Item(n));
        auto& u = a.urls.emplace_back();
        TRY(Astring(u.first, "URL"));
        TRY(Sp());
        TRY(Keyword(u.second, "mechanism"));
      } while (At(' '));
      c.args = std::move(a);
      return true;
    }
    case Verb::kCancelUpdate: {
      // cancelupdate = "CANCELUPDATE" 1*(SP quoted) (RFC 5267 section 5)
      CancelUpdateArgs a;
      size_t n = 0;
      do {
        TRY(Sp());
        TRY(Item(n));
        TRY(Quoted(a.tags.emplace_back()));
        // Only a tag can name a search (RFC 3501 section 9: tag).
        auto tag = ParseTag(a.tags.back());
        if (!tag || *tag != a.tags.back()) return Fail("CANCELUPDATE takes tags");
      } while (At(' '));
      c.args = std::move(a);
      return true;
    }
    case Verb::kUrlFetch: {
      // urlfetch = "URLFETCH" 1*(SP url-full); url-full = astring
      UrlFetchArgs a;
      size_t n = 0;
      do {
        TRY(Sp());
        TRY(Item(n));
        TRY(Astring(a.urls.emplace_back(), "URL"));
      } while (At(' '));
      c.args = std::move(a);
      return true;
    }
    case Verb::kRename: {
      // rename = "RENAME" SP mailbox SP mailbox
      RenameArgs a;
      TRY(Sp());
      TRY(Mailbox(a.from));
      TRY(Sp());
      TRY(Mailbox(a.to));
      c.args = std::move(a);
      return true;
    }
    case Verb::kNotify:
      return Notify(c);
    case Verb::kList:
      return List(c);
    case Verb::kLsub:
      return Lsub(c);
    case Verb::kStatus:
      return Status(c);
    case Verb::kAppend:
      return Append(c);
    case Verb::kId:
      return Id(c);
    case Verb::kEnable: {
      // enable = "ENABLE" 1*(SP capability) (RFC 5161 section 4)
      EnableArgs a;
      size_t n = 0;
      do {
        TRY(Sp());
        TRY(Item(n));
        TRY(Keyword(a.capabilities.emplace_back(), "capability"));
      } while (At(' '));
      c.args = std::move(a);
      return true;
    }
    case Verb::kCompress: {
      // compress = "COMPRESS" SP algorithm; algorithm = "DEFLATE" / atom (RFC 4978 section 5)
      CompressArgs a;
      TRY(Sp());
      TRY(Keyword(a.mechanism, "compression algorithm"));
      c.args = std::move(a);
      return true;
    }
    case Verb::kSearch:
      return Search(c);
    case Verb::kSort:
      return Sort(c);
    case Verb::kThread:
      return Thread(c);
    case Verb::kFetch:
      return Fetch(c);
    case Verb::kStore:
      return Store(c);
    case Verb::kCopy:
    case Verb::kMove: {
      // copy = "COPY" SP sequence-set SP mailbox; move likewise (RFC 6851 section 4)
      CopyArgs a;
      TRY(Sp());
      TRY(SequenceSet(a.set));
      TRY(Sp());
      TRY(Mailbox(a.mailbox));
      c.args = std::move(a);
      return true;
    }
  }
  return Fail("unhandled command");
}

// authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")] (RFC 4959 section 7)
bool Parser::Authenticate(Command& c) {
  AuthenticateArgs a;
  TRY(Sp());
  TRY(Keyword(a.mechanism, "SASL mechanism"));
  if (Take(' ')) {
    // base64 = *(4base64-char) [base64-terminal]; "=" alone is the empty response.
    std::string_view ir = Scan([](unsigned char ch) {
      return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || IsDigit(ch) || ch == '+' ||
             ch == '/' || ch == '=';
    });
    if (ir.empty()) return Fail("bad initial response");
    if (ir != "=") {
      size_t eq = ir.find('=');
      if (ir.size() % 4 != 0 || (eq != std::string_view::npos && eq < ir.size() - 2) ||
          (eq != std::string_view::npos &&
           ir.substr(eq).find_first_not_of('=') != std::string_view::npos)) {
        return Fail("bad base64 in initial response");
      }
    }
    a.initial_response = std::string(ir);
  }
  c.args = std::move(a);
  return true;
}

// select = "SELECT" SP mailbox [select-params]; select-params = SP "(" select-param
// *(SP select-param) ")" (RFC 4466 section 2.4); select-param = "CONDSTORE" /
// "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
// [SP seq-match-data] ")"; seq-match-data = "(" known-sequence-set SP known-uid-set ")"
// (RFC 7162 section 7).
bool Parser::Select(Command& c) {
  SelectArgs a;
  TRY(Sp());
  TRY(Mailbox(a.mailbox));
  if (Take(' ')) {
    TRY(Char('('));
    size_t n = 0;
    do {
      TRY(Item(n));
      std::string k;
      TRY(Keyword(k, "select parameter"));
      if (k == "CONDSTORE") {
        a.condstore = true;
      } else if (k == "QRESYNC") {
        if (a.qresync) return Fail("QRESYNC given twice");
        QresyncParams q;
        TRY(Sp());
        TRY(Char('('));
        TRY(NzNumber(q.uidvalidity, "UIDVALIDITY"));
        TRY(Sp());
        TRY(ModSeq(q.modseq, false));
        if (Take(' ')) {
          if (!At('(')) {
            q.known_uids.emplace();
            TRY(SequenceSet(*q.known_uids));
            if (Take(' ')) TRY(At('(') || Fail("expected seq-match-data"));
          }
          if (At('(')) {
            TRY(Char('('));
            q.known_seqs.emplace();
            q.known_seq_uids.emplace();
            TRY(SequenceSet(*q.known_seqs));
            TRY(Sp());
            TRY(SequenceSet(*q.known_seq_uids));
            TRY(Char(')'));
          }
        }
        TRY(Char(')'));
        a.qresync = std::move(q);
      } else {
        return Fail("unknown select parameter " + k);
      }
    } while (Take(' '));
    TRY(Char(')'));
  }
  c.args = std::move(a);
  return true;
}

// create = "CREATE" SP mailbox [create-params]; create-params = SP "(" create-param
// *(SP create-param) ")" (RFC 4466 section 2.2); create-param =/ "USE" SP "("
// [use-attr *(SP use-attr)] ")" (RFC 6154 section 6).
bool Parser::Create(Command& c) {
  CreateArgs a;
  TRY(Sp());
  TRY(Mailbox(a.mailbox));
  if (Take(' ')) {
    TRY(Char('('));
    do {
      std::string k;
      TRY(Keyword(k, "create parameter"));
      if (k != "USE") return Fail("unknown create parameter " + k);
      TRY(Sp());
      TRY(Char('('));
      size_t n = 0;
      if (!At(')')) {
        do {
          TRY(Item(n));
          std::string& f = a.special_use.emplace_back();
          TRY(At('\\') || Fail("expected special-use attribute"));
          TRY(Flag(f));
        } while (Take(' '));
      }
      TRY(Char(')'));
    } while (Take(' '));
    TRY(Char(')'));
  }
  c.args = std::move(a);
  return true;
}

// list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
// (RFC 5258 section 6); list-select-opts = "(" [list-select-option *(SP
// list-select-option)] ")"; mbox-or-pat = list-mailbox / patterns; patterns = "("
// list-mailbox *(SP list-mailbox) ")"; list-return-opts = "RETURN" SP "("
// [return-option *(SP return-option)] ")"; return-option =/ "STATUS" SP "("
// status-att *(SP status-att) ")" (RFC 5819 section 2).
bool Parser::List(Command& c) {
  ListArgs a;
  TRY(Sp());
  if (Take('(')) {
    a.extended = true;
    size_t n = 0;
    bool other = false;  // a selection option other than REMOTE (RFC 5258 section 3.1)
    if (!At(')')) {
      do {
        TRY(Item(n));
        std::string k;
        TRY(Keyword(k, "selection option"));
        if (k == "SUBSCRIBED") {
          a.select_subscribed = other = true;
        } else if (k == "REMOTE") {
          a.select_remote = true;
        } else if (k == "RECURSIVEMATCH") {
          a.select_recursive_match = true;
        } else if (k == "SPECIAL-USE") {
          a.select_special_use = other = true;
        } else {
          return Fail("unknown LIST selection option " + k);
        }
      } while (Take(' '));
    }
    TRY(Char(')'));
    if (a.select_recursive_match && !other) {
      return Fail("RECURSIVEMATCH needs another selection option");
    }
    TRY(Sp());
  }
  TRY(Astring(a.reference, "reference name"));
  TRY(Sp());
  if (Take('(')) {
    a.extended = true;
    size_t n = 0;
    do {
      TRY(Item(n));
      TRY(ListMailbox(a.patterns.emplace_back()));
    } while (Take(' '));
    TRY(Char(')'));
  } else {
    TRY(ListMailbox(a.patterns.emplace_back()));
  }
  if (Take(' ')) {
    a.extended = true;
    if (!TakeWord("RETURN")) return Fail("expected RETURN");
    TRY(Sp());
    TRY(Char('('));
    size_t n = 0;
    if (!At(')')) {
      do {
        TRY(Item(n));
        std::string k;
        TRY(Keyword(k, "return option"));
        if (k == "SUBSCRIBED") {
          a.return_subscribed = true;
        } else if (k == "CHILDREN") {
          a.return_children = true;
        } else if (k == "SPECIAL-USE") {
          a.return_special_use = true;
        } else if (k == "STATUS") {
          if (a.return_status) return Fail("STATUS given twice");
          TRY(Sp());
          a.return_status.emplace();
          TRY(StatusAttList(*a.return_status));
        } else {
          return Fail("unknown LIST return option " + k);
        }
      } while (Take(' '));
    }
    TRY(Char(')'));
  }
  c.args = std::move(a);
  return true;
}

// lsub = "LSUB" SP mailbox SP list-mailbox
bool Parser::Lsub(Command& c) {
  ListArgs a;
  TRY(Sp());
  TRY(Astring(a.reference, "reference name"));
  TRY(Sp());
  TRY(ListMailbox(a.patterns.emplace_back()));
  c.args = std::move(a);
  return true;
}

// status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"
bool Parser::Status(Command& c) {
  StatusArgs a;
  TRY(Sp());
  TRY(Mailbox(a.mailbox));
  TRY(Sp());
  TRY(StatusAttList(a.items));
  c.args = std::move(a);
  return true;
}

// append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal
// (RFC 3501 section 9; one message: no MULTIAPPEND, no literal8).
bool Parser::Append(Command& c) {
  AppendArgs a;
  TRY(Sp());
  TRY(Mailbox(a.mailbox));
  TRY(Sp());
  TRY(AppendMessageP(a.flags, a.date_time, a.message, a.catenate));
  // append = "APPEND" SP mailbox 1*append-message (RFC 3502 section 6).
  while (Take(' ')) {
    AppendMessage& m = a.more.emplace_back();
    TRY(AppendMessageP(m.flags, m.date_time, m.message, m.catenate));
  }
  c.args = std::move(a);
  return true;
}

// append-message = [flag-list SP] [date-time SP] literal (RFC 3501 section 9).
bool Parser::AppendMessageP(std::vector<std::string>& flags, std::optional<DateTime>& date_time,
                            std::string& message, std::vector<CatPart>& catenate) {
  if (At('(')) {
    TRY(FlagList(flags));
    TRY(Sp());
  }
  if (At('"')) {
    std::string text;
    TRY(Quoted(text));
    auto dt = ParseDateTime(text);
    if (!dt) return Fail(dt.error().message);
    date_time = *dt;
    TRY(Sp());
  }
  // append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")" (RFC 4469
  // section 5).
  if (TakeWord("CATENATE")) {
    TRY(Sp());
    return Catenate(catenate);
  }
  // RFC 3516 section 4.4: the message may be a literal8 ("~{n}"), which may
  // hold any octet; it is stored as sent.
  Take('~');
  if (!At('{')) return Fail("expected message literal");
  return Literal(message, /*allow_nul=*/true);
}

// "(" cat-part *(SP cat-part) ")"; cat-part = text-literal / url;
// text-literal = "TEXT" SP literal; url = "URL" SP astring (RFC 4469 section
// 5). A TEXT part is a piece of the message, so it may be a literal8 and hold
// any octet as the APPEND literal may (RFC 3516 section 4.4).
bool Parser::Catenate(std::vector<CatPart>& parts) {
  TRY(Char('('));
  size_t n = 0;
  do {
    TRY(Item(n));
    CatPart& p = parts.emplace_back();
    if (TakeWord("TEXT")) {
      TRY(Sp());
      Take('~');
      if (!At('{')) return Fail("expected TEXT literal");
      TRY(Literal(p.data, /*allow_nul=*/true));
    } else if (TakeWord("URL")) {
      p.url = true;
      TRY(Sp());
      TRY(Astring(p.data, "URL"));
      if (p.data.empty()) return Fail("empty URL");
    } else {
      return Fail("expected TEXT or URL");
    }
  } while (Take(' '));
  return Char(')');
}

// search = "SEARCH" [search-return-opts] [SP "CHARSET" SP astring] 1*(SP search-key)
// (RFC 3501 section 9, RFC 4731 section 7); search-return-opts = SP "RETURN" SP "("
// [search-return-opt *(SP search-return-opt)] ")"; search-return-opt = "MIN" /
// "MAX" / "ALL" / "COUNT" (RFC 4731), "SAVE" (RFC 5182), "PARTIAL" SP
// partial-range (RFC 5267 section 4.4, RFC 9394), "UPDATE" and "CONTEXT" (RFC
// 5267 section 4.2 and 4.3).
bool Parser::Search(Command& c) {
  SearchArgs a;
  a.key.op = SearchOp::kAnd;
  TRY(Sp());
  TRY(SearchReturn(a));
  if (TakeWord("CHARSET")) {
    TRY(Sp());
    a.charset.emplace();
    TRY(Astring(*a.charset, "charset"));
    TRY(Sp());
  }
  TRY(SearchKeys(a));
  c.args = std::move(a);
  return true;
}

// partial-range = partial-range-first / partial-range-last;
// partial-range-first = nz-number ":" nz-number;
// partial-range-last = "-" nz-number ":-" nz-number  (RFC 9394 section 4;
// RFC 5267 section 6 has only the first form).
bool Parser::PartialRange(std::pair<int64_t, int64_t>& range) {
  bool last = Take('-');
  uint32_t first = 0, second = 0;
  TRY(NzNumber(first, "partial range"));
  TRY(Char(':'));
  if (last) TRY(Char('-'));
  TRY(NzNumber(second, "partial range"));
  // Either order names the same range; kept smaller first ("3:1" is "1:3",
  // "-5:-1" is "-1:-5") as the response echoes it.
  int64_t sign = last ? -1 : 1;
  range = {sign * std::min(first, second), sign * std::max(first, second)};
  return true;
}

// [search-return-opts SP] (see Search; RFC 5267 section 4 uses it for SORT).
bool Parser::SearchReturn(SearchArgs& a) {
  if (!TakeWord("RETURN")) return true;
  a.esearch = true;
  TRY(Sp());
  TRY(Char('('));
  size_t n = 0;
  if (!At(')')) {
    do {
      TRY(Item(n));
      std::string k;
      TRY(Keyword(k, "search return option"));
      if (k == "MIN") {
        a.return_min = true;
      } else if (k == "MAX") {
        a.return_max = true;
      } else if (k == "ALL") {
        a.return_all = true;
      } else if (k == "COUNT") {
        a.return_count = true;
      } else if (k == "SAVE") {
        a.return_save = true;
      } else if (k == "UPDATE") {
        a.return_update = true;
      } else if (k == "CONTEXT") {
        a.return_context = true;
      } else if (k == "PARTIAL" && !a.partial) {
        TRY(Sp());
        TRY(PartialRange(a.partial.emplace()));
      } else {
        return Fail("unknown search return option " + k);
      }
    } while (Take(' '));
  }
  TRY(Char(')'));
  // RFC 9394 section 3.1: PARTIAL and ALL are mutually exclusive.
  if (a.partial && a.return_all) return Fail("PARTIAL with ALL");
  return Sp();
}

// 1*(SP search-key), the first SP already taken.
bool Parser::SearchKeys(SearchArgs& a) {
  do {
    TRY(SearchKeyP(a.key.children.emplace_back(), 1));
  } while (Take(' '));
  return true;
}

// sort = ["UID" SP] "SORT" [SP search-return-opts] SP sort-criteria SP
// search-criteria (RFC 5256 section 5, RFC 5267 section 4); sort-criteria =
// "(" sort-criterion *(SP sort-criterion) ")"; sort-criterion = ["REVERSE"
// SP] sort-key; search-criteria = charset 1*(SP search-key).
bool Parser::Sort(Command& c) {
  SearchArgs a;
  a.key.op = SearchOp::kAnd;
  TRY(Sp());
  TRY(SearchReturn(a));
  TRY(Char('('));
  size_t n = 0;
  do {
    TRY(Item(n));
    SortCriterion& cr = a.sort.emplace_back();
    std::string k;
    TRY(Keyword(k, "sort key"));
    if (k == "REVERSE") {
      cr.reverse = true;
      TRY(Sp());
      TRY(Keyword(k, "sort key"));
    }
    bool known = false;
    for (const auto& e : kSortFields) {
      if (k == e.name) {
        cr.field = e.field;
        known = true;
      }
    }
    if (!known) return Fail("unknown sort key " + k);
  } while (Take(' '));
  TRY(Char(')'));
  TRY(Sp());
  a.charset.emplace();
  TRY(Astring(*a.charset, "charset"));
  TRY(Sp());
  TRY(SearchKeys(a));
  c.args = std::move(a);
  return true;
}

// thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria (RFC 5256
// section 5); thread-alg = "ORDEREDSUBJECT" / "REFERENCES" / atom.
bool Parser::Thread(Command& c) {
  SearchArgs a;
  a.key.op = SearchOp::kAnd;
  TRY(Sp());
  std::string alg;
  TRY(Keyword(alg, "thread algorithm"));
  if (alg == "ORDEREDSUBJECT") {
    a.thread = ThreadAlgorithm::kOrderedSubject;
  } else if (alg == "REFERENCES") {
    a.thread = ThreadAlgorithm::kReferences;
  } else {
    return Fail("unknown thread algorithm " + alg);
  }
  TRY(Sp());
  a.charset.emplace();
  TRY(Astring(*a.charset, "charset"));
  TRY(Sp());
  TRY(SearchKeys(a));
  c.args = std::move(a);
  return true;
}

// search-key (RFC 3501 section 9, RFC 7162 section 7 for MODSEQ):
//   "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date / "BODY" SP astring /
//   "CC" SP astring / "DELETED" / "FLAGGED" / "FROM" SP astring / "KEYWORD" SP
//   flag-keyword / "NEW" / "OLD" / "ON" SP date / "RECENT" / "SEEN" / "SINCE" SP date /
//   "SUBJECT" SP astring / "TEXT" SP astring / "TO" SP astring / "UNANSWERED" /
//   "UNDELETED" / "UNFLAGGED" / "UNKEYWORD" SP flag-keyword / "UNSEEN" / "DRAFT" /
//   "HEADER" SP header-fld-name SP astring / "LARGER" SP number / "NOT" SP search-key /
//   "OR" SP search-key SP search-key / "SENTBEFORE" SP date / "SENTON" SP date /
//   "SENTSINCE" SP date / "SMALLER" SP number / "UID" SP sequence-set / "UNDRAFT" /
//   sequence-set / "(" search-key *(SP search-key) ")" /
//   "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer /
//   "SAVEDBEFORE" SP date / "SAVEDON" SP date / "SAVEDSINCE" SP date /
//   "SAVEDATESUPPORTED"  (RFC 8514 section 5)
bool Parser::SearchKeyP(SearchKey& k, size_t depth) {
  if (++search_keys_ > lim_.max_search_keys) return Limit("search keys");
  TRY(Depth(depth));
  if (Take('(')) {
    k.op = SearchOp::kAnd;
    do {
      TRY(SearchKeyP(k.children.emplace_back(), depth + 1));
    } while (Take(' '));
    return Char(')');
  }
  if (IsDigit(Peek()) || At('*') || At('$')) {
    k.op = SearchOp::kSequenceSet;
    return SequenceSet(k.set);
  }
  std::string w;
  TRY(Keyword(w, "search key"));
  for (const auto& e : kSearchFlags) {
    if (w == e.name) {
      k.op = e.op;
      return true;
    }
  }
  for (const auto& e : kSearchStrings) {
    if (w == e.name) {
      k.op = e.op;
      TRY(Sp());
      return Astring(k.text, "search string");
    }
  }
  for (const auto& e : kSearchDates) {
    if (w == e.name) {
      k.op = e.op;
      TRY(Sp());
      return SearchDate(k.date);
    }
  }
  if (w == "KEYWORD" || w == "UNKEYWORD") {
    // flag-keyword = atom
    k.op = w == "KEYWORD" ? SearchOp::kKeyword : SearchOp::kUnkeyword;
    TRY(Sp());
    std::string_view a;
    TRY(Atom(a, "keyword"));
    k.text = std::string(a);
    return true;
  }
  if (w == "HEADER") {
    k.op = SearchOp::kHeader;
    TRY(Sp());
    TRY(Astring(k.field, "header field name"));
    TRY(Sp());
    return Astring(k.text, "header value");
  }
  if (w == "LARGER" || w == "SMALLER") {
    k.op = w == "LARGER" ? SearchOp::kLarger : SearchOp::kSmaller;
    TRY(Sp());
    return Number64(k.number, UINT32_MAX, "size");
  }
  if (w == "EMAILID" || w == "THREADID") {
    // RFC 8474 section 6: "EMAILID" SP objectid / "THREADID" SP objectid;
    // objectid = 1*255(ALPHA / DIGIT / "_" / "-").
    k.op = w == "EMAILID" ? SearchOp::kEmailId : SearchOp::kThreadId;
    TRY(Sp());
    std::string_view a;
    TRY(Atom(a, "objectid"));
    if (!IsObjectId(a)) return Fail("bad objectid");
    k.text = std::string(a);
    return true;
  }
  if (w == "UID") {
    k.op = SearchOp::kUid;
    TRY(Sp());
    return SequenceSet(k.set);
  }
  if (w == "NOT") {
    k.op = SearchOp::kNot;
    TRY(Sp());
    return SearchKeyP(k.children.emplace_back(), depth + 1);
  }
  if (w == "OR") {
    k.op = SearchOp::kOr;
    k.children.resize(2);
    TRY(Sp());
    TRY(SearchKeyP(k.children[0], depth + 1));
    TRY(Sp());
    return SearchKeyP(k.children[1], depth + 1);
  }
  if (w == "MODSEQ") {
    // entry-name = entry-flag-name; entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE;
    // entry-type-req = entry-type-resp / "all"; entry-type-resp = "priv" / "shared"
    k.op = SearchOp::kModSeq;
    TRY(Sp());
    if (At('"')) {
      TRY(Quoted(k.field));
      if (!StartsWithIgnoreCase(k.field, "/flags/") || k.field.size() == 7) {
        return Fail("bad MODSEQ entry name");
      }
      TRY(Sp());
      std::string t;
      TRY(Keyword(t, "entry type"));
      t = AsciiLower(t);
      if (t != "priv" && t != "shared" && t != "all") return Fail("bad MODSEQ entry type");
      k.entry_type = t;
      TRY(Sp());
    }
    return ModSeq(k.number, true);
  }
  hit_end_ = false;
  return Fail("unknown search key " + w.substr(0, 40));
}

// fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
//         "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]  (RFC 3501, RFC 4466)
// fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")";
// fetch-modifier =/ chgsince-fetch-mod / "VANISHED" (RFC 7162 section 7) /
//   "PARTIAL" SP partial-range (RFC 9394 section 4)
bool Parser::Fetch(Command& c) {
  FetchArgs a;
  TRY(Sp());
  TRY(SequenceSet(a.set));
  TRY(Sp());
  if (Take('(')) {
    size_t n = 0;
    do {
      TRY(Item(n));
      TRY(FetchAttP(a.items, false));
    } while (Take(' '));
    TRY(Char(')'));
  } else {
    TRY(FetchAttP(a.items, true));
  }
  if (Take(' ')) {
    TRY(Char('('));
    do {
      std::string k;
      TRY(Keyword(k, "fetch modifier"));
      if (k == "CHANGEDSINCE") {
        TRY(Sp());
        a.changed_since.emplace();
        TRY(ModSeq(*a.changed_since, false));
      } else if (k == "VANISHED") {
        a.vanished = true;
      } else if (k == "PARTIAL" && !a.partial) {
        TRY(Sp());
        TRY(PartialRange(a.partial.emplace()));
      } else {
        return Fail("unknown fetch modifier " + k);
      }
    } while (Take(' '));
    TRY(Char(')'));
    // RFC 7162 section 3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
    if (a.vanished && (!c.uid || !a.changed_since)) {
      return Fail("VANISHED needs UID FETCH and CHANGEDSINCE");
    }
  }
  c.args = std::move(a);
  return true;
}

// fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".SIZE" /
//   ".TEXT"] / "BODY" ["STRUCTURE"] / "UID" / "BODY" section [partial] /
//   "BODY.PEEK" section [partial]  (RFC 3501 section 9)
//   / "BINARY" [".PEEK"] section-binary [partial] / "BINARY.SIZE" section-binary
//   (RFC 3516 section 8) / "MODSEQ" (RFC 7162 section 7)
bool Parser::FetchAttP(std::vector<FetchItem>& items, bool top) {
  std::string_view w = Scan([](unsigned char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || IsDigit(ch) || ch == '.';
  });
  std::string k = AsciiUpper(w);
  auto simple = [&items](FetchAtt att) { items.push_back(FetchItem{att, false, {}, {}}); };
  if (top && (k == "ALL" || k == "FAST" || k == "FULL")) {
    // Macros (RFC 3501 section 6.4.5): FAST = (FLAGS INTERNALDATE RFC822.SIZE),
    // ALL = FAST + ENVELOPE, FULL = ALL + BODY.
    simple(FetchAtt::kFlags);
    simple(FetchAtt::kInternalDate);
    simple(FetchAtt::kRfc822Size);
    if (k != "FAST") simple(FetchAtt::kEnvelope);
    if (k == "FULL") simple(FetchAtt::kBody);
    return true;
  }
  struct Simple {
    const char* name;
    FetchAtt att;
  };
  static constexpr Simple kSimple[] = {
      {"ENVELOPE", FetchAtt::kEnvelope},
      {"FLAGS", FetchAtt::kFlags},
      {"INTERNALDATE", FetchAtt::kInternalDate},
      {"RFC822", FetchAtt::kRfc822},
      {"RFC822.HEADER", FetchAtt::kRfc822Header},
      {"RFC822.SIZE", FetchAtt::kRfc822Size},
      {"RFC822.TEXT", FetchAtt::kRfc822Text},
      {"BODYSTRUCTURE", FetchAtt::kBodyStructure},
      {"UID", FetchAtt::kUid},
      {"MODSEQ", FetchAtt::kModSeq},
      {"EMAILID", FetchAtt::kEmailId},
      {"THREADID", FetchAtt::kThreadId},
      {"SAVEDATE", FetchAtt::kSaveDate},  // RFC 8514 section 4.1
  };
  for (const auto& e : kSimple) {
    if (k == e.name) {
      simple(e.att);
      return true;
    }
  }
  FetchItem item;
  if (k == "PREVIEW") {
    // RFC 8970 section 3.2: "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"],
    // preview-mod = "LAZY".
    item.att = FetchAtt::kPreview;
    if (in_.substr(pos_).starts_with(" (")) {
      pos_ += 2;
      do {
        std::string mod;
        TRY(Keyword(mod, "preview modifier"));
        if (AsciiUpper(mod) != "LAZY") return Fail("unknown preview modifier");
        item.peek = true;
      } while (Take(' '));
      TRY(Char(')'));
    }
    items.push_back(std::move(item));
    return true;
  }
  if (k == "BODY" || k == "BODY.PEEK") {
    item.peek = k == "BODY.PEEK";
    if (!At('[')) {
      if (item.peek) return Fail("BODY.PEEK needs a section");
      simple(FetchAtt::kBody);
      return true;
    }
    item.att = FetchAtt::kBodySection;
    TRY(SectionP(item.section, false));
    TRY(PartialP(item.partial));
  } else if (k == "BINARY" || k == "BINARY.PEEK") {
    item.att = FetchAtt::kBinary;
    item.peek = k == "BINARY.PEEK";
    TRY(SectionP(item.section, true));
    TRY(PartialP(item.partial));
  } else if (k == "BINARY.SIZE") {
    item.att = FetchAtt::kBinarySize;
    TRY(SectionP(item.section, true));
  } else {
    if (k.empty()) return Fail("expected fetch attribute");
    hit_end_ = false;
    return Fail("unknown fetch attribute " + k.substr(0, 40));
  }
  items.push_back(std::move(item));
  return true;
}

// section = "[" [section-spec] "]"; section-spec = section-msgtext / (section-part
// ["." section-text]); section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP
// header-list / "TEXT"; section-part = nz-number *("." nz-number); section-text =
// section-msgtext / "MIME"; header-list = "(" header-fld-name *(SP header-fld-name) ")"
// (RFC 3501 section 9). section-binary = "[" [section-part] "]" (RFC 3516 section 8).
bool Parser::SectionP(Section& s, bool binary) {
  TRY(Char('['));
  s = Section{};
  while (IsDigit(Peek())) {
    if (s.part.size() >= lim_.max_depth) return Limit("section part levels");
    TRY(NzNumber(s.part.emplace_back(), "section part"));
    if (!Take('.')) break;
    if (!IsDigit(Peek())) break;  // "1.HEADER": the text follows
  }
  for (size_t i = 0; i < s.part.size(); ++i) {
    if (i > 0) s.canonical += '.';
    s.canonical += std::to_string(s.part[i]);
  }
  bool dot_seen = !s.part.empty() && pos_ > 0 && in_[pos_ - 1] == '.';
  if (binary) {
    if (dot_seen) return Fail("bad binary section");
    return Char(']');
  }
  if (At(']') && !dot_seen) return Char(']');
  if (!s.part.empty() && !dot_seen) return Fail("expected '.' or ']' in section");
  std::string_view w = Scan([](unsigned char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '.';
  });
  std::string k = AsciiUpper(w);
  if (k == "HEADER") {
    s.text = Section::Text::kHeader;
  } else if (k == "HEADER.FIELDS") {
    s.text = Section::Text::kHeaderFields;
  } else if (k == "HEADER.FIELDS.NOT") {
    s.text = Section::Text::kHeaderFieldsNot;
  } else if (k == "TEXT") {
    s.text = Section::Text::kText;
  } else if (k == "MIME" && !s.part.empty()) {
    s.text = Section::Text::kMime;
  } else {
    return Fail("bad section text");
  }
  if (!s.part.empty()) s.canonical += '.';
  s.canonical += k;
  if (s.text == Section::Text::kHeaderFields || s.text == Section::Text::kHeaderFieldsNot) {
    TRY(Sp());
    TRY(Char('('));
    s.canonical += " (";
    size_t n = 0;
    do {
      TRY(Item(n));
      std::string& f = s.fields.emplace_back();
      TRY(Astring(f, "header field name"));
      // RFC 5322 section 3.6.8: field-name = 1*ftext; ftext = %d33-57 / %d59-126.
      if (f.empty() || std::any_of(f.begin(), f.end(),
                                   [](char ch) { return ch <= 32 || ch >= 127 || ch == ':'; })) {
        return Fail("bad header field name");
      }
      if (n > 1) s.canonical += ' ';
      if (std::all_of(f.begin(), f.end(), [](char ch) { return IsAstringChar(ch); })) {
        s.canonical += f;
      } else {
        s.canonical += '"';
        for (char ch : f) {
          if (ch == '"' || ch == '\\') s.canonical += '\\';
          s.canonical += ch;
        }
        s.canonical += '"';
      }
    } while (Take(' '));
    TRY(Char(')'));
    s.canonical += ')';
  }
  return Char(']');
}

// partial = "<" number "." nz-number ">" (RFC 3501; 64-bit per RFC 9051 partial-range)
bool Parser::PartialP(std::optional<Partial>& p) {
  if (!Take('<')) return true;
  Partial r;
  TRY(Number64(r.offset, UINT32_MAX, "partial offset"));
  TRY(Char('.'));
  TRY(Number64(r.count, UINT32_MAX, "partial length"));
  if (r.count == 0) return Fail("bad partial length: zero");
  TRY(Char('>'));
  p = r;
  return true;
}

// store = "STORE" SP sequence-set [SP store-modifiers] SP store-att-flags
// (RFC 4466 section 2.5); store-modifier =/ "UNCHANGEDSINCE" SP mod-sequence-valzer
// (RFC 7162 section 7); store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
// (flag-list / (flag *(SP flag)))  (RFC 3501 section 9)
bool Parser::Store(Command& c) {
  StoreArgs a;
  TRY(Sp());
  TRY(SequenceSet(a.set));
  TRY(Sp());
  if (Take('(')) {
    std::string k;
    TRY(Keyword(k, "store modifier"));
    if (k != "UNCHANGEDSINCE") return Fail("unknown store modifier " + k);
    TRY(Sp());
    a.unchanged_since.emplace();
    TRY(ModSeq(*a.unchanged_since, true));
    TRY(Char(')'));
    TRY(Sp());
  }
  if (Take('+')) {
    a.mode = StoreMode::kAdd;
  } else if (Take('-')) {
    a.mode = StoreMode::kRemove;
  }
  std::string k;
  TRY(Keyword(k, "FLAGS"));
  if (k == "FLAGS.SILENT") {
    a.silent = true;
  } else if (k != "FLAGS") {
    return Fail("expected FLAGS, +FLAGS or -FLAGS");
  }
  TRY(Sp());
  if (At('(')) {
    TRY(FlagList(a.flags));
  } else {
    size_t n = 0;
    do {
      TRY(Item(n));
      TRY(Flag(a.flags.emplace_back()));
    } while (Take(' '));
  }
  c.args = std::move(a);
  return true;
}

// id = "ID" SP id-params-list; id-params-list = "(" #(string SP nstring) ")" / nil
// (RFC 2971 section 4)
bool Parser::Id(Command& c) {
  IdArgs a;
  TRY(Sp());
  if (!TakeWord("NIL")) {
    TRY(Char('('));
    a.params.emplace();
    size_t n = 0;
    if (!At(')')) {
      do {
        TRY(Item(n));
        auto& [key, value] = a.params->emplace_back();
        TRY(String(key));
        TRY(Sp());
        TRY(Nstring(value));
      } while (Take(' '));
    }
    TRY(Char(')'));
  }
  c.args = std::move(a);
  return true;
}

// setquota = "SETQUOTA" SP quota-root-name SP setquota-list; setquota-list = "("
// [setquota-resource *(SP setquota-resource)] ")"; setquota-resource =
// resource-name SP resource-limit; resource-limit = number64 (RFC 9208 section 9)
bool Parser::SetQuota(Command& c) {
  SetQuotaArgs a;
  TRY(Sp());
  TRY(Astring(a.root, "quota root"));
  TRY(Sp());
  TRY(Char('('));
  size_t n = 0;
  if (!At(')')) {
    do {
      TRY(Item(n));
      auto& [name, limit] = a.limits.emplace_back();
      TRY(Keyword(name, "resource name"));
      TRY(Sp());
      TRY(Number64(limit, INT64_MAX, "resource limit"));
    } while (Take(' '));
  }
  TRY(Char(')'));
  c.args = std::move(a);
  return true;
}

// entry = astring: a slash-separated path beginning with "/private/" or
// "/shared/" (RFC 5464 sections 3.2 and 5); "/private" and "/shared"
// themselves only where `allow_root` (GETMETADATA with DEPTH).
bool Parser::MetadataEntry(std::string& out, bool allow_root) {
  TRY(Astring(out, "entry name"));
  if (out.size() > kMaxMetadataEntryName) return Fail("entry name too long");
  out = AsciiLower(out);
  std::string_view e = out;
  bool root = e == "/private" || e == "/shared";
  if (!(e.starts_with("/private/") || e.starts_with("/shared/") || (allow_root && root))) {
    return Fail("entry name must begin with /private/ or /shared/");
  }
  for (unsigned char ch : e) {
    if (ch < 0x20 || ch >= 0x7f || ch == '*' || ch == '%') return Fail("bad entry name");
  }
  if (e.find("//") != std::string_view::npos || e.back() == '/') return Fail("bad entry name");
  return true;
}

// getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries;
// getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")";
// maxsize-opt = "MAXSIZE" SP number; scope-opt = "DEPTH" SP ("0" / "1" /
// "infinity"); entries = entry / "(" entry *(SP entry) ")" (RFC 5464 section 5)
bool Parser::GetMetadata(Command& c) {
  GetMetadataArgs a;
  TRY(Sp());
  if (Take('(')) {
    size_t n = 0;
    bool depth_seen = false;
    do {
      TRY(Item(n));
      std::string k;
      TRY(Keyword(k, "GETMETADATA option"));
      TRY(Sp());
      if (k == "MAXSIZE" && !a.max_size) {
        uint64_t v = 0;
        TRY(Number64(v, UINT32_MAX, "MAXSIZE"));
        a.max_size = v;
      } else if (k == "DEPTH" && !depth_seen) {
        depth_seen = true;
        std::string_view d = Scan(IsAtomChar);
        if (d == "0") {
          a.depth = 0;
        } else if (d == "1") {
          a.depth = 1;
        } else if (EqualsIgnoreCase(d, "infinity")) {
          a.depth = -1;
        } else {
          return Fail("DEPTH is 0, 1 or infinity");
        }
      } else {
        return Fail("unknown GETMETADATA option " + k);
      }
    } while (Take(' '));
    TRY(Char(')'));
    TRY(Sp());
  }
  TRY(Mailbox(a.mailbox));
  TRY(Sp());
  if (Take('(')) {
    size_t n = 0;
    do {
      TRY(Item(n));
      TRY(MetadataEntry(a.entries.emplace_back(), true));
    } while (Take(' '));
    TRY(Char(')'));
  } else {
    TRY(MetadataEntry(a.entries.emplace_back(), true));
  }
  c.args = std::move(a);
  return true;
}

// setmetadata = "SETMETADATA" SP mailbox SP entry-values; entry-values = "("
// entry-value *(SP entry-value) ")"; entry-value = entry SP value;
// value = nstring / literal8  (RFC 5464 section 5)
bool Parser::SetMetadata(Command& c) {
  SetMetadataArgs a;
  TRY(Sp());
  TRY(Mailbox(a.mailbox));
  TRY(Sp());
  TRY(Char('('));
  size_t n = 0;
  do {
    TRY(Item(n));
    auto& [entry, value] = a.entries.emplace_back();
    TRY(MetadataEntry(entry, false));
    TRY(Sp());
    if (Take('~')) {
      if (!At('{')) return Fail("expected literal8");
      TRY(Literal(value.emplace(), /*allow_nul=*/true));
    } else {
      TRY(Nstring(value));
    }
  } while (Take(' '));
  TRY(Char(')'));
  c.args = std::move(a);
  return true;
}

struct NotifyEventEntry {
  const char* name;
  NotifyEvent event;
};
constexpr NotifyEventEntry kNotifyEvents[] = {
    {"MESSAGENEW", NotifyEvent::kMessageNew},
    {"MESSAGEEXPUNGE", NotifyEvent::kMessageExpunge},
    {"FLAGCHANGE", NotifyEvent::kFlagChange},
    {"ANNOTATIONCHANGE", NotifyEvent::kAnnotationChange},
    {"MAILBOXNAME", NotifyEvent::kMailboxName},
    {"SUBSCRIPTIONCHANGE", NotifyEvent::kSubscriptionChange},
    {"MAILBOXMETADATACHANGE", NotifyEvent::kMailboxMetadataChange},
    {"SERVERMETADATACHANGE", NotifyEvent::kServerMetadataChange},
};

bool IsMessageEvent(NotifyEvent e) {
  return e == NotifyEvent::kMessageNew || e == NotifyEvent::kMessageExpunge ||
         e == NotifyEvent::kFlagChange || e == NotifyEvent::kAnnotationChange;
}

// notify = "NOTIFY" SP (notify-set / notify-none); notify-none = "NONE";
// notify-set = "SET" [status-indicator] SP event-groups;
// status-indicator = SP "STATUS"; event-groups = event-group *(SP event-group)
// (RFC 5465 section 8).
bool Parser::Notify(Command& c) {
  NotifyArgs a;
  TRY(Sp());
  std::string k;
  TRY(Keyword(k, "NONE or SET"));
  if (k == "NONE") {
    a.none = true;
    c.args = std::move(a);
    return true;
  }
  if (k != "SET") return Fail("expected NONE or SET");
  TRY(Sp());
  if (TakeWord("STATUS")) {
    a.status = true;
    TRY(Sp());
  }
  size_t n = 0;
  bool selected = false;
  do {
    TRY(Item(n));
    NotifyGroup& g = a.groups.emplace_back();
    TRY(NotifyGroupP(g));
    bool is_selected =
        g.filter == NotifyFilter::kSelected || g.filter == NotifyFilter::kSelectedDelayed;
    // Section 6.1: one filter for the selected mailbox, with message events only.
    if (is_selected && selected) return Fail("SELECTED or SELECTED-DELAYED given twice");
    selected = selected || is_selected;
    for (NotifyEvent e : g.events) {
      if (is_selected && !IsMessageEvent(e)) {
        return Fail(std::string(NotifyEventName(e)) +
                    " can not be used with SELECTED or SELECTED-DELAYED");
      }
    }
    // Section 5: "If one of MessageNew or MessageExpunge is specified, then
    // both events MUST be specified"; FlagChange and AnnotationChange need them.
    bool added = g.Has(NotifyEvent::kMessageNew), gone = g.Has(NotifyEvent::kMessageExpunge);
    if (added != gone) return Fail("MessageNew and MessageExpunge must be given together");
    if ((g.Has(NotifyEvent::kFlagChange) || g.Has(NotifyEvent::kAnnotationChange)) && !added) {
      return Fail("FlagChange and AnnotationChange need MessageNew and MessageExpunge");
    }
    if (!g.fetch.empty() && !is_selected) {
      return Fail("MessageNew fetch attributes only apply to the selected mailbox");
    }
  } while (Take(' '));
  c.args = std::move(a);
  return true;
}

// event-group = "(" filter-mailboxes SP events ")"
// filter-mailboxes = "selected" / "selected-delayed" / "inboxes" / "personal" /
//   "subscribed" / ("subtree" SP one-or-more-mailbox) / ("mailboxes" SP
//   one-or-more-mailbox); one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"
// events = ("(" event *(SP event) ")") / "NONE"; event = message-event /
//   mailbox-event / user-event / event-ext; MessageNew [SP "(" fetch-att
//   *(SP fetch-att) ")"] (RFC 5465 section 8).
bool Parser::NotifyGroupP(NotifyGroup& g) {
  TRY(Char('('));
  std::string f;
  TRY(Keyword(f, "mailbox filter"));
  if (f == "SELECTED") {
    g.filter = NotifyFilter::kSelected;
  } else if (f == "SELECTED-DELAYED") {
    g.filter = NotifyFilter::kSelectedDelayed;
  } else if (f == "INBOXES") {
    g.filter = NotifyFilter::kInboxes;
  } else if (f == "PERSONAL") {
    g.filter = NotifyFilter::kPersonal;
  } else if (f == "SUBSCRIBED") {
    g.filter = NotifyFilter::kSubscribed;
  } else if (f == "SUBTREE" || f == "MAILBOXES") {
    g.filter = f == "SUBTREE" ? NotifyFilter::kSubtree : NotifyFilter::kMailboxes;
    TRY(Sp());
    size_t n = 0;
    if (Take('(')) {
      do {
        TRY(Item(n));
        TRY(Mailbox(g.mailboxes.emplace_back()));
      } while (Take(' '));
      TRY(Char(')'));
    } else {
      TRY(Mailbox(g.mailboxes.emplace_back()));
    }
  } else {
    return Fail("unknown mailbox filter " + f);
  }
  TRY(Sp());
  if (TakeWord("NONE")) return Char(')');
  TRY(Char('('));
  size_t n = 0;
  do {
    TRY(Item(n));
    std::string e;
    TRY(Keyword(e, "event"));
    auto known = std::find_if(std::begin(kNotifyEvents), std::end(kNotifyEvents),
                              [&e](const NotifyEventEntry& x) { return e == x.name; });
    if (known == std::end(kNotifyEvents)) {
      g.unknown.push_back(std::move(e));
      continue;
    }
    if (g.Has(known->event)) return Fail("event " + e + " given twice");
    g.events.push_back(known->event);
    if (known->event == NotifyEvent::kMessageNew && At(' ') && PeekAt(1) == '(') {
      TRY(Sp());
      TRY(Char('('));
      size_t m = 0;
      do {
        TRY(Item(m));
        TRY(FetchAttP(g.fetch, false));
      } while (Take(' '));
      TRY(Char(')'));
    }
  } while (Take(' '));
  TRY(Char(')'));
  return Char(')');
}

#undef TRY

}  // namespace

const char* NotifyEventName(NotifyEvent e) {
  switch (e) {
    case NotifyEvent::kMessageNew:
      return "MessageNew";
    case NotifyEvent::kMessageExpunge:
      return "MessageExpunge";
    case NotifyEvent::kFlagChange:
      return "FlagChange";
    case NotifyEvent::kAnnotationChange:
      return "AnnotationChange";
    case NotifyEvent::kMailboxName:
      return "MailboxName";
    case NotifyEvent::kSubscriptionChange:
      return "SubscriptionChange";
    case NotifyEvent::kMailboxMetadataChange:
      return "MailboxMetadataChange";
    case NotifyEvent::kServerMetadataChange:
      return "ServerMetadataChange";
  }
  return "";
}

const char* VerbName(Verb v) {
  for (const auto& e : kVerbs) {
    if (e.verb == v) return e.name;
  }
  return "?";
}

const char* SortFieldName(SortField f) {
  for (const auto& e : kSortFields) {
    if (e.field == f) return e.name;
  }
  return "?";
}

const char* StatusItemName(StatusItem item) {
  for (const auto& e : kStatusItems) {
    if (e.item == item) return e.name;
  }
  return "?";
}

// tag = 1*<any ASTRING-CHAR except "+"> (RFC 3501 section 9)
std::optional<std::string> ParseTag(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && IsAstringChar(static_cast<unsigned char>(text[i])) && text[i] != '+') {
    ++i;
  }
  if (i == 0 || (i < text.size() && text[i] != ' ')) return std::nullopt;
  return std::string(text.substr(0, i));
}

bool UsesSequenceNumbers(const Command& c) {
  switch (c.verb) {
    case Verb::kFetch:
    case Verb::kStore:
    case Verb::kCopy:
    case Verb::kMove:
      return !c.uid;
    case Verb::kSearch:
    case Verb::kSort:
    case Verb::kThread: {
      if (!c.uid) return true;
      std::vector<const SearchKey*> stack{&c.As<SearchArgs>().key};
      while (!stack.empty()) {
        const SearchKey* k = stack.back();
        stack.pop_back();
        if (k->op == SearchOp::kSequenceSet) return true;
        for (const auto& child : k->children) stack.push_back(&child);
      }
      return false;
    }
    default:
      return false;
  }
}

bool HasModSeqKey(const SearchKey& key) {
  std::vector<const SearchKey*> stack{&key};
  while (!stack.empty()) {
    const SearchKey* k = stack.back();
    stack.pop_back();
    if (k->op == SearchOp::kModSeq) return true;
    for (const auto& child : k->children) stack.push_back(&child);
  }
  return false;
}

Result<Command> ParseCommand(std::string_view text, const Limits& limits) {
  Command cmd;
  Parser p(text, limits);
  if (!p.Run(cmd)) return p.error();
  return cmd;
}

Status CheckCommandPrefix(std::string_view prefix, const Limits& limits) {
  Command cmd;
  Parser p(prefix, limits);
  if (p.Run(cmd) || p.incomplete()) return Ok();
  return p.error();
}

}  // namespace hato::imap
