// libFuzzer target for the SMTP message-content readers (src/smtp/data_reader.h).
//
// DataReader is checked against a small reference model written from RFC 5321
// section 4.1.1.4 / 4.5.2 and the smuggling rules in data_reader.h:
//   * DATA ends at the first <CRLF>.<CRLF> (or at ".\r\n" at the very start), and
//     only there: "." lines ended by bare CR or bare LF are content;
//   * a leading dot is removed only on a line that starts after a real CRLF and
//     whose dot is followed by an ordinary byte;
//   * bare CR and bare LF become CRLF, so the content has no bare CR or LF;
//   * size() counts the whole content; past the limit too_large() is set and the
//     kept content is a prefix of the full content, at most `limit` bytes.
// The same input fed whole, split in two at a data-derived point, in random
// chunks and byte by byte must give identical results. An input that does not
// finish is completed with "\r\n.\r\n" so every run ends with a full comparison.
// LineEndingNormalizer (BDAT) is checked the same way against its reference.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "smtp/data_reader.h"

namespace {

using hato::fuzz::Hash;
using hato::smtp::DataReader;
using hato::smtp::LineEndingNormalizer;

constexpr uint64_t kBigLimit = 1ull << 30;

// Bare CR and bare LF become CRLF; CRLF stays.
std::string RefNormalize(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r') {
      out += "\r\n";
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else if (in[i] == '\n') {
      out += "\r\n";
    } else {
      out += in[i];
    }
  }
  return out;
}

struct RefData {
  bool done = false;
  size_t consumed = 0;
  std::string content;  // only meaningful when done
};

RefData RefRead(std::string_view in) {
  RefData r;
  size_t end = std::string_view::npos;
  if (in.substr(0, 3) == ".\r\n") {
    end = 3;
  } else if (size_t p = in.find("\r\n.\r\n"); p != std::string_view::npos) {
    end = p + 5;
  }
  if (end == std::string_view::npos) {
    r.consumed = in.size();
    return r;
  }
  r.done = true;
  r.consumed = end;
  // The body: everything before the final ".\r\n", i.e. complete CRLF-ended lines.
  std::string_view body = in.substr(0, end - 3);
  while (!body.empty()) {
    size_t crlf = body.find("\r\n");
    FUZZ_CHECK(crlf != std::string_view::npos);  // the body ends with CRLF
    std::string_view line = body.substr(0, crlf);
    body.remove_prefix(crlf + 2);
    FUZZ_CHECK(line != ".");  // would have been the terminator
    // Inside `line` every CR and every LF is bare (a CRLF would have split it).
    if (line.size() >= 2 && line[0] == '.' && line[1] != '\r' && line[1] != '\n') {
      line.remove_prefix(1);  // dot-stuffing
    }
    r.content += RefNormalize(line);
    r.content += "\r\n";
  }
  return r;
}

struct Outcome {
  bool done = false;
  bool too_large = false;
  size_t consumed = 0;
  uint64_t size = 0;
  std::string content;
};

// Feeds `in` to a fresh reader in the given chunk sizes (the last chunk takes the rest).
Outcome FeedChunks(std::string_view in, uint64_t limit, const std::vector<size_t>& cuts) {
  DataReader r(limit);
  Outcome o;
  size_t pos = 0;
  for (size_t i = 0; pos < in.size() && !r.done(); ++i) {
    size_t n = i < cuts.size() ? cuts[i] : in.size() - pos;
    if (n > in.size() - pos) n = in.size() - pos;
    size_t used = r.Feed(in.substr(pos, n));
    FUZZ_CHECK(used <= n);
    FUZZ_CHECK(used == n || r.done());  // fewer bytes only when the terminator was found
    o.consumed += used;
    pos += n;
  }
  o.done = r.done();
  o.too_large = r.too_large();
  o.size = r.size();
  o.content = r.content();
  return o;
}

void CheckOnlyCrlf(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') FUZZ_CHECK(i + 1 < s.size() && s[i + 1] == '\n');
    if (s[i] == '\n') FUZZ_CHECK(i > 0 && s[i - 1] == '\r');
  }
}

