// The Sieve interpreter: a command/test table (data), argument binding
// shared by Check and Run, the comparators and match types (RFC 5228
// section 2.7, RFC 4790, RFC 5231), and one function per command and test.
#include "sieve/interpret.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "base/digest.h"
#include "base/strings.h"
#include "mime/header.h"
#include "mime/message.h"

namespace hato::sieve {
namespace {

// ---- The table: which tags and arguments each command and test takes ----

enum class TagArg { kNone, kString, kNumber, kStrings };

struct TagSpec {
  const char* tag;
  TagArg arg;
  const char* capability;  // "" = base
  const char* group;       // mutually exclusive tags share a group ("" = none)
};

// Positional signature: S = one string, L = string list, N = number,
// T = test(s) (if/not/anyof), "?" makes the rest optional.
struct Spec {
  const char* name;
  bool test;
  const char* capability;
  const char* positional;
  std::vector<TagSpec> tags;
};

const std::vector<TagSpec> kCompare = {
    {"comparator", TagArg::kString, "", "comparator"},
    {"is", TagArg::kNone, "", "match"},
    {"contains", TagArg::kNone, "", "match"},
    {"matches", TagArg::kNone, "", "match"},
    {"count", TagArg::kString, "relational", "match"},
    {"value", TagArg::kString, "relational", "match"},
};
const std::vector<TagSpec> kAddressPart = {
    {"all", TagArg::kNone, "", "part"},
    {"localpart", TagArg::kNone, "", "part"},
    {"domain", TagArg::kNone, "", "part"},
    {"user", TagArg::kNone, "subaddress", "part"},
    {"detail", TagArg::kNone, "subaddress", "part"},
};
const std::vector<TagSpec> kIndex = {
    {"index", TagArg::kNumber, "index", ""},
    {"last", TagArg::kNone, "index", ""},
};

std::vector<TagSpec> Join(std::initializer_list<std::vector<TagSpec>> parts) {
  std::vector<TagSpec> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const std::vector<Spec>& Table() {
  static const std::vector<Spec> table = {
      // Control and actions (RFC 5228 sections 3 and 4).
      {"require", false, "", "L", {}},
      {"if", false, "", "T", {}},
      {"elsif", false, "", "T", {}},
      {"else", false, "", "", {}},
      {"stop", false, "", "", {}},
      {"keep", false, "", "", {{"flags", TagArg::kStrings, "imap4flags", ""}}},
      {"discard", false, "", "", {}},
      {"fileinto",
       false,
       "fileinto",
       "S",
       {{"copy", TagArg::kNone, "copy", ""},
        {"flags", TagArg::kStrings, "imap4flags", ""},
        {"create", TagArg::kNone, "mailbox", ""}}},
      {"redirect", false, "", "S", {{"copy", TagArg::kNone, "copy", ""}}},
      {"reject", false, "reject", "S", {}},
      {"ereject", false, "ereject", "S", {}},
      {"setflag", false, "imap4flags", "L?L", {}},
      {"addflag", false, "imap4flags", "L?L", {}},
      {"removeflag", false, "imap4flags", "L?L", {}},
      {"set",
       false,
       "variables",
       "SS",
       {{"lower", TagArg::kNone, "", "case"},
        {"upper", TagArg::kNone, "", "case"},
        {"lowerfirst", TagArg::kNone, "", "first"},
        {"upperfirst", TagArg::kNone, "", "first"},
        {"quotewildcard", TagArg::kNone, "", "quote"},
        {"length", TagArg::kNone, "", "length"}}},
      {"vacation",
       false,
       "vacation",
       "S",
       {{"days", TagArg::kNumber, "", "period"},
        {"seconds", TagArg::kNumber, "vacation-seconds", "period"},
        {"subject", TagArg::kString, "", ""},
        {"from", TagArg::kString, "", ""},
        {"addresses", TagArg::kStrings, "", ""},
        {"mime", TagArg::kNone, "", ""},
        {"handle", TagArg::kString, "", ""}}},
      {"include",
       false,
       "include",
       "S",
       {{"personal", TagArg::kNone, "", "location"},
        {"global", TagArg::kNone, "", "location"},
        {"once", TagArg::kNone, "", ""},
        {"optional", TagArg::kNone, "", ""}}},
      {"return", false, "include", "", {}},
      {"global", false, "include", "L", {}},
      {"addheader", false, "editheader", "SS", {{"last", TagArg::kNone, "", ""}}},
      {"deleteheader", false, "editheader", "S?L", Join({kCompare, kIndex})},
      // Tests (RFC 5228 section 5 and the extensions).
      {"address", true, "", "LL", Join({kCompare, kAddressPart, kIndex})},
      {"envelope", true, "envelope", "LL", Join({kCompare, kAddressPart})},
      {"header", true, "", "LL", Join({kCompare, kIndex})},
      {"exists", true, "", "L", {}},
      {"size",
       true,
       "",
       "N",
       {{"over", TagArg::kNone, "", "size"}, {"under", TagArg::kNone, "", "size"}}},
      {"true", true, "", "", {}},
      {"false", true, "", "", {}},
      {"not", true, "", "T", {}},
      {"anyof", true, "", "T", {}},
      {"allof", true, "", "T", {}},
      {"body", true, "body", "L",
       Join({kCompare,
             {{"raw", TagArg::kNone, "", "transform"},
              {"content", TagArg::kStrings, "", "transform"},
              {"text", TagArg::kNone, "", "transform"}}})},
      {"string", true, "variables", "LL", kCompare},
      {"hasflag", true, "imap4flags", "L?L", kCompare},
      {"date", true, "date", "SSL",
       Join(
           {kCompare,
            kIndex,
            {{"zone", TagArg::kString, "", "zone"}, {"originalzone", TagArg::kNone, "", "zone"}}})},
      {"currentdate", true, "date", "SL",
       Join({kCompare, {{"zone", TagArg::kString, "", "zone"}}})},
      {"mailboxexists", true, "mailbox", "L", {}},
      {"duplicate",
       true,
       "duplicate",
       "",
       {{"handle", TagArg::kString, "", ""},
        {"header", TagArg::kString, "", "id"},
        {"uniqueid", TagArg::kString, "", "id"},
        {"seconds", TagArg::kNumber, "", ""},
        {"last", TagArg::kNone, "", ""}}},
      {"spamtest", true, "spamtest", "S",
       Join({kCompare, {{"percent", TagArg::kNone, "spamtestplus", ""}}})},
      {"virustest", true, "virustest", "S", kCompare},
  };
  return table;
}

const Spec* FindSpec(const std::string& name, bool test) {
  for (const auto& s : Table()) {
    if (s.test == test && name == s.name) return &s;
  }
  return nullptr;
}

// An argument list bound to its spec: tags by name, positional in order.
// Bound again at every run of a test (bench/sieve_run.sh): a flat list of
// views into the script's own arguments, so binding allocates (almost)
// nothing; a test has a handful of tags at most.
struct Bound {
  std::vector<std::pair<std::string_view, const Argument*>> tags;  // tag -> its value or nullptr
  std::vector<const Argument*> positional;
  // The comparator and match type its tags give (RFC 5228 section 2.7), read
  // once here rather than from the tags at every run of a prepared test.
  std::string_view comparator = "i;ascii-casemap";
  std::string_view match = "is";          // is contains matches count value
  const Argument* relational = nullptr;   // the operator of :count / :value
  std::string_view address_part = "all";  // all localpart domain user detail (RFC 5233)
  bool Has(std::string_view t) const {
    return std::any_of(tags.begin(), tags.end(), [&](const auto& e) { return e.first == t; });
  }
  const Argument* Tag(std::string_view t) const {
    for (const auto& e : tags) {
      if (e.first == t) return e.second;
    }
    return nullptr;
  }
};

Error At(int line, const std::string& what) {
  return Err(ErrorKind::kInvalid, "line " + std::to_string(line) + ": " + what);
}

Result<Bound> Bind(const Spec& spec, const std::vector<Argument>& args, size_t ntests, int line,
                   const std::set<std::string>* caps) {
  Bound b;
  std::vector<std::pair<std::string_view, std::string_view>> groups;  // group -> the tag taken
  for (size_t i = 0; i < args.size(); ++i) {
    const Argument& a = args[i];
    if (a.kind != Argument::Kind::kTag) {
      b.positional.push_back(&a);
      continue;
    }
    if (!b.positional.empty()) return At(line, "tag :" + a.tag + " after positional arguments");
    const TagSpec* ts = nullptr;
    for (const auto& t : spec.tags) {
      if (a.tag == t.tag) ts = &t;
    }
    if (ts == nullptr) return At(line, std::string(spec.name) + ": unknown tag :" + a.tag);
    if (caps && *ts->capability && !caps->count(ts->capability)) {
      return At(line, ":" + a.tag + " needs require \"" + ts->capability + "\"");
    }
    if (b.Has(a.tag)) return At(line, "tag :" + a.tag + " given twice");
    if (*ts->group) {
      for (const auto& [group, taken] : groups) {
        if (group == ts->group) {
          return At(line, ":" + a.tag + " conflicts with :" + std::string(taken));
        }
      }
      groups.emplace_back(ts->group, a.tag);
    }
    const Argument* value = nullptr;
    if (ts->arg != TagArg::kNone) {
      if (i + 1 >= args.size()) return At(line, ":" + a.tag + " needs an argument");
      value = &args[++i];
      bool ok = ts->arg == TagArg::kNumber   ? value->kind == Argument::Kind::kNumber
                : ts->arg == TagArg::kString ? value->kind == Argument::Kind::kStrings &&
                                                   value->strings.size() == 1 && !value->list
                                             : value->kind == Argument::Kind::kStrings;
      if (!ok) return At(line, ":" + a.tag + " has the wrong kind of argument");
    }
    b.tags.emplace_back(a.tag, value);
  }
  // Positional signature.
  std::string_view sig = spec.positional;
  bool wants_tests = !sig.empty() && sig.back() == 'T';
  if (wants_tests) sig.remove_suffix(1);
  size_t optional_from = sig.find('?');
  std::string kinds;
  for (char c : sig) {
    if (c != '?') kinds += c;
  }
  size_t min = optional_from == std::string_view::npos ? kinds.size() : optional_from;
  if (b.positional.size() < min || b.positional.size() > kinds.size()) {
    return At(line, std::string(spec.name) + ": wrong number of arguments");
  }
  // With fewer arguments than the signature the optional ones are the first
  // ones (setflag [<variablename>] <list>): align from the end.
  size_t offset = kinds.size() - b.positional.size();
  for (size_t i = 0; i < b.positional.size(); ++i) {
    char k = kinds[i + offset];
    const Argument& a = *b.positional[i];
    bool ok = k == 'N'   ? a.kind == Argument::Kind::kNumber
              : k == 'S' ? a.kind == Argument::Kind::kStrings && a.strings.size() == 1 && !a.list
                         : a.kind == Argument::Kind::kStrings;
    if (!ok)
      return At(line, std::string(spec.name) + ": argument " + std::to_string(i + 1) +
                          " has the wrong kind");
  }
  for (const auto& [tag, value] : b.tags) {
    if (tag == "comparator") {
      b.comparator = value->strings[0];
    } else if (tag == "is" || tag == "contains" || tag == "matches") {
      b.match = tag;
    } else if (tag == "count" || tag == "value") {
      b.match = tag;
      b.relational = value;
    } else if (tag == "all" || tag == "localpart" || tag == "domain" || tag == "user" ||
               tag == "detail") {
      b.address_part = tag;
    }
  }
  std::string name = spec.name;
  if (wants_tests) {
    if (name == "not" || name == "if" || name == "elsif") {
      if (ntests != 1) return At(line, name + " takes one test");
    } else if (ntests == 0) {
      return At(line, name + " needs a test list");
    }
  } else if (ntests != 0) {
    return At(line, name + " takes no test");
  }
  return b;
}

}  // namespace

// The bindings of a Prepared script: each test and command node to its spec
// and bound arguments (pointers into the script, which Prepared owns).
struct Prepared::Bindings {
  std::unordered_map<const void*, std::pair<const Spec*, Bound>> nodes;
};

namespace {

void BindTests(const std::vector<Test>& tests, Prepared::Bindings& out) {
  for (const auto& t : tests) {
    if (const Spec* spec = FindSpec(t.name, true)) {
      if (auto b = Bind(*spec, t.args, t.tests.size(), t.line, nullptr)) {
        out.nodes.emplace(&t, std::make_pair(spec, std::move(*b)));
      }
    }
    BindTests(t.tests, out);
  }
}

void BindCommands(const std::vector<Command>& cmds, Prepared::Bindings& out) {
  for (const auto& c : cmds) {
    if (const Spec* spec = FindSpec(c.name, false)) {
      if (auto b = Bind(*spec, c.args, c.tests.size(), c.line, nullptr)) {
        out.nodes.emplace(&c, std::make_pair(spec, std::move(*b)));
      }
    }
    BindTests(c.tests, out);
    BindCommands(c.block, out);
  }
}

// ---- Check ----

const std::set<std::string>& KnownCapabilities() {
  static const std::set<std::string> caps = {"fileinto",
                                             "envelope",
                                             "encoded-character",
                                             "reject",
                                             "ereject",
                                             "imap4flags",
                                             "copy",
                                             "body",
                                             "variables",
                                             "vacation",
                                             "vacation-seconds",
                                             "relational",
                                             "comparator-i;ascii-numeric",
                                             "comparator-i;octet",
                                             "comparator-i;ascii-casemap",
                                             "subaddress",
                                             "date",
                                             "index",
                                             "mailbox",
                                             "include",
                                             "editheader",
                                             "duplicate",
                                             "spamtest",
                                             "spamtestplus",
                                             "virustest"};
  return caps;
}

Status CheckTest(const Test& t, const std::set<std::string>& caps) {
  const Spec* spec = FindSpec(t.name, true);
  if (spec == nullptr) return At(t.line, "unknown test \"" + t.name + "\"");
  if (*spec->capability && !caps.count(spec->capability)) {
    return At(t.line, t.name + " needs require \"" + spec->capability + "\"");
  }
  auto b = Bind(*spec, t.args, t.tests.size(), t.line, &caps);
  if (!b) return b.error();
  if (auto c = b->Tag("comparator")) {
    const std::string& name = c->strings[0];
    if (name != "i;ascii-casemap" && name != "i;octet" &&
        !(name == "i;ascii-numeric" && caps.count("comparator-i;ascii-numeric"))) {
      return At(t.line, "comparator \"" + name + "\" not available");
    }
  }
  for (const char* rel : {"count", "value"}) {
    if (auto r = b->Tag(rel)) {
      static const char* ops[] = {"gt", "ge", "lt", "le", "eq", "ne"};
      std::string op = AsciiLower(r->strings[0]);
      if (std::none_of(std::begin(ops), std::end(ops), [&](const char* o) { return op == o; })) {
        return At(t.line, "bad relational operator \"" + r->strings[0] + "\"");
      }
    }
  }
  if (b->Has("last") && !b->Has("index") && t.name != "duplicate") {
    return At(t.line, ":last needs :index");
  }
  for (const auto& sub : t.tests) {
    if (auto st = CheckTest(sub, caps); !st) return st;
  }
  return Ok();
}

Status CheckBlock(const std::vector<Command>& cmds, std::set<std::string>& caps, bool top) {
  bool requires_allowed = top;
  std::string prev;
  for (const auto& c : cmds) {
    if (c.name == "require") {
      if (!requires_allowed) return At(c.line, "require must come before other commands");
      if (c.args.size() != 1 || c.args[0].kind != Argument::Kind::kStrings) {
        return At(c.line, "require takes a string list");
      }
      for (const auto& cap : c.args[0].strings) {
        if (!KnownCapabilities().count(cap)) {
          return At(c.line, "unsupported extension \"" + cap + "\"");
        }
        caps.insert(cap);
      }
      if (c.has_block) return At(c.line, "require takes no block");
      prev = c.name;
      continue;
    }
    requires_allowed = false;
    const Spec* spec = FindSpec(c.name, false);
    if (spec == nullptr) return At(c.line, "unknown command \"" + c.name + "\"");
    if (*spec->capability && !caps.count(spec->capability)) {
      return At(c.line, c.name + " needs require \"" + spec->capability + "\"");
    }
    bool control = c.name == "if" || c.name == "elsif" || c.name == "else";
    if ((c.name == "elsif" || c.name == "else") && prev != "if" && prev != "elsif") {
      return At(c.line, c.name + " without if");
    }
    if (control != c.has_block) {
      return At(c.line, control ? c.name + " needs a block" : c.name + " takes no block");
    }
    auto b = Bind(*spec, c.args, c.tests.size(), c.line, &caps);
    if (!b) return b.error();
    if (c.name == "deleteheader" && b->Has("last") && !b->Has("index")) {
      return At(c.line, ":last needs :index");
    }
    if (auto cmp = b->Tag("comparator")) {
      const std::string& name = cmp->strings[0];
      if (name != "i;ascii-casemap" && name != "i;octet" &&
          !(name == "i;ascii-numeric" && caps.count("comparator-i;ascii-numeric"))) {
        return At(c.line, "comparator \"" + name + "\" not available");
      }
    }
    for (const auto& t : c.tests) {
      if (auto st = CheckTest(t, caps); !st) return st;
    }
    if (c.has_block) {
      if (auto st = CheckBlock(c.block, caps, false); !st) return st;
    }
    prev = c.name;
  }
  return Ok();
}

// ---- Runtime ----

constexpr size_t kMaxWildcards = 256;  // per :matches key

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

// "+hhmm"/"-hhmm" to seconds east of UTC.
std::optional<int> ParseZone(std::string_view z) {
  if (z.size() != 5 || (z[0] != '+' && z[0] != '-')) return std::nullopt;
  for (size_t i = 1; i < 5; ++i) {
    if (z[i] < '0' || z[i] > '9') return std::nullopt;
  }
  int v = ((z[1] - '0') * 10 + (z[2] - '0')) * 3600 + ((z[3] - '0') * 10 + (z[4] - '0')) * 60;
  return z[0] == '-' ? -v : v;
}

// An RFC 5322 date-time (section 3.3, with the obsolete zones of 4.3).
std::optional<std::pair<int64_t, int>> ParseDateTime(std::string_view v) {
  std::string s;
  for (char c : v) s += (c == ',' ? ' ' : c);
  auto words = SplitWords(s);
  size_t i = 0;
  if (i < words.size() && !words[i].empty() && !(words[i][0] >= '0' && words[i][0] <= '9')) ++i;
  if (words.size() < i + 5) return std::nullopt;
  auto day = ParseUint(words[i]);
  static const char* months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  unsigned month = 0;
  for (unsigned k = 0; k < 12; ++k) {
    if (EqualsIgnoreCase(words[i + 1].substr(0, 3), months[k])) month = k + 1;
  }
  auto year = ParseUint(words[i + 2]);
  if (!day || !month || !year || *day < 1 || *day > 31) return std::nullopt;
  int64_t y = static_cast<int64_t>(*year);
  if (words[i + 2].size() <= 2) y += y < 50 ? 2000 : 1900;
  std::string_view t = words[i + 3];
  unsigned hms[3] = {0, 0, 0};
  for (int k = 0; k < 3 && !t.empty(); ++k) {
    size_t colon = t.find(':');
    auto n = ParseUint(t.substr(0, colon));
    if (!n || *n > 60) return std::nullopt;
    hms[k] = static_cast<unsigned>(*n);
    t = colon == std::string_view::npos ? std::string_view() : t.substr(colon + 1);
  }
  int zone = 0;
  if (auto z = ParseZone(words[i + 4])) {
    zone = *z;
  } else {
    static const struct {
      const char* n;
      int h;
    } named[] = {{"UT", 0},   {"GMT", 0},  {"EST", -5}, {"EDT", -4}, {"CST", -6},
                 {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
    for (const auto& n : named) {
      if (EqualsIgnoreCase(words[i + 4], n.n)) zone = n.h * 3600;
    }
  }
  int64_t local = DaysFromCivil(y, month, static_cast<unsigned>(*day)) * 86400 + hms[0] * 3600 +
                  hms[1] * 60 + hms[2];
  return std::make_pair(local - zone, zone);
}

std::string Pad(int64_t v, int width) {
  std::string s = std::to_string(v < 0 ? -v : v);
  while (static_cast<int>(s.size()) < width) s = "0" + s;
  return v < 0 ? "-" + s : s;
}

std::string ZoneText(int zone) {
  int a = zone < 0 ? -zone : zone;
  return std::string(zone < 0 ? "-" : "+") + Pad(a / 3600, 2) + Pad((a % 3600) / 60, 2);
}

// A date-part (RFC 5260 section 4.2) of `utc` seen in `zone`; nullopt for an unknown part.
std::optional<std::string> DatePart(int64_t utc, int zone, const std::string& part) {
  int64_t local = utc + zone;
  int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  int64_t secs = local - days * 86400;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  std::string date = Pad(y, 4) + "-" + Pad(m, 2) + "-" + Pad(d, 2);
  std::string time =
      Pad(secs / 3600, 2) + ":" + Pad((secs % 3600) / 60, 2) + ":" + Pad(secs % 60, 2);
  std::string p = AsciiLower(part);
  if (p == "year") return Pad(y, 4);
  if (p == "month") return Pad(m, 2);
  if (p == "day") return Pad(d, 2);
  if (p == "date") return date;
  if (p == "julian") return std::to_string(days + 40587);
  if (p == "hour") return Pad(secs / 3600, 2);
  if (p == "minute") return Pad((secs % 3600) / 60, 2);
  if (p == "second") return Pad(secs % 60, 2);
  if (p == "time") return time;
  if (p == "iso8601") {
    std::string z = ZoneText(zone);
    return date + "T" + time + z.substr(0, 3) + ":" + z.substr(3);
  }
  if (p == "std11") {
    static const char* wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* mn[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t w = ((days % 7) + 11) % 7;  // 1970-01-01 was a Thursday
    return std::string(wd[w]) + ", " + std::to_string(d) + " " + mn[m - 1] + " " + Pad(y, 4) + " " +
           time + " " + ZoneText(zone);
  }
  if (p == "zone") return ZoneText(zone);
  if (p == "weekday") return std::to_string(((days % 7) + 11) % 7);
  return std::nullopt;
}

// One header field of the message being filtered, with what the tests
// derive from it, computed on first use and then shared by every test of the
// run (a 20-rule script asks for Subject or From many times). A field is never
// changed in place: editheader adds or removes whole fields. Its name and raw
// value are views of the message (alive for the run), or of the run's own
// copy of a field addheader added (Interp::added_), so a run copies no field
// it does not test.
struct HeaderField {
  std::string_view name;
  std::string_view raw;                      // the raw value (folding kept), as stored
  std::optional<std::string> unfolded = {};  // Unfold(raw)
  std::optional<std::string> decoded = {};   // DecodeHeader(unfolded): RFC 2047 words
  std::optional<std::vector<std::pair<std::string, std::string>>> addresses = {};  // local, domain
};

// The state of one run (all included scripts share it).
class Interp {
 public:
  Interp(const Environment& env, const Limits& limits, const Prepared::Bindings* bindings = nullptr)
      : env_(env), limits_(limits), bindings_(bindings) {
    auto scan = mime::internal::ScanHeader(env.message);
    fields_.reserve(scan.fields.size());
    for (const auto& f : scan.fields) fields_.push_back({f.name, f.value});
    body_offset_ = scan.end;
  }

  Result<Outcome> Execute(const Script& script) {
    auto r = RunScript(script, 0);
    if (!r) return r.error();
    if (cancel_keep_ == false) {
      out_.implicit_keep = true;
      AddFile("", Flags(), false);
    }
    if (out_.reject && (explicit_keep_ || !out_.redirects.empty() || out_.vacation)) {
      return Err(ErrorKind::kInvalid,
                 "reject cannot be combined with keep, fileinto, redirect "
                 "or vacation (RFC 5429 section 2.1)");
    }
    if (edited_) {
      std::string h;
      for (const auto& f : fields_) {
        h.append(f.name).append(":").append(f.raw).append("\r\n");
      }
      h += "\r\n";
      out_.header = std::move(h);
    }
    return std::move(out_);
  }

 private:
  enum class Flow { kNext, kStop, kReturn };

  struct Frame {
    bool variables = false;                   // required "variables" (read by every Expand)
    bool encoded = false;                     // required "encoded-character"
    std::map<std::string, std::string> vars;  // local variables (lower-cased names)
    std::set<std::string> globals;            // names declared global here
  };

  Result<Flow> RunScript(const Script& script, size_t depth) {
    Frame frame;
    frames_.push_back(&frame);
    auto r = RunBlock(script.commands, frame);
    frames_.pop_back();
    (void)depth;
    return r;
  }

  // ---- variables (RFC 5229) and encoded-character (RFC 5228 2.4.2.4) ----

  std::string* Var(const std::string& name, Frame& f, bool create) {
    std::string key = AsciiLower(name);
    bool global = f.globals.count(key) || key.starts_with("global.");
    if (key.starts_with("global.")) key = key.substr(7);
    auto& map = global ? globals_ : f.vars;
    auto it = map.find(key);
    if (it == map.end()) {
      if (!create) return nullptr;
      it = map.emplace(key, "").first;
    }
    return &it->second;
  }

  static bool IsIdent(std::string_view s) {
    if (s.empty()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      char c = s[i];
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                (i > 0 && c >= '0' && c <= '9') || (c == '.' && i > 0);
      if (!ok) return false;
    }
    return true;
  }

  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // "${hex: 41 42}" / "${unicode: 263a}"; nullopt when malformed (kept literally).
  static std::optional<std::string> Encoded(std::string_view inner) {
    bool hex = StartsWithIgnoreCase(inner, "hex:");
    bool uni = StartsWithIgnoreCase(inner, "unicode:");
    if (!hex && !uni) return std::nullopt;
    std::string out;
    for (auto w : SplitWords(inner.substr(hex ? 4 : 8))) {
      if (w.empty() || w.size() > 8) return std::nullopt;
      uint32_t v = 0;
      for (char c : w) {
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return std::nullopt;
        v = v * 16 + static_cast<uint32_t>(d);
      }
      if (hex) {
        if (v > 0xff) return std::nullopt;
        out += static_cast<char>(v);
      } else {
        if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return std::nullopt;
        AppendUtf8(out, v);
      }
    }
    return out;
  }

  std::string Expand(const std::string& s, Frame& f) {
    bool vars = f.variables;
    bool enc = f.encoded;
    if ((!vars && !enc) || s.find("${") == std::string::npos) return s;
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
      if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
        size_t end = s.find('}', i + 2);
        if (end != std::string::npos) {
          std::string_view inner(s.data() + i + 2, end - i - 2);
          if (enc) {
            if (auto e = Encoded(inner)) {
              out += *e;
              i = end + 1;
              continue;
            }
          }
          if (vars) {
            bool digits = !inner.empty() && std::all_of(inner.begin(), inner.end(), [](char c) {
              return c >= '0' && c <= '9';
            });
            if (digits) {
              auto n = ParseUint(inner);
              if (n && *n < match_vars_.size()) out += match_vars_[*n];
              i = end + 1;
              continue;
            }
            if (IsIdent(inner)) {
              if (auto* v = Var(std::string(inner), f, false)) out += *v;
              i = end + 1;
              continue;
            }
          }
        }
      }
      out += s[i++];
    }
    if (out.size() > limits_.max_variable_bytes) out.resize(limits_.max_variable_bytes);
    return out;
  }

  std::vector<std::string> Strings(const Argument* a, Frame& f) {
    std::vector<std::string> out;
    if (a == nullptr) return out;
    for (const auto& s : a->strings) out.push_back(Expand(s, f));
    return out;
  }
  // Strings(a, f) without copies when nothing in them expands (most
  // arguments): `a`'s own strings, else the expanded ones put in `storage`.
  const std::vector<std::string>& StringsOf(const Argument* a, Frame& f,
                                            std::vector<std::string>& storage) {
    bool plain = a != nullptr &&
                 ((!f.variables && !f.encoded) ||
                  std::none_of(a->strings.begin(), a->strings.end(), [](const std::string& s) {
                    return s.find("${") != std::string::npos;
                  }));
    if (plain) return a->strings;
    storage = Strings(a, f);
    return storage;
  }
  std::string String(const Argument* a, Frame& f) {
    return a == nullptr || a->strings.empty() ? "" : Expand(a->strings[0], f);
  }

  // ---- comparators and match types ----

  // Views of literals or of the script's own strings (alive for the run).
  struct Matcher {
    std::string_view comparator = "i;ascii-casemap";
    std::string_view type = "is";  // is contains matches count value
    std::string rel;               // relational operator for count/value
  };

  Matcher MatcherOf(const Bound& b, Frame& f) {
    Matcher m;
    m.comparator = b.comparator;
    m.type = b.match;
    if (b.relational) m.rel = AsciiLower(Expand(b.relational->strings[0], f));
    return m;
  }

  // Whether `needle` occurs in `hay`, ASCII letters compared without case.
  static bool ContainsIgnoreCase(std::string_view hay, std::string_view needle) {
    if (needle.empty()) return true;
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    char first = lower(needle[0]);
    for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
      if (lower(hay[i]) == first && EqualsIgnoreCase(hay.substr(i, needle.size()), needle)) {
        return true;
      }
    }
    return false;
  }

  std::string Fold(const Matcher& m, std::string_view s) {
    return m.comparator == "i;ascii-casemap" ? AsciiLower(s) : std::string(s);
  }

  // i;ascii-numeric (RFC 4790 section 9.1): leading digits; none = infinity.
  static std::optional<uint64_t> Numeric(std::string_view s) {
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    if (n == 0) return std::nullopt;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      if (v > UINT64_MAX / 10 - 1) return UINT64_MAX;
      v = v * 10 + static_cast<uint64_t>(s[i] - '0');
    }
    return v;
  }

