// A DnsLookup answered from a fixed table: the fake DNS of the unit tests and
// of the hidden `hato dkim verify|spf check|msgauth check --dns-file` commands
// that the Python oracle tests drive. Pure, no I/O.
//
// Text format, one record per line ('#' starts a comment line):
//   NAME TXT text...          the rest of the line, or "quoted" "strings"
//                             (concatenated; \" \\ and \DDD decimal escapes)
//   NAME A 192.0.2.1
//   NAME AAAA 2001:db8::1
//   NAME MX 10 mx.example.org
//   IP PTR host.example.org   the PTR of an address (its reverse name implied),
//                             or NAME PTR host for a name under .arpa
//   NAME TEMPFAIL [TYPE]      every query (of TYPE) for NAME fails temporarily
// A name with no line at all is NXDOMAIN; a name with lines of other types
// only answers NOERROR with no records (NODATA). Names are case-insensitive,
// a trailing dot is ignored; NAME and HOST may hold \DDD escapes (a space is
// \032). MX HOST "." is the null MX.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "msgauth/dns.h"

namespace hato::msgauth {

class DnsTable : public DnsLookup {
 public:
  // Parses the text format above (kInvalid names the bad line).
  static Result<DnsTable> Parse(std::string_view text);

  void AddTxt(std::string_view name, std::string text);
  void AddA(std::string_view name, std::string_view ip);  // A or AAAA by form
  void AddMx(std::string_view name, uint16_t pref, std::string_view host);
  void AddPtr(std::string_view ip, std::string_view host);
  void AddTempFail(std::string_view name, std::string_view type = "");

  Result<std::vector<std::string>> Txt(std::string_view name) override;
  Result<std::vector<IpAddress>> A(std::string_view name) override;
  Result<std::vector<IpAddress>> Aaaa(std::string_view name) override;
  Result<std::vector<MxRecord>> Mx(std::string_view name) override;
  Result<std::vector<std::string>> Ptr(const IpAddress& ip) override;

  // Every query made so far, as "TYPE name" (tests count lookups).
  const std::vector<std::string>& queries() const { return queries_; }

 private:
  struct Entry {
    bool tempfail = false;
    std::vector<std::string> tempfail_types;
    std::vector<std::string> txt;
    std::vector<IpAddress> a, aaaa;
    std::vector<MxRecord> mx;
    std::vector<std::string> ptr;
  };
  // nullptr for NXDOMAIN; an error for TEMPFAIL.
  Result<const Entry*> Lookup(std::string_view type, std::string_view name);
  Entry& At(std::string_view name);

  std::map<std::string, Entry> entries_;
  std::vector<std::string> queries_;
};

}  // namespace hato::msgauth
