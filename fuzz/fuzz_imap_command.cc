// libFuzzer target for the IMAP protocol layer (src/imap/proto/): the
// incremental CommandReader, ParseCommand/FormatCommand, sequence sets,
// modified UTF-7 and the date-time helpers.
//
// Invariants:
//   * nothing crashes, hangs or trips ASan/UBSan, with limits derived from the
//     input (so small limits, literal refusals and discards are exercised);
//   * the reader's events (commands, continuation requests, errors with their
//     discarded byte counts; plain lines after IDLE/AUTHENTICATE) are the same
//     whether the input is fed whole, split at two data-derived points, in
//     data-derived chunks or byte by byte (for a close, only the fact and kind);
//   * after each command, CommandReader::PendingUsesSequenceNumbers() is true
//     whenever a later command of the input uses sequence numbers;
//   * a parsed command, formatted canonically, re-parses and formats to the
//     same text; its verb/uid/tag survive;
//   * every sequence set resolves to sorted, disjoint ranges whose Contains()
//     agrees with a brute-force evaluation; IdSet::ToString round-trips;
//   * DecodeMailboxUtf7(x) ok => EncodeMailboxUtf7(result) == x, and
//     EncodeMailboxUtf7(x) ok => DecodeMailboxUtf7(result) == x;
//   * ParseDateTime(x) ok => FormatDateTime re-parses equal and survives a trip
//     through Unix time;
//   * SORT/THREAD (imap/proto/sort.h) over messages derived from the input's
//     lines (subject, Date, Message-ID and References from the line): the
//     base subject is a fixed point, SortOrder is a permutation and both
//     thread lists name every message exactly once.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "imap/proto/command.h"
#include "imap/proto/reader.h"
#include "imap/proto/response.h"
#include "imap/proto/seqset.h"
#include "imap/proto/sort.h"
#include "imap/proto/utf7.h"

namespace {

using hato::fuzz::Hash;
using namespace hato::imap;  // NOLINT: a fuzz driver

void CheckSet(const SeqSet& s, uint64_t h) {
  uint32_t star = static_cast<uint32_t>(h % 70);
  IdSet r = s.Resolve(star);
  const auto& rs = r.ranges();
  for (size_t i = 0; i < rs.size(); ++i) {
    FUZZ_CHECK(rs[i].first >= 1 && rs[i].first <= rs[i].last);
    if (i > 0) FUZZ_CHECK(static_cast<uint64_t>(rs[i - 1].last) + 1 < rs[i].first);
  }
  for (uint32_t id = 0; id <= 80; ++id) {
    bool want = false;
    for (const auto& g : s.ranges) {
      uint32_t a = g.first == kStar ? star : g.first;
      uint32_t b = g.last == kStar ? star : g.last;
      if (a > b) std::swap(a, b);
      if (id >= 1 && id >= a && id <= b) want = true;
    }
    FUZZ_CHECK(r.Contains(id) == want);
  }
  // The canonical text of a resolved set re-parses to the same set.
  if (!r.empty()) {
    auto again = ParseCommand("t UID EXPUNGE " + r.ToString());
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->As<ExpungeArgs>().set.Resolve(star) == r);
  }
}

void CheckCommand(const Command& c, const Limits& limits, uint64_t h) {
  std::string canon = FormatCommand(c);
  Limits relaxed = limits;  // formatting may turn quoted 8-bit strings into literals
  relaxed.max_literals = SIZE_MAX;
  relaxed.max_literal = UINT64_MAX;
  relaxed.max_other_literal = UINT64_MAX;
  auto again = ParseCommand(canon, relaxed);
  if (!again.ok()) {
    hato::fuzz::Fail(__FILE__, __LINE__, "canonical form does not re-parse", canon,
                     again.error().message);
  }
  FUZZ_CHECK(again->verb == c.verb && again->uid == c.uid && again->tag == c.tag);
  FUZZ_CHECK_EQ_STR(FormatCommand(*again), canon);
  if (const auto* e = std::get_if<ExpungeArgs>(&c.args)) CheckSet(e->set, h);
  if (const auto* f = std::get_if<FetchArgs>(&c.args)) CheckSet(f->set, h);
  if (const auto* s = std::get_if<StoreArgs>(&c.args)) CheckSet(s->set, h);
  if (const auto* m = std::get_if<CopyArgs>(&c.args)) CheckSet(m->set, h);
}

std::string Describe(const ReadResult& ev) {
  if (const auto* c = std::get_if<Command>(&ev)) return "C " + FormatCommand(*c);
  if (const auto* n = std::get_if<NeedContinuation>(&ev)) return "+ " + std::to_string(n->size);
  if (const auto* e = std::get_if<ReadError>(&ev)) {
    std::string s = "E " + e->tag.value_or("*") + " " + std::to_string(static_cast<int>(e->kind));
    if (e->close) return s + " close";
    return s + " " + std::to_string(e->discarded) + (e->synchronizing ? " sync" : "") + " " +
           e->message;
  }
  return "?";
}

