#include "imap/proto/response.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "base/strings.h"
#include "imap/proto/reader.h"
#include "imap/proto/strings.h"

namespace hato::imap {
namespace {

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// date-day "-" date-month "-" date-year at s[pos]; `fixed` also allows the
// date-day-fixed form (SP DIGIT). Advances pos.
bool ParseDatePart(std::string_view s, size_t& pos, bool fixed, Date& d) {
  if (fixed && pos < s.size() && s[pos] == ' ') {
    ++pos;
    if (!Digits(s, pos, 1, d.day)) return false;
    ++pos;
  } else if (Digits(s, pos, 2, d.day)) {
    pos += 2;
  } else if (Digits(s, pos, 1, d.day)) {
    ++pos;
  } else {
    return false;
  }
  if (pos >= s.size() || s[pos++] != '-') return false;
  if (pos + 3 > s.size()) return false;
  d.month = 0;
  for (int m = 1; m <= 12; ++m) {
    if (EqualsIgnoreCase(s.substr(pos, 3), kMonths[m - 1])) d.month = m;
  }
  if (d.month == 0) return false;
  pos += 3;
  if (pos >= s.size() || s[pos++] != '-') return false;
  if (!Digits(s, pos, 4, d.year)) return false;
  pos += 4;
  return d.day >= 1 && d.day <= DaysInMonth(d.year, d.month);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

Date CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  Date d;
  d.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  d.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  d.year = static_cast<int>(yoe + era * 400 + (d.month <= 2));
  return d;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

const char* MonthName(int month) { return month >= 1 && month <= 12 ? kMonths[month - 1] : "???"; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return 0;
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

std::string FormatDateTime(const DateTime& t) {
  char buf[64];
  int z = t.zone_minutes < 0 ? -t.zone_minutes : t.zone_minutes;
  std::snprintf(buf, sizeof buf, "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d", t.date.day,
                MonthName(t.date.month), t.date.year, t.hour, t.minute, t.second,
                t.zone_minutes < 0 ? '-' : '+', z / 60, z % 60);
  return buf;
}

// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
// time = 2DIGIT ":" 2DIGIT ":" 2DIGIT; zone = ("+" / "-") 4DIGIT (RFC 3501 section 9)
Result<DateTime> ParseDateTime(std::string_view s) {
  DateTime t;
  size_t pos = 0;
  auto bad = [] { return Err(ErrorKind::kInvalid, "bad date-time"); };
  if (!ParseDatePart(s, pos, /*fixed=*/true, t.date)) return bad();
  int zh, zm;
  if (s.size() != pos + 15 || s[pos] != ' ' || !Digits(s, pos + 1, 2, t.hour) ||
      s[pos + 3] != ':' || !Digits(s, pos + 4, 2, t.minute) || s[pos + 6] != ':' ||
      !Digits(s, pos + 7, 2, t.second) || s[pos + 9] != ' ' ||
      (s[pos + 10] != '+' && s[pos + 10] != '-') || !Digits(s, pos + 11, 2, zh) ||
      !Digits(s, pos + 13, 2, zm)) {
    return bad();
  }
  if (t.hour > 23 || t.minute > 59 || t.second > 60 || zm > 59) return bad();
  t.zone_minutes = (zh * 60 + zm) * (s[pos + 10] == '-' ? -1 : 1);
  return t;
}

std::string FormatDate(const Date& d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d-%s-%04d", d.day, MonthName(d.month), d.year);
  return buf;
}

Result<Date> ParseDate(std::string_view s) {
  Date d;
  size_t pos = 0;
  if (!ParseDatePart(s, pos, /*fixed=*/false, d) || pos != s.size()) {
    return Err(ErrorKind::kInvalid, "bad date");
  }
  return d;
}

int64_t ToUnixTime(const Date& d) { return DaysFromCivil(d.year, d.month, d.day) * 86400; }

int64_t ToUnixTime(const DateTime& t) {
  return ToUnixTime(t.date) + t.hour * 3600 + t.minute * 60 + t.second -
         static_cast<int64_t>(t.zone_minutes) * 60;
}

DateTime FromUnixTime(int64_t seconds, int zone_minutes) {
  int64_t local = seconds + static_cast<int64_t>(zone_minutes) * 60;
  int64_t days = FloorDiv(local, 86400);
  int64_t rest = local - days * 86400;
  DateTime t;
  t.date = CivilFromDays(days);
  t.hour = static_cast<int>(rest / 3600);
  t.minute = static_cast<int>(rest / 60 % 60);
  t.second = static_cast<int>(rest % 60);
  t.zone_minutes = zone_minutes;
  return t;
}

void AppendFlagList(std::string& out, std::span<const std::string> flags) {
  out += '(';
  for (size_t i = 0; i < flags.size(); ++i) {
    if (i > 0) out += ' ';
    out += flags[i];
  }
  out += ')';
}

std::string FormatFlagList(std::span<const std::string> flags) {
  std::string out;
  AppendFlagList(out, flags);
  return out;
}

// esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
// search-correlator = SP "(" "TAG" SP tag-string ")"; search-return-data = "MIN" SP
// nz-number / "MAX" SP nz-number / "ALL" SP sequence-set / "COUNT" SP number
// (RFC 4731 section 7); "MODSEQ" SP mod-sequence-value (RFC 7162 section 7).
std::string SequenceInOrder(std::span<const uint32_t> numbers) {
  std::string out;
  for (size_t i = 0; i < numbers.size();) {
    size_t j = i + 1;
    while (j < numbers.size() && numbers[j] == numbers[i] + (j - i)) ++j;
    if (i > 0) out += ',';
    out += std::to_string(numbers[i]);
    if (j - i > 1) out += ':' + std::to_string(numbers[j - 1]);
    i = j;
  }
  return out;
}

std::pair<size_t, size_t> PartialSlice(std::pair<int64_t, int64_t> range, size_t n) {
  int64_t lo = std::min(std::abs(range.first), std::abs(range.second));
  int64_t hi = std::max(std::abs(range.first), std::abs(range.second));
  auto size = static_cast<int64_t>(n);
  int64_t begin = lo - 1, end = std::min(hi, size);
  if (range.first < 0) begin = std::max<int64_t>(size - hi, 0), end = size - lo + 1;
  if (begin >= end) return {0, 0};
  return {static_cast<size_t>(begin), static_cast<size_t>(end)};
}

std::string FormatPartial(std::pair<int64_t, int64_t> range, std::span<const uint32_t> results) {
  auto [begin, end] = PartialSlice(range, results.size());
  std::string out =
      " PARTIAL (" + std::to_string(range.first) + ':' + std::to_string(range.second) + ' ';
  if (begin >= end) return out + "NIL)";
  return out + SequenceInOrder(results.subspan(begin, end - begin)) + ')';
}

std::string FormatEsearch(std::string_view tag, bool uid, const SearchArgs& args,
                          std::span<const uint32_t> matches,
                          std::optional<uint64_t> highest_modseq) {
  IdSet set = IdSet::FromIds(std::vector<uint32_t>(matches.begin(), matches.end()));
  // An empty RETURN list means ALL (RFC 4731 section 3.1); UPDATE and
  // CONTEXT (RFC 5267) are options too, so RETURN (UPDATE) alone returns
  // nothing but the updates to come (as Dovecot answers).
  bool all = args.return_all ||
             !(args.return_min || args.return_max || args.return_count || args.return_save ||
               args.partial || args.return_update || args.return_context);
  std::string out = "* ESEARCH (TAG ";
  AppendString(out, tag);
  out += ')';
  if (uid) out += " UID";
  if (!set.empty()) {
    if (args.return_min) out += " MIN " + std::to_string(set.min());
    if (args.return_max) out += " MAX " + std::to_string(set.max());
  }
  if (args.return_count) out += " COUNT " + std::to_string(set.size());
  if (all && !set.empty()) out += " ALL " + set.ToString();
  if (args.partial) {
    std::vector<uint32_t> ascending;
    for (const auto& r : set.ranges())
      for (uint64_t n = r.first; n <= r.last; ++n) ascending.push_back(static_cast<uint32_t>(n));
    out += FormatPartial(*args.partial, ascending);
  }
  if (highest_modseq && !set.empty()) out += " MODSEQ " + std::to_string(*highest_modseq);
  out += "\r\n";
  return out;
}

std::string FormatReadError(const ReadError& e) {
  std::string msg;
  for (char c : e.message) {
    msg +=
        (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) ? '?' : c;
  }
  if (e.close) return "* BYE " + msg + "\r\n";
  std::string out = e.tag ? *e.tag : "*";
  if (e.kind == ReadErrorKind::kTooBig) {
    out += e.synchronizing ? " NO [TOOBIG] " : " BAD [TOOBIG] ";
  } else {
    out += " BAD ";
  }
  out += msg;
  out += "\r\n";
  return out;
}

}  // namespace hato::imap