  // -1, 0, 1 under the comparator.
  int Order(const Matcher& m, std::string_view a, std::string_view b) {
    if (m.comparator == "i;ascii-numeric") {
      auto x = Numeric(a), y = Numeric(b);
      if (!x && !y) return 0;
      if (!x) return 1;
      if (!y) return -1;
      return *x < *y ? -1 : *x > *y ? 1 : 0;
    }
    std::string x = Fold(m, a), y = Fold(m, b);
    return x < y ? -1 : x > y ? 1 : 0;
  }

  static bool Relation(const std::string& rel, int order) {
    if (rel == "gt") return order > 0;
    if (rel == "ge") return order >= 0;
    if (rel == "lt") return order < 0;
    if (rel == "le") return order <= 0;
    if (rel == "eq") return order == 0;
    return order != 0;  // ne
  }

  // Wildcard match (RFC 5228 section 2.7.1) with captures for ${1}..
  bool Glob(std::string_view v, size_t vi, std::string_view p, size_t pi,
            std::vector<std::string>& caps) {
    while (true) {
      if (++match_steps_ > limits_.max_match_steps) return false;
      // One recursion level per wildcard: bounded so a pattern of many "*"
      // cannot exhaust the stack of a blocking-pool thread.
      if (caps.size() > kMaxWildcards) {
        match_steps_ = limits_.max_match_steps + 1;
        return false;
      }
      if (pi == p.size()) return vi == v.size();
      char c = p[pi];
      if (c == '*') {
        // Each "*" takes as little as it can, left to right (RFC 5229 section
        // 3.2: "[*] *" on "[acme-users] [fwd] ..." gives ${1} "acme-users").
        for (size_t k = vi; k <= v.size(); ++k) {
          caps.emplace_back(v.substr(vi, k - vi));
          if (Glob(v, k, p, pi + 1, caps)) return true;
          caps.pop_back();
          if (match_steps_ > limits_.max_match_steps) return false;
        }
        return false;
      }
      if (vi == v.size()) return false;
      if (c == '?') {
        // One character: a whole UTF-8 sequence.
        size_t len = 1;
        auto lead = static_cast<unsigned char>(v[vi]);
        if (lead >= 0xf0) {
          len = 4;
        } else if (lead >= 0xe0) {
          len = 3;
        } else if (lead >= 0xc0) {
          len = 2;
        }
        len = std::min(len, v.size() - vi);
        caps.emplace_back(v.substr(vi, len));
        if (Glob(v, vi + len, p, pi + 1, caps)) return true;
        caps.pop_back();
        return false;
      }
      if (c == '\\' && pi + 1 < p.size()) c = p[++pi];
      if (v[vi] != c) return false;
      ++vi;
      ++pi;
    }
  }

