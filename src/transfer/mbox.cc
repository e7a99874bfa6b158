#include "transfer/mbox.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "base/strings.h"
#include "store/store.h"

namespace hato::transfer {
namespace {

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// ^>*From  : the lines mboxrd quotes.
bool IsQuotedFrom(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && line[i] == '>') ++i;
  return line.substr(i, 5) == "From ";
}

}  // namespace

bool IsFromLine(std::string_view line) {
  if (line.substr(0, 5) != "From ") return false;
  std::string_view rest = line.substr(5);
  size_t sp = rest.find(' ');
  return sp != std::string_view::npos && ParseAsctime(rest.substr(sp + 1)).has_value();
}

std::string MboxFromLine(std::string_view return_path, int64_t internal_date) {
  std::time_t t = internal_date;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
  std::string sender(return_path.empty() ? "MAILER-DAEMON" : return_path);
  for (char& c : sender) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') c = '_';
  }
  return "From " + sender + " " + date + "\n";
}

std::string ToLf(std::string_view crlf) {
  std::string out;
  out.reserve(crlf.size());
  for (size_t i = 0; i < crlf.size(); ++i) {
    if (crlf[i] == '\r' && i + 1 < crlf.size() && crlf[i + 1] == '\n') continue;
    out += crlf[i];
  }
  return out;
}

std::string ToCrlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 40);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

void AppendMboxMessage(std::string& out, std::string_view return_path, int64_t internal_date,
                       std::string_view content) {
  out += MboxFromLine(return_path, internal_date);
  std::string lf = ToLf(content);
  std::string_view rest = lf;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl == std::string_view::npos ? rest.size() : nl);
    if (IsQuotedFrom(line)) out += '>';
    out.append(line);
    out += '\n';
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  }
  out += '\n';  // the empty line before the next From line
}

std::optional<int64_t> ParseAsctime(std::string_view s) {
  // "Www Mmm dd hh:mm:ss yyyy", day possibly space-padded.
  auto words = SplitWords(s);
  if (words.size() < 5) return std::nullopt;
  int mon = -1;
  for (int i = 0; i < 12; ++i) {
    if (words[1] == kMonths[i]) mon = i;
  }
  auto day = ParseUint(words[2]);
  auto year = ParseUint(words[4]);
  unsigned h = 0, m = 0, sec = 0;
  std::string hms(words[3]);
  if (mon < 0 || !day || !year || *day < 1 || *day > 31 || *year < 1970 || *year > 9999 ||
      std::sscanf(hms.c_str(), "%2u:%2u:%2u", &h, &m, &sec) != 3 || h > 23 || m > 59 || sec > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = static_cast<int>(*year) - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = static_cast<int>(*day);
  tm.tm_hour = static_cast<int>(h);
  tm.tm_min = static_cast<int>(m);
  tm.tm_sec = static_cast<int>(sec);
  return static_cast<int64_t>(timegm(&tm));
}

void MboxSplitter::Feed(std::string_view chunk) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      if (partial_.size() < line_cap_) {
        partial_.append(chunk.substr(0, line_cap_ - partial_.size()));
      }
      return;
    }
    if (partial_.empty()) {
      Line(chunk.substr(0, std::min(nl, line_cap_)));  // cut as a buffered line would be
    } else {
      if (partial_.size() < line_cap_)
        partial_.append(chunk.substr(0, std::min(nl, line_cap_ - partial_.size())));
      Line(partial_);
      partial_.clear();
    }
    chunk.remove_prefix(nl + 1);
  }
}

void MboxSplitter::Line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.substr(0, 5) == "From " && (!in_message_ || pending_blank_) && IsFromLine(line)) {
    // A new message: a From line with a date after an empty line. (A writer
    // quotes body lines that start with "From "; the date check keeps an
    // unquoted one from another writer in its message.)
    if (in_message_) EndMessage();
    in_message_ = true;
    pending_blank_ = false;
    cur_ = MboxMessage{};
    std::string_view rest = line.substr(5);
    size_t sp = rest.find(' ');
    std::string_view sender = rest.substr(0, sp);
    if (sender != "MAILER-DAEMON") cur_.return_path = std::string(sender);
    if (sp != std::string_view::npos) {
      cur_.internal_date = ParseAsctime(rest.substr(sp + 1)).value_or(0);
    }
    return;
  }
  if (!in_message_) {
    junk_ += line.size() + 1;
    return;
  }
  if (pending_blank_) {
    pending_blank_ = false;
    if (cur_.content.size() + 2 > max_) {
      cur_.too_large = true;
    } else {
      cur_.content += "\r\n";
    }
  }
  if (line.empty()) {
    pending_blank_ = true;  // the separator, unless more lines follow
    return;
  }
  if (line[0] == '>' && IsQuotedFrom(line)) line.remove_prefix(1);
  if (cur_.content.size() + line.size() + 2 > max_) {
    cur_.too_large = true;
    return;
  }
  cur_.content.append(line);
  cur_.content += "\r\n";
}

void MboxSplitter::EndMessage() {
  ready_.push_back(std::move(cur_));
  cur_ = MboxMessage{};
  in_message_ = false;
}

void MboxSplitter::Finish() {
  if (!partial_.empty()) {
    std::string last = std::move(partial_);
    partial_.clear();
    Line(last);
  }
  if (in_message_) EndMessage();
}

std::optional<MboxMessage> MboxSplitter::Next() {
  if (ready_.empty()) return std::nullopt;
  MboxMessage m = std::move(ready_.front());
  ready_.pop_front();
  return m;
}

uint32_t MaildirFlags(std::string_view file_name) {
  size_t info = file_name.rfind(":2,");
  if (info == std::string_view::npos) return 0;
  uint32_t flags = 0;
  for (char c : file_name.substr(info + 3)) {
    switch (c) {
      case 'D':
        flags |= store::kDraft;
        break;
      case 'F':
        flags |= store::kFlagged;
        break;
      case 'R':
        flags |= store::kAnswered;
        break;
      case 'S':
        flags |= store::kSeen;
        break;
      case 'T':
        flags |= store::kDeleted;
        break;
      default:
        break;  // P (passed) and keyword letters
    }
  }
  return flags;
}

std::string MaildirFlagSuffix(uint32_t flags) {
  // Letters in ASCII order (Maildir specification).
  std::string out = ":2,";
  if (flags & store::kDraft) out += 'D';
  if (flags & store::kFlagged) out += 'F';
  if (flags & store::kAnswered) out += 'R';
  if (flags & store::kSeen) out += 'S';
  if (flags & store::kDeleted) out += 'T';
  return out;
}

}  // namespace hato::transfer
