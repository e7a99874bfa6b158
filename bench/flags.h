// Command-line flags shared by the bench tools (hato-smtp-load, hato-imap-load,
// hato-idle-rss): "--name value" pairs, integer ranges checked, and boolean
// switches. Header-only: the tools build without the Hato libraries.
#pragma once

#include <boost/system/system_error.hpp>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>

namespace hato::bench {

struct IntFlag {
  int* value;
  int min, max;
};

struct Flags {
  std::map<std::string, IntFlag> ints;
  std::map<std::string, std::string*> strings;
  std::map<std::string, bool*> switches;  // present = true, no value
};

// Fills the flags' targets from argv; on a bad, unknown or incomplete flag
// calls usage(message), which must not return.
template <typename Usage>
void ParseFlags(int argc, char** argv, const Flags& flags, Usage usage) {
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    if (auto b = flags.switches.find(f); b != flags.switches.end()) {
      *b->second = true;
      continue;
    }
    if (i + 1 >= argc) usage(("missing value for " + f).c_str());
    std::string v = argv[++i];
    if (auto s = flags.strings.find(f); s != flags.strings.end()) {
      *s->second = v;
    } else if (auto n = flags.ints.find(f); n != flags.ints.end()) {
      char* end = nullptr;
      long x = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || x < n->second.min || x > n->second.max) {
        usage(("bad value for " + f).c_str());
      }
      *n->second.value = static_cast<int>(x);
    } else {
      usage(("unknown option " + f).c_str());
    }
  }
}

// An exception as one line, without Boost's source location.
inline std::string Describe(const std::exception& e) {
  if (auto* se = dynamic_cast<const boost::system::system_error*>(&e)) {
    return se->code().message();
  }
  return e.what();
}

}  // namespace hato::bench