  // Does any value match any key? Sets match variables on a :matches hit.
  bool Match(const Matcher& m, const std::vector<std::string>& values,
             const std::vector<std::string>& keys) {
    return MatchAny(m, values, keys);
  }
  // The same over views (the header test's values: the run's decoded fields).
  bool MatchViews(const Matcher& m, const std::vector<std::string_view>& values,
                  const std::vector<std::string>& keys) {
    return MatchAny(m, values, keys);
  }
  template <class Values>
  bool MatchAny(const Matcher& m, const Values& values, const std::vector<std::string>& keys) {
    if (m.type == "count") {
      std::string count = std::to_string(values.size());
      Matcher num = m;
      num.comparator = "i;ascii-numeric";
      for (const auto& k : keys) {
        if (Relation(m.rel, Order(num, count, k))) return true;
      }
      return false;
    }
    // i;ascii-casemap compares without folding copies for :is and :contains
    // (most tests of a script; RFC 4790 section 9.2 is ASCII case folding).
    bool casemap = m.comparator == "i;ascii-casemap";
    for (const auto& v : values) {
      for (const auto& k : keys) {
        if (m.type == "is") {
          if (m.comparator == "i;ascii-numeric" ? Order(m, v, k) == 0
              : casemap                         ? EqualsIgnoreCase(v, k)
                                                : v == k) {
            return true;
          }
        } else if (m.type == "contains") {
          if (casemap ? ContainsIgnoreCase(v, k) : v.find(k) != std::string::npos) return true;
        } else if (m.type == "matches") {
          std::vector<std::string> caps;
          std::string fv = Fold(m, v), fk = Fold(m, k);
          if (Glob(fv, 0, fk, 0, caps)) {
            // Captures come from the value as written (not case-folded).
            match_vars_.assign(1, std::string(v));
            size_t pos = 0;
            for (auto& c : caps) {
              size_t at = fv.find(c, pos);
              if (at != std::string::npos && at + c.size() <= v.size()) {
                c = v.substr(at, c.size());
                pos = at + c.size();
              }
              match_vars_.push_back(c);
            }
            if (match_vars_.size() > 10) match_vars_.resize(10);
            return true;
          }
        } else if (m.type == "value") {
          if (Relation(m.rel, Order(m, v, k))) return true;
        }
      }
    }
    return false;
  }