void CheckAgainstRef(std::string_view in, const Outcome& o, const RefData& ref, uint64_t limit) {
  FUZZ_CHECK(o.done == ref.done);
  FUZZ_CHECK(o.consumed == ref.consumed);
  CheckOnlyCrlf(o.content);
  FUZZ_CHECK(o.content.size() <= limit);
  if (!o.done) return;
  std::string_view used = in.substr(0, o.consumed);
  FUZZ_CHECK(used == ".\r\n" || (used.size() >= 5 && used.substr(used.size() - 5) == "\r\n.\r\n"));
  FUZZ_CHECK(o.size == ref.content.size());
  FUZZ_CHECK(o.too_large == (ref.content.size() > limit));
  if (o.too_large) {
    FUZZ_CHECK_EQ_STR(o.content, std::string_view(ref.content).substr(0, o.content.size()));
  } else {
    FUZZ_CHECK_EQ_STR(o.content, ref.content);
    // A finished message is empty or ends with a line break.
    FUZZ_CHECK(o.content.empty() || o.content.ends_with("\r\n"));
  }
}

void CheckDataReader(std::string_view in) {
  const uint64_t h = Hash(in);
  const size_t split = in.empty() ? 0 : h % (in.size() + 1);

  Outcome whole = FeedChunks(in, kBigLimit, {});
  Outcome halves = FeedChunks(in, kBigLimit, {split});
  // Byte by byte (1-byte chunks) for inputs up to 4 KiB; 1..8-byte chunks beyond.
  std::vector<size_t> small(in.size(), 1);
  if (in.size() > 4096) {
    for (size_t i = 0; i < small.size(); ++i) small[i] = 1 + ((h >> (i % 61)) & 7);
  }
  Outcome bytes = FeedChunks(in, kBigLimit, small);
  for (const Outcome* o : {&halves, &bytes}) {
    FUZZ_CHECK(o->done == whole.done);
    FUZZ_CHECK(o->consumed == whole.consumed);
    FUZZ_CHECK(o->too_large == whole.too_large);
    FUZZ_CHECK(o->size == whole.size);
    FUZZ_CHECK_EQ_STR(o->content, whole.content);
  }
  FUZZ_CHECK(whole.done || whole.consumed == in.size());

  // Complete an unfinished message so the content can be compared in full.
  std::string full(in);
  if (!whole.done) full += "\r\n.\r\n";
  RefData ref = RefRead(full);
  FUZZ_CHECK(ref.done);
  CheckAgainstRef(full, FeedChunks(full, kBigLimit, {}), ref, kBigLimit);
  CheckAgainstRef(full, FeedChunks(full, kBigLimit, {split}), ref, kBigLimit);
  if (whole.done) CheckAgainstRef(in, whole, RefRead(in), kBigLimit);

  // A small limit and random chunks: the end is still found; content is cut.
  uint64_t limit = (h >> 20) % (ref.content.size() + 2);
  std::vector<size_t> cuts;
  for (uint64_t x = h, i = 0; i < 64; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    cuts.push_back(static_cast<size_t>(x >> 58));  // 0..63 bytes
  }
  CheckAgainstRef(full, FeedChunks(full, limit, cuts), ref, limit);
}

void CheckNormalizer(std::string_view in) {
  const uint64_t h = Hash(in, 1);
  const std::string ref = RefNormalize(in);
  auto run = [&](size_t chunk, uint64_t limit) {
    LineEndingNormalizer n;
    std::string out;
    for (size_t pos = 0; pos < in.size(); pos += chunk) n.Feed(in.substr(pos, chunk), out, limit);
    n.Finish(out, limit);
    FUZZ_CHECK(n.total() == ref.size());
    FUZZ_CHECK(n.overflowed() == (ref.size() > limit));
    FUZZ_CHECK(out.size() <= limit);
    CheckOnlyCrlf(out);
    FUZZ_CHECK_EQ_STR(out, std::string_view(ref).substr(0, out.size()));
    if (!n.overflowed()) FUZZ_CHECK_EQ_STR(out, ref);
  };
  run(in.size() + 1, kBigLimit);
  run(1, kBigLimit);
  run(1 + h % 17, kBigLimit);
  run(1 + (h >> 8) % 7, (h >> 16) % (ref.size() + 2));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckDataReader(in);
  CheckNormalizer(in);
  return 0;
}
