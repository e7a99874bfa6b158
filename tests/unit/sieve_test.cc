// The Sieve interpreter's golden corpus (tests/sieve/*.test): a script, a
// message, optionally an envelope and a scanner verdict in; the actions out.
// Most cases are the examples of the RFCs that define each extension. File
// format (sections start with "=== NAME" lines):
//   === script          the Sieve script
//   === message         the message (LF line ends become CRLF)
//   === envelope        "from ADDR" / "to ADDR" lines (default from
//                       sender@remote.test, to alice@example.test)
//   === verdict         "spam SCORE REQUIRED", "virus NAME" or "clean"
//   === include NAME    a personal script for include
//   === expect          the outcome, one action a line (Render below), or
//                       "error: TEXT" (a substring of the error) for a script
//                       that must be refused or fail at run time.
//   SIEVE_UPDATE_GOLDEN=1 hato_unit_tests --gtest_filter='Sieve*' rewrites the expectations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "jmap/vacation.h"
#include "sieve/interpret.h"

namespace hato::sieve {
namespace {

namespace fs = std::filesystem;

fs::path CorpusDir() { return fs::path(__FILE__).parent_path().parent_path() / "sieve"; }

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Crlf(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

std::string Render(const Outcome& o) {
  std::string out;
  for (const auto& f : o.files) {
    out += f.mailbox.empty() ? "keep" : "fileinto \"" + f.mailbox + "\"";
    if (f.create) out += " :create";
    if (!f.flags.empty()) {
      out += " flags=";
      for (size_t i = 0; i < f.flags.size(); ++i) out += (i ? " " : "") + f.flags[i];
    }
    out += "\n";
  }
  for (const auto& r : o.redirects) out += "redirect " + r + "\n";
  if (o.reject)
    out += std::string(o.ereject ? "ereject" : "reject") + " \"" + o.reject_reason + "\"\n";
  if (o.vacation) {
    const auto& v = *o.vacation;
    out += "vacation to=" + v.to + " seconds=" + std::to_string(v.seconds) + " subject=\"" +
           v.subject + "\"";
    if (!v.from.empty()) out += " from=" + v.from;
    if (v.mime) out += " mime";
    out += "\n";
  }
  for (const auto& d : o.duplicates) out += "track seconds=" + std::to_string(d.seconds) + "\n";
  if (o.header) {
    std::string h = *o.header;
    for (size_t p; (p = h.find("\r\n")) != std::string::npos;) h.replace(p, 2, "|");
    out += "header " + h + "\n";
  }
  return out;
}

struct Case {
  std::map<std::string, std::string> sections;
};

Case ReadCase(const std::string& text) {
  Case c;
  std::string current;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("=== ", 0) == 0) {
      current = line.substr(4);
      c.sections[current];
      continue;
    }
    if (!current.empty()) c.sections[current] += line + "\n";
  }
  return c;
}

const char* kDefaultMessage =
    "From: Sender <sender@remote.test>\n"
    "To: Alice <alice@example.test>\n"
    "Subject: hello\n"
    "Date: Tue, 1 Dec 2026 10:00:00 +0100\n"
    "Message-ID: <1@remote.test>\n"
    "\n"
    "Hello Alice\n";

// Runs a case with the script as compiled, or `prepared` (interpret.h
// Prepared: its tests bound once, as delivery runs it).
std::string RunCase(const Case& c, std::set<std::string>* seen, bool prepared = false) {
  auto get = [&](const std::string& k) {
    auto it = c.sections.find(k);
    return it == c.sections.end() ? std::string() : it->second;
  };
  auto script = Compile(get("script"));
  if (!script) return "error: " + script.error().message + "\n";
  std::string message = Crlf(c.sections.count("message") ? get("message") : kDefaultMessage);
  Environment env;
  env.message = message;
  env.envelope.from = "sender@remote.test";
  env.envelope.to = "alice@example.test";
  env.now = 1796212800;  // 2026-12-02 12:00:00 UTC
  std::istringstream e(get("envelope"));
  for (std::string w, v; e >> w >> v;) {
    if (v == "<>") v = "";
    (w == "from" ? env.envelope.from : env.envelope.to) = v;
  }
  std::istringstream vs(get("verdict"));
  for (std::string w; vs >> w;) {
    if (w == "spam") {
      env.verdict.spam_scanned = true;
      vs >> env.verdict.spam_score >> env.verdict.spam_required;
    } else if (w == "virus") {
      env.verdict.virus_scanned = true;
      env.verdict.virus_found = true;
      vs >> env.verdict.virus_name;
    } else if (w == "clean") {
      env.verdict.virus_scanned = true;
    }
  }
  env.mailbox_exists = [](const std::string& m) {
    return m == "INBOX" || m == "Junk" || m == "Lists";
  };
  env.load_script = [&](const std::string& name, bool global) -> Result<std::string> {
    auto it = c.sections.find((global ? "global " : "include ") + name);
    if (it == c.sections.end()) return Err(ErrorKind::kNotFound, "no script " + name);
    return it->second;
  };
  env.duplicate_seen = [seen](const std::string& key, int64_t) {
    return seen != nullptr && seen->count(key) != 0;
  };
  auto out = prepared ? sieve::Run(Prepared(*script), env) : sieve::Run(*script, env);
  if (!out) return "error: " + out.error().message + "\n";
  if (seen) {
    for (const auto& d : out->duplicates) seen->insert(d.key);
  }
  return Render(*out);
}

TEST(SieveGolden, Corpus) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(CorpusDir())) {
    if (e.path().extension() == ".test") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 20u);
  bool update = std::getenv("SIEVE_UPDATE_GOLDEN") != nullptr;
  for (const auto& p : files) {
    SCOPED_TRACE(p.filename().string());
    std::string text = ReadFile(p);
    Case c = ReadCase(text);
    std::set<std::string> seen;
    std::string got = RunCase(c, &seen);
    // A second delivery of the same message (duplicate's tracking).
    if (c.sections.count("second run")) got += "--- second run\n" + RunCase(c, &seen);
    // The same outcome from the prepared script (what delivery runs).
    std::set<std::string> seen_prepared;
    std::string prepared = RunCase(c, &seen_prepared, true);
    if (c.sections.count("second run")) {
      prepared += "--- second run\n" + RunCase(c, &seen_prepared, true);
    }
    EXPECT_EQ(prepared, got) << "prepared";
    std::string want = c.sections["expect"];
    if (update && got != want) {
      size_t at = text.find("=== expect\n");
      text = text.substr(0, at) + "=== expect\n" + got;
      std::ofstream(p, std::ios::binary) << text;
      continue;
    }
    if (want.rfind("error: ", 0) == 0) {
      EXPECT_EQ(got.rfind("error: ", 0), 0u) << got;
      EXPECT_NE(got.find(want.substr(7, want.size() - 8)), std::string::npos) << got;
    } else {
      EXPECT_EQ(got, want);
    }
  }
}