  // ---- message access ----

  static const std::string& Unfolded(HeaderField& h) {
    if (!h.unfolded) h.unfolded = mime::internal::Unfold(h.raw);
    return *h.unfolded;
  }
  static const std::string& Decoded(HeaderField& h) {
    if (!h.decoded) h.decoded = mime::DecodeHeader(Unfolded(h));
    return *h.decoded;
  }
  // The addresses of a field (RFC 5228 section 5.1), group markers left out.
  static const std::vector<std::pair<std::string, std::string>>& Addresses(HeaderField& h) {
    if (!h.addresses) {
      h.addresses.emplace();
      // The usual one plain address without the tokenizer (as it would read it).
      if (auto plain = mime::PlainAddress(Unfolded(h))) {
        h.addresses->emplace_back(plain->first, plain->second);
        return *h.addresses;
      }
      for (auto& a : mime::ParseAddressList(Unfolded(h))) {
        if (!a.mailbox || !a.host) continue;  // group markers
        h.addresses->emplace_back(std::move(*a.mailbox), std::move(*a.host));
      }
    }
    return *h.addresses;
  }

  // The fields named `names` (each name in turn, fields in message order),
  // narrowed by :index/:last (RFC 5260 section 4.1), as indexes into fields_.
  std::vector<size_t> FieldsNamed(const std::vector<std::string>& names, const Bound& b) {
    std::vector<size_t> out;
    const Argument* index = b.Tag("index");
    for (const auto& n : names) {
      size_t first = out.size();
      for (size_t i = 0; i < fields_.size(); ++i) {
        const std::string_view name = fields_[i].name;
        if (name.size() == n.size() && EqualsIgnoreCase(name, n)) out.push_back(i);
      }
      if (index) {
        size_t k = static_cast<size_t>(index->number);
        size_t found = out.size() - first;
        if (k == 0 || k > found) {
          out.resize(first);
        } else {
          size_t one = b.Has("last") ? out[out.size() - k] : out[first + k - 1];
          out.resize(first);
          out.push_back(one);
        }
      }
    }
    return out;
  }

