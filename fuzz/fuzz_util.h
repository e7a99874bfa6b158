// Shared helpers for Hato's libFuzzer targets (fuzz/fuzz_*.cc): an invariant
// check that prints what failed (with the bytes involved, in hex) and aborts, so
// libFuzzer records the input as a crash, and a cheap deterministic hash used to
// derive split points and limits from the input itself.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace hato::fuzz {

inline std::string Hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s.substr(0, 512)) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  if (s.size() > 512) out += "...";
  return out;
}

[[noreturn]] inline void Fail(const char* file, int line, const char* cond, const std::string& a,
                              const std::string& b) {
  std::fprintf(stderr, "\n==== fuzz invariant violated at %s:%d: %s\n", file, line, cond);
  if (!a.empty()) std::fprintf(stderr, "  lhs (hex): %s\n", Hex(a).c_str());
  if (!b.empty()) std::fprintf(stderr, "  rhs (hex): %s\n", Hex(b).c_str());
  std::fflush(stderr);
  std::abort();
}

// FNV-1a: derives split points and limits from the data, so a given input
// always exercises the same chunking (reproducible crashes).
inline uint64_t Hash(std::string_view s, uint64_t seed = 0) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

inline bool IsAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

inline bool HasAsciiUpper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

}  // namespace hato::fuzz

// Aborts with a message when `cond` is false.
#define FUZZ_CHECK(cond)                                                \
  do {                                                                  \
    if (!(cond)) ::hato::fuzz::Fail(__FILE__, __LINE__, #cond, "", ""); \
  } while (0)

// Aborts when a != b (both convertible to std::string_view), printing both in hex.
// The operands are bound to references first so that temporaries outlive the check.
#define FUZZ_CHECK_EQ_STR(a, b)                                                  \
  do {                                                                           \
    const auto& fuzz_a_ = (a);                                                   \
    const auto& fuzz_b_ = (b);                                                   \
    if (std::string_view(fuzz_a_) != std::string_view(fuzz_b_)) {                \
      ::hato::fuzz::Fail(__FILE__, __LINE__, #a " == " #b, std::string(fuzz_a_), \
                         std::string(fuzz_b_));                                  \
    }                                                                            \
  } while (0)
