// Golden tests for the MIME corpus (tests/mime/corpus/*.eml, written by
// tests/mime/make_corpus.py): each message's BODY, BODYSTRUCTURE, ENVELOPE and
// part offsets must equal its .golden file, and the stored form must round-trip.
//
//   MIME_UPDATE_GOLDEN=1 hato_unit_tests --gtest_filter=MimeGolden.Corpus
// rewrites the goldens (review the diff by hand).
//
// MimeGolden.Dump writes nothing unless MIME_DUMP_DIR is set; then it writes
// one JSON file per message (part tree, types, key parameters, decoded text,
// decoded subject) for the independent oracle, tests/integration/test_mime_oracle.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "imap/proto/bodystructure.h"
#include "mime/message.h"

namespace hato::mime {
namespace {

namespace fs = std::filesystem;

fs::path CorpusDir() {
  if (const char* d = std::getenv("MIME_CORPUS_DIR")) return d;
  return fs::path(__FILE__).parent_path().parent_path() / "mime" / "corpus";
}

std::vector<fs::path> CorpusFiles() {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(CorpusDir(), ec)) {
    if (e.path().extension() == ".eml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// CR and LF (inside literals) made visible, so goldens are one line per item.
std::string Visible(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Offsets(const Part& p, const std::string& number, std::string& out) {
  out += "PART " + (number.empty() ? std::string("root") : number) + " " + p.type + "/" +
         p.subtype + " header=" + std::to_string(p.header_begin) + "-" +
         std::to_string(p.header_end) + " body_end=" + std::to_string(p.body_end) +
         " lines=" + std::to_string(p.lines) + "\n";
  for (size_t i = 0; i < p.children.size(); ++i) {
    // The encapsulated message of a message/rfc822 part is shown as ".msg".
    std::string child = p.IsMultipart() ? std::to_string(i + 1) : "msg";
    Offsets(p.children[i], number.empty() ? child : number + "." + child, out);
  }
}

std::string Render(std::string_view raw, const Part& p) {
  std::string out;
  out += "BODY " + Visible(imap::BodyStructure(p, false)) + "\n";
  out += "BODYSTRUCTURE " + Visible(imap::BodyStructure(p, true)) + "\n";
  out += "ENVELOPE " + Visible(imap::Envelope(p.envelope.value_or(Envelope{}))) + "\n";
  if (p.envelope && p.envelope->subject) {
    out += "SUBJECT " + Visible(DecodeHeader(*p.envelope->subject)) + "\n";
  }
  Offsets(p, "", out);
  (void)raw;
  return out;
}

TEST(MimeGolden, Corpus) {
  auto files = CorpusFiles();
  ASSERT_GE(files.size(), 15u) << "corpus not found in " << CorpusDir();
  const bool update = std::getenv("MIME_UPDATE_GOLDEN") != nullptr;
  for (const fs::path& eml : files) {
    SCOPED_TRACE(eml.filename().string());
    std::string raw = ReadFile(eml);
    auto parsed = Parse(raw);
    ASSERT_TRUE(parsed.ok());
    auto back = Deserialize(Serialize(*parsed));
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(*back == *parsed);
    std::string got = Render(raw, *parsed);
    fs::path golden = eml;
    golden.replace_extension(".golden");
    if (update) {
      std::ofstream(golden, std::ios::binary) << got;
      continue;
    }
    EXPECT_EQ(got, ReadFile(golden));
  }
}

// ---- JSON dump for the Python oracle ----

std::string Json(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string Utf8Json(std::string_view s) { return Json(ToUtf8(s, "utf-8")); }

void DumpPart(std::string_view raw, const Part& p, std::string& out) {
  out += "{\"type\":" + Json(p.type + "/" + p.subtype);
  out += ",\"opaque\":";
  out += ((p.IsMultipart() || p.IsMessage()) && p.children.empty()) ? "true" : "false";
  out += ",\"params\":{";
  bool first = true;
  for (const Param& prm : p.params) {
    if (prm.name == "boundary") continue;  // compared structurally instead
    if (!first) out += ",";
    first = false;
    out += Utf8Json(prm.name) + ":" + Utf8Json(prm.value);
  }
  out += "}";
  for (const Param& prm : p.disposition_params) {
    if (prm.name == "filename") out += ",\"filename\":" + Utf8Json(prm.value);
  }
  if (p.envelope && p.envelope->subject) {
    out += ",\"subject\":" + Json(DecodeHeader(*p.envelope->subject));
  }
  if (p.envelope && !p.envelope->from.empty() && p.envelope->from[0].host) {
    const Address& a = p.envelope->from[0];
    out += ",\"from\":{\"name\":" + Json(DecodeHeader(a.name.value_or(""))) +
           ",\"addr\":" + Utf8Json(a.mailbox.value_or("") + "@" + *a.host) + "}";
  }
  if (p.type == "text" && p.children.empty()) out += ",\"text\":" + Json(DecodedText(raw, p));
  out += ",\"children\":[";
  for (size_t i = 0; i < p.children.size(); ++i) {
    if (i > 0) out += ",";
    DumpPart(raw, p.children[i], out);
  }
  out += "]}";
}

TEST(MimeGolden, Dump) {
  const char* dir = std::getenv("MIME_DUMP_DIR");
  if (dir == nullptr) GTEST_SKIP() << "set MIME_DUMP_DIR to write the oracle dump";
  auto files = CorpusFiles();
  ASSERT_FALSE(files.empty()) << "corpus not found in " << CorpusDir();
  for (const fs::path& eml : files) {
    std::string raw = ReadFile(eml);
    auto parsed = Parse(raw);
    ASSERT_TRUE(parsed.ok());
    std::string out;
    DumpPart(raw, *parsed, out);
    fs::path json = fs::path(dir) / eml.filename();
    json.replace_extension(".json");
    std::ofstream(json, std::ios::binary) << out << "\n";
  }
}

}  // namespace
}  // namespace hato::mime