  // HeaderValues without copies: views of the fields' cached forms, valid
  // until the next editheader action (none runs while a test evaluates).
  std::vector<std::string_view> HeaderViews(const std::vector<std::string>& names, const Bound& b,
                                            bool decode) {
    std::vector<std::string_view> out;
    for (size_t i : FieldsNamed(names, b)) {
      out.push_back(decode ? Decoded(fields_[i]) : Unfolded(fields_[i]));
    }
    return out;
  }

  std::vector<std::string> HeaderValues(const std::vector<std::string>& names, const Bound& b,
                                        bool decode) {
    std::vector<std::string> out;
    for (size_t i : FieldsNamed(names, b)) {
      out.push_back(decode ? Decoded(fields_[i]) : Unfolded(fields_[i]));
    }
    return out;
  }

  static std::string AddressPart(const std::string& local, const std::string& domain,
                                 const Bound& b, bool* skip) {
    *skip = false;
    const std::string_view part = b.address_part;
    if (part == "localpart") return local;
    if (part == "domain") return domain;
    if (part == "user" || part == "detail") {
      // RFC 5233: "+" separates the user from the detail.
      size_t plus = local.find('+');
      if (part == "user") return local.substr(0, plus);
      if (plus == std::string::npos) {
        *skip = true;
        return "";
      }
      return local.substr(plus + 1);
    }
    return domain.empty() ? local : local + "@" + domain;
  }

  static std::pair<std::string, std::string> SplitAddress(std::string_view a) {
    size_t at = a.rfind('@');
    if (at == std::string_view::npos) return {std::string(a), ""};
    return {std::string(a.substr(0, at)), std::string(a.substr(at + 1))};
  }

  // ---- tests ----

  // The arguments of a node of the prepared script, bound once; nullptr for
  // an included script's (bound at each run).
  const Bound* Prebound(const void* node) const {
    if (bindings_ == nullptr) return nullptr;
    auto it = bindings_->nodes.find(node);
    return it == bindings_->nodes.end() ? nullptr : &it->second.second;
  }

