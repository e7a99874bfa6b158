// libFuzzer target for the SMTP client's protocol pieces (src/smtp/reply.h)
// and the DSN xtext codec (src/smtp/command.h).
//
//   * ReplyReader, fed the input line by line: a complete reply has a code in
//     200..599, at most kMaxReplyLines lines, and Text() starts with the code;
//     an enhanced code, when found, has the reply's class digit... or any of 2/4/5;
//     ParseEhlo never crashes on it;
//   * DotStuff: DataReader (the server's DATA reader) reads the stuffed text
//     back to the original content (made CRLF-only), ending exactly at the end;
//   * xtext: Decode(Encode(x)) == x, and whatever decodes re-encodes to
//     something that decodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "smtp/command.h"
#include "smtp/data_reader.h"
#include "smtp/reply.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  hato::smtp::ReplyReader reader;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t nl = in.find('\n', pos);
    std::string_view line = in.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl == std::string_view::npos ? in.size() : nl + 1;
    auto done = reader.Feed(line);
    if (!done.ok()) {
      reader = hato::smtp::ReplyReader();
      continue;
    }
    if (*done) {
      hato::smtp::Reply r = reader.Take();
      FUZZ_CHECK(r.code >= 200 && r.code <= 599);
      FUZZ_CHECK(!r.lines.empty() && r.lines.size() <= hato::smtp::kMaxReplyLines);
      FUZZ_CHECK(r.Text().rfind(std::to_string(r.code), 0) == 0);
      std::string enh = r.Enhanced();
      if (!enh.empty()) FUZZ_CHECK(enh[0] == '2' || enh[0] == '4' || enh[0] == '5');
      (void)hato::smtp::ParseEhlo(r);
    }
  }

  std::string content;
  for (char c : in) {
    if (c == '\r') continue;
    if (c == '\n') {
      content += "\r\n";
    } else {
      content.push_back(c);
    }
  }
  std::string stuffed = hato::smtp::DotStuff(content);
  hato::smtp::DataReader data_reader(1u << 30);
  size_t used = data_reader.Feed(stuffed);
  FUZZ_CHECK(data_reader.done());
  FUZZ_CHECK(used == stuffed.size());
  std::string expect = content;
  if (!expect.empty() && expect.compare(expect.size() - std::min<size_t>(2, expect.size()),
                                        std::string::npos, "\r\n") != 0) {
    expect += "\r\n";
  }
  FUZZ_CHECK_EQ_STR(data_reader.content(), expect);

  std::string enc = hato::smtp::EncodeXtext(in);
  auto dec = hato::smtp::DecodeXtext(enc);
  FUZZ_CHECK(dec.has_value());
  FUZZ_CHECK_EQ_STR(*dec, in);
  auto direct = hato::smtp::DecodeXtext(in);
  if (direct) {
    auto again = hato::smtp::DecodeXtext(hato::smtp::EncodeXtext(*direct));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK_EQ_STR(*again, *direct);
  }
  return 0;
}
