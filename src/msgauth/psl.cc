#include "msgauth/psl.h"

#include "base/strings.h"

namespace hato::msgauth {

Result<PublicSuffixList> PublicSuffixList::Parse(std::string_view text) {
  PublicSuffixList psl;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    // The rule is the line up to the first white space.
    line = TrimSpaces(line);
    line = line.substr(0, line.find_first_of(" \t\r"));
    if (line.empty() || line.starts_with("//")) continue;
    while (!line.empty() && line.back() == '.') line.remove_suffix(1);
    if (line.empty() || line.find("..") != std::string_view::npos || line.front() == '.') continue;
    std::string rule = AsciiLower(line);
    if (rule.front() == '!') {
      if (rule.size() > 1 && rule.find('.') != std::string::npos) {
        psl.exceptions_.insert(rule.substr(1));
      }
    } else if (rule.starts_with("*.")) {
      if (rule.size() > 2) psl.wildcards_.insert(rule.substr(2));
    } else if (rule.find('*') == std::string::npos && rule.find('!') == std::string::npos) {
      psl.rules_.insert(std::move(rule));
    }
  }
  if (psl.size() == 0) return Err(ErrorKind::kInvalid, "no public suffix rules");
  return psl;
}

std::string PublicSuffixList::PublicSuffix(std::string_view domain) const {
  // From the longest candidate (the whole name) to the shortest: the first
  // match is the rule with the most labels.
  size_t pos = 0;
  while (true) {
    std::string candidate(domain.substr(pos));
    size_t dot = domain.find('.', pos);
    if (exceptions_.count(candidate)) {
      // "!www.ck": the suffix is the rule without its first label.
      return dot == std::string_view::npos ? candidate : std::string(domain.substr(dot + 1));
    }
    if (rules_.count(candidate)) return candidate;
    if (dot == std::string_view::npos) return candidate;  // the default rule "*"
    if (wildcards_.count(std::string(domain.substr(dot + 1)))) return candidate;
    pos = dot + 1;
  }
}

std::string PublicSuffixList::OrganizationalDomain(std::string_view domain) const {
  std::string suffix = PublicSuffix(domain);
  if (suffix.size() >= domain.size()) return std::string(domain);
  // One more label to the left of the suffix.
  std::string_view head = domain.substr(0, domain.size() - suffix.size() - 1);
  size_t dot = head.rfind('.');
  return std::string(domain.substr(dot == std::string_view::npos ? 0 : dot + 1));
}

}  // namespace hato::msgauth