  Result<bool> Eval(const Test& t, Frame& f) {
    // Compared as views: a length check rejects most names at once.
    const std::string_view kind = t.name;
    if (kind == "true") return true;
    if (kind == "false") return false;
    if (kind == "not") {
      auto r = Eval(t.tests[0], f);
      if (!r) return r;
      return !*r;
    }
    if (kind == "anyof" || kind == "allof") {
      bool any = kind == "anyof";
      for (const auto& sub : t.tests) {
        auto r = Eval(sub, f);
        if (!r) return r;
        if (*r == any) return any;
      }
      return !any;
    }
    Bound bound;
    const Bound* b = Prebound(&t);
    if (b == nullptr) {
      auto r = Bind(*FindSpec(t.name, true), t.args, t.tests.size(), t.line, nullptr);
      if (!r) return r.error();
      bound = std::move(*r);
      b = &bound;
    }
    Matcher m = MatcherOf(*b, f);
    const auto& pos = b->positional;
    std::vector<std::string> names, keys;  // storage for StringsOf when expanded
    if (kind == "header") {
      return MatchViews(m, HeaderViews(StringsOf(pos[0], f, names), *b, true),
                        StringsOf(pos[1], f, keys));
    }
    if (kind == "exists") {
      for (const auto& n : StringsOf(pos[0], f, names)) {
        bool found = std::any_of(fields_.begin(), fields_.end(),
                                 [&](const HeaderField& h) { return EqualsIgnoreCase(h.name, n); });
        if (!found) return false;
      }
      return true;
    }
    if (kind == "address") {
      std::vector<std::string> values;
      for (size_t i : FieldsNamed(StringsOf(pos[0], f, names), *b)) {
        for (const auto& [local, domain] : Addresses(fields_[i])) {
          bool skip = false;
          std::string v = AddressPart(local, domain, *b, &skip);
          if (!skip) values.push_back(std::move(v));
        }
      }
      return Match(m, values, StringsOf(pos[1], f, keys));
    }
    if (kind == "envelope") {
      std::vector<std::string> values;
      for (const auto& part : Strings(pos[0], f)) {
        std::string which = AsciiLower(part);
        std::string addr;
        if (which == "from") {
          addr = env_.envelope.from;
        } else if (which == "to") {
          addr = env_.envelope.to;
        } else {
          continue;
        }
        if (addr.empty()) {
          // The null path matches only "" (RFC 5228 section 5.4).
          values.push_back("");
          continue;
        }
        auto [local, domain] = SplitAddress(addr);
        bool skip = false;
        std::string v = AddressPart(local, domain, *b, &skip);
        if (!skip) values.push_back(std::move(v));
      }
      return Match(m, values, Strings(pos[1], f));
    }
    if (kind == "size") {
      uint64_t size = env_.message.size();
      return b->Has("over") ? size > pos[0]->number : size < pos[0]->number;
    }
    if (kind == "string") {
      std::vector<std::string> values;
      for (auto& s : Strings(pos[0], f)) {
        if (m.type != "count" || !s.empty()) values.push_back(std::move(s));
      }
      return Match(m, values, Strings(pos[1], f));
    }
    if (kind == "hasflag") {
      std::vector<std::string> flags;
      if (pos.size() == 2) {
        for (const auto& name : Strings(pos[0], f)) {
          if (auto* v = Var(name, f, false)) {
            for (auto w : SplitWords(*v)) flags.emplace_back(w);
          }
        }
      } else {
        flags = Flags();
      }
      return Match(m, flags, Strings(pos.back(), f));
    }
    if (kind == "body") return Body(*b, m, f);
    if (kind == "date" || kind == "currentdate") {
      bool current = kind == "currentdate";
      int64_t utc = env_.now;
      int zone = 0;
      bool zone_given = false;
      if (auto z = b->Tag("zone")) {
        auto pz = ParseZone(Expand(z->strings[0], f));
        if (!pz) return false;
        zone = *pz;
        zone_given = true;
      }
      std::string part;
      std::vector<std::string> values;
      if (current) {
        part = String(pos[0], f);
      } else {
        part = String(pos[1], f);
        auto hv = HeaderValues({String(pos[0], f)}, *b, false);
        if (hv.empty()) return false;
        auto dt = ParseDateTime(
            EqualsIgnoreCase(String(pos[0], f), "received")
                ? hv[0].substr(hv[0].rfind(';') == std::string::npos ? 0 : hv[0].rfind(';') + 1)
                : hv[0]);
        if (!dt) return false;
        utc = dt->first;
        if (b->Has("originalzone")) zone = dt->second;
      }
      (void)zone_given;
      auto v = DatePart(utc, zone, part);
      if (!v) return false;
      values.push_back(*v);
      return Match(m, values, Strings(pos.back(), f));
    }
    if (kind == "mailboxexists") {
      for (const auto& name : Strings(pos[0], f)) {
        if (!env_.mailbox_exists || !env_.mailbox_exists(name)) return false;
      }
      return true;
    }
    if (kind == "duplicate") {
      std::string id;
      if (auto u = b->Tag("uniqueid")) {
        id = Expand(u->strings[0], f);
      } else {
        std::string header = "Message-ID";
        if (auto h = b->Tag("header")) header = Expand(h->strings[0], f);
        auto hv = HeaderValues({header}, Bound{}, false);
        if (hv.empty()) return false;  // no identifier: never a duplicate (RFC 7352 3.1)
        id = std::string(TrimSpaces(hv[0]));
      }
      std::string handle = b->Tag("handle") ? Expand(b->Tag("handle")->strings[0], f) : "";
      std::string key = HexEncode(Sha256(handle + "\n" + id)).substr(0, 32);
      int64_t seconds =
          b->Tag("seconds") ? static_cast<int64_t>(b->Tag("seconds")->number) : 7 * 86400;
      bool seen = env_.duplicate_seen && env_.duplicate_seen(key, seconds);
      // :last refreshes the period even for a duplicate (RFC 7352 section 3.4).
      if (!seen || b->Has("last")) out_.duplicates.push_back({key, seconds});
      return seen;
    }
    if (kind == "spamtest" || kind == "virustest") {
      const scan::Verdict& v = env_.verdict;
      std::string value;
      if (kind == "spamtest") {
        bool percent = b->Has("percent");
        if (!v.spam_scanned) {
          value = "0";
        } else if (percent) {
          double p = v.spam_required > 0 ? 100.0 * v.spam_score / v.spam_required : 0;
          value = std::to_string(static_cast<int>(std::clamp(p, 0.0, 100.0)));
        } else if (v.spam_required > 0 && v.spam_score >= v.spam_required) {
          value = "10";
        } else {
          double r = v.spam_required > 0 ? std::max(v.spam_score, 0.0) / v.spam_required : 0;
          value = std::to_string(1 + static_cast<int>(r * 8));
        }
      } else {
        value = !v.virus_scanned ? "0" : v.virus_found ? "5" : "1";
      }
      // RFC 5235: the comparison is i;ascii-numeric whatever is given.
      Matcher num = m;
      num.comparator = "i;ascii-numeric";
      return Match(num, {value}, {String(pos[0], f)});
    }
    return Err(ErrorKind::kInternal, "test not implemented: " + t.name);
  }

  void BodyParts(const mime::Part& p, const Bound& b, Frame& f, std::vector<std::string>& out) {
    if (p.IsMultipart()) {
      for (const auto& c : p.children) BodyParts(c, b, f, out);
      return;
    }
    if (p.IsMessage()) {
      for (const auto& c : p.children) BodyParts(c, b, f, out);
      return;
    }
    if (auto c = b.Tag("content")) {
      std::string type = p.type + "/" + p.subtype;
      for (const auto& want : Strings(c, f)) {
        // "" matches every part; "text" the type; "text/plain" the exact type.
        if (want.empty() || EqualsIgnoreCase(want, p.type) || EqualsIgnoreCase(want, type)) {
          out.push_back(mime::DecodedText(env_.message, p));
          return;
        }
      }
      return;
    }
    if (p.type == "text") out.push_back(mime::DecodedText(env_.message, p));
  }

  Result<bool> Body(const Bound& b, const Matcher& m, Frame& f) {
    std::vector<std::string> values;
    if (b.Has("raw")) {
      values.emplace_back(env_.message.substr(std::min(body_offset_, env_.message.size())));
    } else {
      auto root = mime::Parse(env_.message);
      if (!root) return root.error();
      BodyParts(*root, b, f, values);
    }
    return Match(m, values, Strings(b.positional[0], f));
  }

  // ---- actions ----

  std::vector<std::string> Flags() {
    return std::vector<std::string>(flags_.begin(), flags_.end());
  }

  void AddFile(const std::string& mailbox, std::vector<std::string> flags, bool create) {
    // The same mailbox twice is one copy (RFC 5228 section 2.10.3), flags merged.
    for (auto& existing : out_.files) {
      bool same = existing.mailbox == mailbox ||
                  (EqualsIgnoreCase(existing.mailbox, "INBOX") && mailbox.empty()) ||
                  (existing.mailbox.empty() && EqualsIgnoreCase(mailbox, "INBOX"));
      if (same) {
        for (auto& fl : flags) {
          if (std::find(existing.flags.begin(), existing.flags.end(), fl) == existing.flags.end()) {
            existing.flags.push_back(fl);
          }
        }
        existing.create = existing.create || create;
        return;
      }
    }
    out_.files.push_back({mailbox, std::move(flags), create});
  }

  Status CountAction(int line) {
    if (++actions_ > limits_.max_actions) {
      return Err(ErrorKind::kTooLarge, "line " + std::to_string(line) + ": more than " +
                                           std::to_string(limits_.max_actions) + " actions");
    }
    return Ok();
  }

  // A flag list argument: words of all strings (RFC 5232 section 3).
  static std::vector<std::string> FlagWords(const std::vector<std::string>& lists) {
    std::vector<std::string> out;
    for (const auto& s : lists) {
      for (auto w : SplitWords(s)) {
        std::string word(w);
        bool dup = std::any_of(out.begin(), out.end(),
                               [&](const std::string& o) { return EqualsIgnoreCase(o, word); });
        if (!dup) out.push_back(word);
      }
    }
    return out;
  }