// Drives a reader the way a session would: Next() until NeedMore; after IDLE
// or AUTHENTICATE, one NextLine() (retried after more input).
class Driver {
 public:
  explicit Driver(const Limits& limits) : reader_(limits) {}

  void Feed(std::string_view chunk) {
    reader_.Feed(chunk);
    for (int guard = 0; guard < 100000 && !dead_; ++guard) {
      if (want_line_) {
        LineResult l = reader_.NextLine();
        if (std::holds_alternative<NeedMore>(l)) return;
        want_line_ = false;
        if (const auto* line = std::get_if<Line>(&l)) {
          events_.push_back("L " + line->text);
        } else {
          const auto& t = std::get<LineTooLong>(l);
          events_.push_back(t.close ? "T close" : "T " + std::to_string(t.discarded));
          dead_ = t.close;
        }
        continue;
      }
      ReadResult ev = reader_.Next();
      if (std::holds_alternative<NeedMore>(ev)) return;
      events_.push_back(Describe(ev));
      if (const auto* c = std::get_if<Command>(&ev)) {
        commands_.push_back(*c);
        pending_seq_.push_back(reader_.PendingUsesSequenceNumbers());
        want_line_ = c->verb == Verb::kIdle || c->verb == Verb::kAuthenticate;
      }
      if (const auto* e = std::get_if<ReadError>(&ev)) dead_ = e->close;
    }
    FUZZ_CHECK(dead_);  // the guard only trips on a dead reader or a livelock
  }

  const std::vector<std::string>& events() const { return events_; }
  const std::vector<Command>& commands() const { return commands_; }
  // PendingUsesSequenceNumbers() right after each command was returned.
  const std::vector<bool>& pending_seq() const { return pending_seq_; }

 private:
  CommandReader reader_;
  std::vector<std::string> events_;
  std::vector<Command> commands_;
  std::vector<bool> pending_seq_;
  bool want_line_ = false;
  bool dead_ = false;
};

// Every number of a thread list, in order.
std::vector<uint32_t> ThreadNumbers(const std::string& t) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < t.size();) {
    if (t[i] < '0' || t[i] > '9') {
      FUZZ_CHECK(t[i] == '(' || t[i] == ')' || t[i] == ' ');
      ++i;
      continue;
    }
    uint32_t n = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9')
      n = n * 10 + static_cast<uint32_t>(t[i++] - '0');
    out.push_back(n);
  }
  return out;
}

void CheckSortAndThreads(std::string_view in, uint64_t h) {
  std::vector<SortInput> msgs;
  size_t pos = 0;
  while (pos <= in.size() && msgs.size() < 200) {
    size_t end = in.find('\n', pos);
    if (end == std::string_view::npos) end = in.size();
    std::string_view line = in.substr(pos, end - pos);
    SortInput m;
    m.seq = m.number = static_cast<uint32_t>(msgs.size() + 1);
    m.subject = BaseSubject(line, &m.reply);
    FUZZ_CHECK_EQ_STR(BaseSubject(m.subject), m.subject);
    m.date = ParseSentDate(line).value_or(static_cast<int64_t>(Hash(line) % 1000));
    auto ids = ParseMessageIds(line);
    if (!ids.empty()) m.message_id = ids.front();
    m.references.assign(ids.size() > 1 ? ids.begin() + 1 : ids.end(), ids.end());
    if (h & 4) m.message_id = "<" + std::to_string(Hash(line) % 7) + "@x>";
    if (h & 8 && msgs.size() > 0)
      m.references.push_back("<" + std::to_string(Hash(line, 1) % 7) + "@x>");
    m.from = SortFold(line.substr(0, std::min<size_t>(line.size(), 8)));
    msgs.push_back(std::move(m));
    pos = end + 1;
  }
  std::vector<SortCriterion> criteria = {{SortField::kSubject, (h & 16) != 0},
                                         {SortField::kFrom, false},
                                         {SortField::kDate, (h & 32) != 0}};
  auto order = SortOrder(msgs, criteria);
  std::vector<size_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) FUZZ_CHECK(sorted[i] == i);
  for (const std::string& t : {ThreadReferences(msgs), ThreadOrderedSubject(msgs)}) {
    auto numbers = ThreadNumbers(t);
    std::sort(numbers.begin(), numbers.end());
    FUZZ_CHECK(numbers.size() == msgs.size());
    for (size_t i = 0; i < numbers.size(); ++i) FUZZ_CHECK(numbers[i] == i + 1);
  }
}