TEST(SieveParse, Limits) {
  Limits l;
  l.max_script_bytes = 100;
  EXPECT_EQ(Parse(std::string(101, ' '), l).error().kind, ErrorKind::kTooLarge);
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "if true {";
  for (int i = 0; i < 40; ++i) deep += "}";
  EXPECT_EQ(Parse(deep).error().kind, ErrorKind::kTooLarge);
  std::string nots = "if " + std::string();
  for (int i = 0; i < 40; ++i) nots += "not ";
  nots += "true { keep; }";
  EXPECT_EQ(Parse(nots).error().kind, ErrorKind::kTooLarge);
  EXPECT_NE(Parse("keep;\nkeep\n").error().message.find("line 3"), std::string::npos);
}

TEST(SieveParse, StringsAndNumbers) {
  auto s = Parse("x \"a\\\"b\\\\c\\d\" 10K [\"1\", \"2\"] :Tag text: # c\r\nl1\r\n..dot\r\n.\r\n;");
  ASSERT_TRUE(s.ok()) << s.error().message;
  const auto& a = s->commands[0].args;
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(a[0].strings[0], "a\"b\\cd");
  EXPECT_EQ(a[1].number, 10240u);
  EXPECT_EQ(a[2].strings.size(), 2u);
  EXPECT_EQ(a[3].tag, "tag");
  EXPECT_EQ(a[4].strings[0], "l1\r\n.dot\r\n");
}

TEST(SieveRun, RedirectLimitAndActionLimit) {
  std::string script;
  for (int i = 0; i < 6; ++i) script += "redirect \"u" + std::to_string(i) + "@x.test\";\n";
  auto s = Compile(script);
  ASSERT_TRUE(s.ok());
  std::string msg = Crlf(kDefaultMessage);
  Environment env;
  env.message = msg;
  auto r = sieve::Run(*s, env);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTooLarge);
}

// IMAP NOTIFY's INBOXES (RFC 5465 section 6.2): the folders a script may
// file into, at any depth, each once; names with variables are unknown.
TEST(SieveFileintoTargets, LiteralMailboxesInOrder) {
  auto s = Compile(
      "require [\"fileinto\", \"imap4flags\", \"mailbox\", \"variables\"];\n"
      "if header :contains \"subject\" \"a\" { fileinto :flags \"\\\\Seen\" \"Lists/A\"; }\n"
      "elsif header :contains \"subject\" \"b\" {\n"
      "  if true { fileinto :create \"Deep\"; fileinto \"Lists/A\"; }\n"
      "} else { set \"x\" \"y\"; fileinto \"${x}\"; keep; }\n");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(FileintoTargets(*s), (std::vector<std::string>{"Lists/A", "Deep"}));
  auto none = Compile("keep;\n");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(FileintoTargets(*none).empty());
}

TEST(SieveJmapVacation, GeneratedScriptCompilesAndReplies) {
  namespace json = boost::json;
  json::object v{{"id", "singleton"},
                 {"isEnabled", true},
                 {"fromDate", "2026-11-01T00:00:00Z"},
                 {"toDate", "2026-12-31T00:00:00Z"},
                 {"subject", "Away \"now\""},
                 {"textBody", "Back soon"},
                 {"htmlBody", nullptr}};
  std::string text = jmap::VacationScript(v);
  auto script = Compile(text);
  ASSERT_TRUE(script.ok()) << script.error().message << "\n" << text;
  std::string msg = Crlf(kDefaultMessage);
  Environment env;
  env.message = msg;
  env.envelope = {"sender@remote.test", "alice@example.test"};
  env.now = 1796212800;  // inside the period
  auto out = sieve::Run(*script, env);
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(out->vacation.has_value());
  EXPECT_EQ(out->vacation->subject, "Away \"now\"");
  env.now = 1900000000;  // after toDate
  out = sieve::Run(*script, env);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(out->vacation.has_value());
  v["isEnabled"] = false;
  out = sieve::Run(*Compile(jmap::VacationScript(v)), env);
  EXPECT_FALSE(out->vacation.has_value());
}

}  // namespace
}  // namespace hato::sieve