  void SetFlagSet(std::vector<std::string>& target, const std::vector<std::string>& words,
                  std::string_view op) {
    if (op == "setflag") target.clear();
    for (const auto& w : words) {
      auto it = std::find_if(target.begin(), target.end(),
                             [&](const std::string& o) { return EqualsIgnoreCase(o, w); });
      if (op == "removeflag") {
        if (it != target.end()) target.erase(it);
      } else if (it == target.end()) {
        target.push_back(w);
      }
    }
  }

  bool Protected(const std::string& name) {
    return EqualsIgnoreCase(name, "Received") || EqualsIgnoreCase(name, "Auto-Submitted");
  }

  Result<Flow> Do(const Command& c, Frame& f) {
    Bound bound;
    const Bound* b = Prebound(&c);
    if (b == nullptr) {
      auto r = Bind(*FindSpec(c.name, false), c.args, c.tests.size(), c.line, nullptr);
      if (!r) return r.error();
      bound = std::move(*r);
      b = &bound;
    }
    const auto& pos = b->positional;
    const std::string_view n = c.name;  // compared as a view (length first)
    if (n == "stop") return Flow::kStop;
    if (n == "return") return Flow::kReturn;
    if (n == "keep" || n == "fileinto") {
      if (auto st = CountAction(c.line); !st) return st.error();
      std::vector<std::string> flags =
          b->Tag("flags") ? FlagWords(Strings(b->Tag("flags"), f)) : Flags();
      std::string mailbox = n == "keep" ? "" : String(pos[0], f);
      AddFile(mailbox, std::move(flags), b->Has("create"));
      explicit_keep_ = true;
      if (!b->Has("copy")) cancel_keep_ = true;
      return Flow::kNext;
    }
    if (n == "discard") {
      cancel_keep_ = true;
      return Flow::kNext;
    }
    if (n == "redirect") {
      if (auto st = CountAction(c.line); !st) return st.error();
      std::string to(TrimSpaces(String(pos[0], f)));
      size_t at = to.rfind('@');
      if (at == std::string::npos || at == 0 || at + 1 == to.size() ||
          to.find_first_of(" \t\r\n<>,;\"") != std::string::npos) {
        return Err(ErrorKind::kInvalid, "line " + std::to_string(c.line) +
                                            ": redirect to an invalid address \"" + to + "\"");
      }
      if (std::find(out_.redirects.begin(), out_.redirects.end(), to) == out_.redirects.end()) {
        if (out_.redirects.size() >= limits_.max_redirects) {
          return Err(ErrorKind::kTooLarge, "line " + std::to_string(c.line) + ": more than " +
                                               std::to_string(limits_.max_redirects) +
                                               " redirects");
        }
        out_.redirects.push_back(to);
      }
      if (!b->Has("copy")) cancel_keep_ = true;
      return Flow::kNext;
    }
    if (n == "reject" || n == "ereject") {
      out_.reject = true;
      out_.ereject = n == "ereject";
      out_.reject_reason = String(pos[0], f);
      cancel_keep_ = true;
      return Flow::kNext;
    }
    if (n == "setflag" || n == "addflag" || n == "removeflag") {
      auto words = FlagWords(Strings(pos.back(), f));
      if (pos.size() == 2) {
        for (const auto& name : Strings(pos[0], f)) {
          std::string* v = Var(name, f, true);
          std::vector<std::string> cur;
          for (auto w : SplitWords(*v)) cur.emplace_back(w);
          SetFlagSet(cur, words, n);
          v->clear();
          for (const auto& w : cur) *v += (v->empty() ? "" : " ") + w;
        }
      } else {
        SetFlagSet(flags_, words, n);
      }
      return Flow::kNext;
    }
    if (n == "set") {
      std::string name = pos[0]->strings[0];
      if (!IsIdent(name)) {
        return Err(ErrorKind::kInvalid,
                   "line " + std::to_string(c.line) + ": bad variable name \"" + name + "\"");
      }
      std::string v = Expand(pos[1]->strings[0], f);
      // Modifiers by precedence (RFC 5229 section 4.1).
      if (b->Has("lower")) v = AsciiLower(v);
      if (b->Has("upper")) v = AsciiUpper(v);
      if (b->Has("lowerfirst") && !v.empty()) v[0] = AsciiLower(v.substr(0, 1))[0];
      if (b->Has("upperfirst") && !v.empty()) v[0] = AsciiUpper(v.substr(0, 1))[0];
      if (b->Has("quotewildcard")) {
        std::string q;
        for (char ch : v) {
          if (ch == '*' || ch == '?' || ch == '\\') q += '\\';
          q += ch;
        }
        v = q;
      }
      if (b->Has("length")) {
        size_t chars = 0;
        for (unsigned char ch : v) chars += (ch & 0xc0) != 0x80;
        v = std::to_string(chars);
      }
      if (v.size() > limits_.max_variable_bytes) v.resize(limits_.max_variable_bytes);
      *Var(name, f, true) = v;
      return Flow::kNext;
    }
    if (n == "global") {
      for (const auto& name : pos[0]->strings) f.globals.insert(AsciiLower(name));
      return Flow::kNext;
    }
    if (n == "vacation") return Vacation(c, *b, f);
    if (n == "include") {
      if (++include_depth_ > limits_.max_includes) {
        return Err(ErrorKind::kTooLarge, "line " + std::to_string(c.line) +
                                             ": includes nested "
                                             "too deeply");
      }
      bool global = b->Has("global");
      std::string name = String(pos[0], f);
      std::string key = (global ? "g:" : "p:") + name;
      if (b->Has("once") && included_.count(key)) {
        --include_depth_;
        return Flow::kNext;
      }
      included_.insert(key);
      Result<std::string> text = env_.load_script
                                     ? env_.load_script(name, global)
                                     : Result<std::string>(Err(ErrorKind::kNotFound, "no scripts"));
      if (!text) {
        --include_depth_;
        if (b->Has("optional") && text.error().kind == ErrorKind::kNotFound) return Flow::kNext;
        return Err(ErrorKind::kInvalid, "line " + std::to_string(c.line) + ": include \"" + name +
                                            "\": " + text.error().message);
      }
      auto script = Compile(*text, limits_);
      if (!script) {
        --include_depth_;
        return Err(ErrorKind::kInvalid, "include \"" + name + "\": " + script.error().message);
      }
      auto r = RunScript(*script, include_depth_);
      --include_depth_;
      if (!r) return r.error();
      return *r == Flow::kStop ? Flow::kStop : Flow::kNext;
    }
    if (n == "addheader") {
      std::string name = String(pos[0], f);
      std::string value = String(pos[1], f);
      bool ok = !name.empty() && name.find_first_of(": \t\r\n") == std::string::npos &&
                value.find_first_of("\r\n") == std::string::npos;
      if (!ok || Protected(name)) {
        return Err(ErrorKind::kInvalid,
                   "line " + std::to_string(c.line) + ": addheader of a bad or protected field");
      }
      // A deque: the views of earlier added fields stay valid.
      added_.push_back(std::move(name));
      std::string_view added_name = added_.back();
      added_.push_back(" " + value);
      HeaderField h{added_name, added_.back()};
      if (b->Has("last")) {
        fields_.push_back(std::move(h));
      } else {
        fields_.insert(fields_.begin(), std::move(h));
      }
      edited_ = true;
      return Flow::kNext;
    }
    if (n == "deleteheader") {
      std::string name = String(pos[0], f);
      if (Protected(name)) return Flow::kNext;  // silently ignored (RFC 5293 section 7)
      Matcher m = MatcherOf(*b, f);
      std::vector<std::string> patterns =
          pos.size() > 1 ? Strings(pos[1], f) : std::vector<std::string>{};
      std::vector<size_t> idx;
      for (size_t i = 0; i < fields_.size(); ++i) {
        if (EqualsIgnoreCase(fields_[i].name, name)) idx.push_back(i);
      }
      if (auto ix = b->Tag("index")) {
        size_t k = static_cast<size_t>(ix->number);
        if (k == 0 || k > idx.size()) return Flow::kNext;
        size_t one = b->Has("last") ? idx[idx.size() - k] : idx[k - 1];
        idx.assign(1, one);
      }
      for (size_t i = idx.size(); i-- > 0;) {
        const std::string& v = Decoded(fields_[idx[i]]);
        if (patterns.empty() || Match(m, {v}, patterns)) {
          fields_.erase(fields_.begin() + static_cast<std::ptrdiff_t>(idx[i]));
          edited_ = true;
        }
      }
      return Flow::kNext;
    }
    return Err(ErrorKind::kInternal, "command not implemented: " + c.name);
  }