void CheckSame(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a == b) return;
  std::string ja, jb;
  for (const auto& s : a) ja += s + "\n";
  for (const auto& s : b) jb += s + "\n";
  hato::fuzz::Fail(__FILE__, __LINE__, "events differ with chunking", ja, jb);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint64_t h = Hash(in);

  // Limits from the input: sometimes defaults, sometimes tiny.
  Limits limits;
  if (h & 1) {
    limits.max_line = 16 + (h >> 8) % 256;
    limits.max_literal = (h >> 16) % 300;
    limits.max_command = 64 + (h >> 24) % 1024;
    limits.max_literals = 1 + (h >> 32) % 6;
    limits.max_depth = 1 + (h >> 36) % 8;
    limits.max_seq_ranges = 1 + (h >> 40) % 16;
    limits.max_search_keys = 1 + (h >> 44) % 32;
    limits.max_list_items = 1 + (h >> 48) % 32;
    limits.max_discard = (h >> 52) % 2048;
    if (h & 2) limits.max_other_literal = (h >> 56) % 300;
  }

  // 1. Whole vs split feeding.
  Driver whole(limits);
  whole.Feed(in);
  for (const Command& c : whole.commands()) CheckCommand(c, limits, h);
  // The reader's look-ahead (issue 20) never misses a later command that uses
  // sequence numbers, when everything was framed as commands.
  bool plain = true;
  for (const auto& e : whole.events()) plain = plain && (e[0] == 'C' || e[0] == '+');
  for (const Command& c : whole.commands()) {
    plain = plain && c.verb != Verb::kIdle && c.verb != Verb::kAuthenticate;
  }
  if (plain) {
    const auto& cmds = whole.commands();
    for (size_t i = 0; i < cmds.size(); ++i) {
      bool later = false;
      for (size_t j = i + 1; j < cmds.size(); ++j) later = later || UsesSequenceNumbers(cmds[j]);
      if (later) FUZZ_CHECK(whole.pending_seq()[i]);
    }
  }

  size_t a = size ? (h >> 3) % (size + 1) : 0;
  size_t b = size ? (h >> 17) % (size + 1) : 0;
  if (a > b) std::swap(a, b);
  Driver split(limits);
  split.Feed(in.substr(0, a));
  split.Feed(in.substr(a, b - a));
  split.Feed(in.substr(b));
  CheckSame(whole.events(), split.events());

  Driver chunks(limits);
  size_t chunk = 1 + (h >> 29) % 13;
  for (size_t i = 0; i < size; i += chunk) chunks.Feed(in.substr(i, chunk));
  CheckSame(whole.events(), chunks.events());

  if (size <= 512) {
    Driver bytes(limits);
    for (size_t i = 0; i < size; ++i) bytes.Feed(in.substr(i, 1));
    CheckSame(whole.events(), bytes.events());
  }

  // 2. The input as one framed command.
  std::string_view text = in;
  if (text.ends_with("\r\n")) text.remove_suffix(2);
  auto direct = ParseCommand(text, limits);
  if (direct.ok()) {
    CheckCommand(*direct, limits, h);
  } else {
    auto k = direct.error().kind;
    FUZZ_CHECK(k == hato::ErrorKind::kInvalid || k == hato::ErrorKind::kTooLarge);
  }
  (void)CheckCommandPrefix(in, limits);

  // 3. Mailbox names.
  auto dec = DecodeMailboxUtf7(in);
  if (dec.ok()) {
    auto enc = EncodeMailboxUtf7(*dec);
    FUZZ_CHECK(enc.ok());
    FUZZ_CHECK_EQ_STR(*enc, in);
  }
  auto enc = EncodeMailboxUtf7(in);
  if (enc.ok()) {
    auto back = DecodeMailboxUtf7(*enc);
    if (!back.ok()) {
      hato::fuzz::Fail(__FILE__, __LINE__, "encoded name does not decode", *enc,
                       back.error().message);
    }
    FUZZ_CHECK_EQ_STR(*back, in);
  }

  // 4. Dates.
  auto dt = ParseDateTime(in);
  if (dt.ok()) {
    std::string f = FormatDateTime(*dt);
    auto again = ParseDateTime(f);
    FUZZ_CHECK(again.ok() && *again == *dt);
    DateTime u = FromUnixTime(ToUnixTime(*dt), dt->zone_minutes);
    // Leap seconds (":60") roll over into the next minute; everything else is exact.
    if (dt->second < 60) FUZZ_CHECK(u == *dt);
  }
  auto d = ParseDate(in);
  if (d.ok()) {
    auto again = ParseDate(FormatDate(*d));
    FUZZ_CHECK(again.ok() && *again == *d);
  }

  // 5. SORT and THREAD over messages made of the input's lines.
  CheckSortAndThreads(in, h);
  return 0;
}