  bool ListOrBulk() {
    // RFC 5230 section 4.5 / RFC 3834 section 2: no reply to lists, bulk or
    // automatic mail.
    for (const auto& h : fields_) {
      std::string v = AsciiLower(TrimSpaces(mime::internal::Unfold(h.raw)));
      if (EqualsIgnoreCase(h.name, "Auto-Submitted") && v != "no") return true;
      if (EqualsIgnoreCase(h.name, "Precedence") && (v == "bulk" || v == "list" || v == "junk")) {
        return true;
      }
      if (StartsWithIgnoreCase(h.name, "List-")) return true;
      if (EqualsIgnoreCase(h.name, "X-Auto-Response-Suppress") &&
          (v.find("all") != std::string::npos || v.find("oof") != std::string::npos)) {
        return true;
      }
    }
    std::string from = AsciiLower(env_.envelope.from);
    auto local = SplitAddress(from).first;
    if (local == "mailer-daemon" || local == "listserv" || local == "majordomo" ||
        local.starts_with("owner-") || local.ends_with("-request") || local.starts_with("bounce") ||
        local == "postmaster" || local.ends_with("-bounces")) {
      return true;
    }
    return false;
  }

  Result<Flow> Vacation(const Command& c, const Bound& b, Frame& f) {
    if (auto st = CountAction(c.line); !st) return st.error();
    if (out_.vacation) {
      return Err(ErrorKind::kInvalid, "line " + std::to_string(c.line) + ": vacation twice");
    }
    int64_t seconds = 7 * 86400;
    if (auto d = b.Tag("days")) {
      // RFC 5230 section 4.1: at least one day; the site may cap it.
      seconds = static_cast<int64_t>(std::clamp<uint64_t>(d->number, 1, 365)) * 86400;
    }
    if (auto s = b.Tag("seconds")) {
      seconds = static_cast<int64_t>(std::min<uint64_t>(s->number, 365ull * 86400));
    }
    VacationAction v;
    v.seconds = seconds;
    v.reason = String(b.positional[0], f);
    v.subject = b.Tag("subject") ? String(b.Tag("subject"), f) : "";
    v.from = b.Tag("from") ? String(b.Tag("from"), f) : "";
    v.mime = b.Has("mime");
    v.handle = b.Tag("handle") ? String(b.Tag("handle"), f)
                               : HexEncode(Sha256(v.reason + "\n" + v.subject + "\n" + v.from +
                                                  "\n" + (v.mime ? "mime" : "")))
                                     .substr(0, 32);
    v.to = env_.envelope.from;
    // Not to the null path, nor to lists and automatic mail (RFC 5230 4.5).
    if (v.to.empty() || ListOrBulk()) return Flow::kNext;
    // Only when one of the user's addresses is in To/Cc/Bcc (RFC 5230 4.5).
    std::vector<std::string> mine = env_.addresses;
    for (const auto& a : Strings(b.Tag("addresses"), f)) mine.push_back(a);
    if (!env_.envelope.to.empty()) mine.push_back(env_.envelope.to);
    bool addressed = false;
    for (const auto& raw :
         HeaderValues({"to", "cc", "bcc", "resent-to", "resent-cc"}, Bound{}, false)) {
      for (const auto& a : mime::ParseAddressList(raw)) {
        if (!a.mailbox || !a.host) continue;
        std::string addr = AsciiLower(*a.mailbox + "@" + *a.host);
        for (const auto& m : mine) {
          if (AsciiLower(m) == addr) addressed = true;
        }
      }
    }
    if (!addressed) return Flow::kNext;
    // Not to oneself.
    for (const auto& m : mine) {
      if (EqualsIgnoreCase(m, v.to)) return Flow::kNext;
    }
    if (v.subject.empty()) {
      auto subj = HeaderValues({"subject"}, Bound{}, true);
      v.subject = "Auto: " + (subj.empty() ? std::string() : subj[0]);
    }
    out_.vacation = std::move(v);
    return Flow::kNext;
  }

  Result<Flow> RunBlock(const std::vector<Command>& cmds, Frame& f) {
    bool taken = false;  // an if/elsif of the current chain ran its block
    for (const auto& c : cmds) {
      const std::string_view name = c.name;
      if (name == "require") {
        // Check validated the names: only these two change how a run reads strings.
        for (const auto& cap : c.args[0].strings) {
          if (cap == "variables") f.variables = true;
          if (cap == "encoded-character") f.encoded = true;
        }
        continue;
      }
      if (name == "if" || name == "elsif" || name == "else") {
        if (name == "if") taken = false;
        if (taken) continue;
        bool cond = true;
        if (name != "else") {
          auto r = Eval(c.tests[0], f);
          if (!r) return r.error();
          cond = *r;
        }
        if (!cond) continue;
        taken = true;
        auto r = RunBlock(c.block, f);
        if (!r) return r;
        if (*r != Flow::kNext) return r;
        continue;
      }
      auto r = Do(c, f);
      if (!r) return r;
      if (*r != Flow::kNext) return r;
    }
    return Flow::kNext;
  }

  const Environment& env_;
  const Limits& limits_;
  const Prepared::Bindings* bindings_ = nullptr;
  std::vector<HeaderField> fields_;
  std::deque<std::string> added_;  // the names and values of fields addheader added
  size_t body_offset_ = 0;
  bool edited_ = false;
  Outcome out_;
  bool cancel_keep_ = false;
  bool explicit_keep_ = false;
  size_t actions_ = 0;
  size_t match_steps_ = 0;
  size_t include_depth_ = 0;
  std::set<std::string> included_;
  std::vector<std::string> flags_;  // the internal variable of imap4flags
  std::vector<std::string> match_vars_;
  std::map<std::string, std::string> globals_;
  std::vector<Frame*> frames_;
};

}  // namespace

const std::vector<std::string>& Capabilities() {
  static const std::vector<std::string> caps(KnownCapabilities().begin(),
                                             KnownCapabilities().end());
  return caps;
}

Status Check(const Script& script) {
  std::set<std::string> caps;
  return CheckBlock(script.commands, caps, true);
}

Result<Script> Compile(std::string_view text, const Limits& limits) {
  auto script = Parse(text, limits);
  if (!script) return script.error();
  if (auto st = Check(*script); !st) return st.error();
  return script;
}

namespace {

void CollectFileinto(const std::vector<Command>& commands, std::vector<std::string>& out) {
  for (const Command& c : commands) {
    if (c.name == "fileinto") {
      // The mailbox is the last positional argument (after :copy, :flags
      // list, :create, :mailboxid id).
      const Argument* mailbox = nullptr;
      for (const Argument& a : c.args) {
        if (a.kind == Argument::Kind::kStrings && a.strings.size() == 1) mailbox = &a;
      }
      if (mailbox && mailbox->strings[0].find("${") == std::string::npos &&
          std::find(out.begin(), out.end(), mailbox->strings[0]) == out.end()) {
        out.push_back(mailbox->strings[0]);
      }
    }
    CollectFileinto(c.block, out);
  }
}

}  // namespace

std::vector<std::string> FileintoTargets(const Script& script) {
  std::vector<std::string> out;
  CollectFileinto(script.commands, out);
  return out;
}

Result<Outcome> Run(const Script& script, const Environment& env, const Limits& limits) {
  Interp interp(env, limits);
  return interp.Execute(script);
}

Prepared::Prepared(Script script) : script_(std::move(script)) {
  auto b = std::make_unique<Bindings>();
  BindCommands(script_.commands, *b);
  bindings_ = std::move(b);
}

Prepared::~Prepared() = default;

Result<Outcome> Run(const Prepared& script, const Environment& env, const Limits& limits) {
  Interp interp(env, limits, &script.bindings());
  return interp.Execute(script.script());
}

}  // namespace hato::sieve
