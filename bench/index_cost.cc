// hato-index-cost: the CPU time of the full-text index's own work per message
// (search::TextIndex::Add and Commit: term generation and Xapian), without a
// server, by how many bodies go into one Xapian commit. The bodies are the
// load generator's (bench/smtp_load.cc: word-wrapped English-like text from
// the same word list) with its headers, already extracted (as
// mime::ExtractSearchText would give them for this plain-text mail).
//
// --variant other than "index" (the default: search::TextIndex as it is,
// format 4: tokens with positions) writes the same documents straight to
// Xapian with other terms, to price an index design (the search side of
// those is not here):
//   format3       format 3 as text_index.cc wrote it until session 14:
//                 trigrams with positions, run ends, word terms
//   no-positions  format 3's trigram and word terms, without positions or run ends
//   run-positions each whitespace-free run (to 64 bytes) as a term with its
//                 position, and the word terms; no trigrams
//   words         the word terms only (search::Words)
//
// Usage: hato-index-cost [--messages N] [--batch B] [--size BYTES] [--dir DIR]
//                        [--variant index|format3|no-positions|run-positions|words]
// Prints one JSON line: messages, batch, variant, CPU ms per message
// (user+sys of the process, clock(3)), index bytes per message.
#include <xapian.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "search/terms.h"
#include "search/text_index.h"
#include "words.h"

namespace {

using hato::bench::kWords;

// smtp_load.cc's MessageBuilder, split into the header and body text.
hato::search::IndexDoc Message(int index, size_t size) {
  char token[48];
  std::snprintf(token, sizeof token, "hb%016llx-%08d", 0x5eed5eed5eedULL, index);
  hato::search::IndexDoc d;
  d.id = index + 1;
  d.header =
      std::string("From: Load Generator <loadgen@hato-bench.example>\nTo: <bench@bench.test>\n") +
      "Subject: Benchmark message " + std::to_string(index) + " token " + token +
      "\nDate: Thu, 03 Dec 2026 18:00:00 +0000\nMessage-ID: <" + token +
      "@hato-bench.test>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n" +
      "Content-Transfer-Encoding: 7bit\n";
  std::minstd_rand rng(static_cast<uint32_t>(index) * 2654435761u | 1);
  bool sentence_start = true;
  std::string line;
  size_t target = size > d.header.size() ? size - d.header.size() : 0;
  while (d.body.size() + 3 <= target) {
    line.clear();
    for (;;) {
      std::string word = kWords[rng() % std::size(kWords)];
      if (sentence_start) word[0] = static_cast<char>(word[0] - 'a' + 'A');
      sentence_start = rng() % 9 == 0;
      if (sentence_start) word += '.';
      if (!line.empty()) word.insert(word.begin(), ' ');
      if (line.size() + word.size() > 72) break;
      line += word;
    }
    d.body += line + "\r\n";
  }
  return d;
}

// One field of a --variant document (prefix "H" or "B", as text_index.cc).
void AddVariantField(Xapian::Document& doc, const std::string& variant, std::string_view text,
                     const std::string& prefix) {
  using namespace hato::search;
  std::string folded = Fold(text);
  if (variant == "format3") {
    TrigramPostings postings = Postings(folded);
    std::string term(prefix);
    for (size_t i = 0; i < postings.grams.size(); ++i) {
      const std::string& gram = postings.grams[i];
      if (prefix == "H" && IsCommonHeaderGram(gram)) continue;
      term.resize(prefix.size());
      term += gram;
      for (uint32_t p : postings.PositionsOf(i)) doc.add_posting(term, p, 0);
    }
    if (postings.cut) doc.add_boolean_term(OverflowTerm(prefix));
  } else if (variant == "no-positions") {
    for (const auto& t : Trigrams(folded, prefix)) doc.add_boolean_term(t);
  } else if (variant == "run-positions") {
    std::string term = prefix + '\x01';
    Xapian::termpos position = 0;
    for (size_t i = 0; i < folded.size();) {
      while (i < folded.size() && std::isspace(static_cast<unsigned char>(folded[i]))) ++i;
      size_t start = i;
      while (i < folded.size() && !std::isspace(static_cast<unsigned char>(folded[i]))) ++i;
      if (i == start) break;
      term.resize(prefix.size() + 1);
      term.append(folded, start, std::min<size_t>(i - start, 64));
      doc.add_posting(term, ++position, 0);
    }
  }
  for (const auto& word : Words(folded)) doc.add_boolean_term(prefix + '\t' + word);
}

}  // namespace

int main(int argc, char** argv) {
  int messages = 5000, batch = 256;
  size_t size = 4096;
  std::string dir = "/tmp/hato-index-cost";
  std::string variant = "index";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--messages")
      messages = std::atoi(argv[i + 1]);
    else if (flag == "--batch")
      batch = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--size")
      size = std::strtoul(argv[i + 1], nullptr, 10);
    else if (flag == "--dir")
      dir = argv[i + 1];
    else if (flag == "--variant")
      variant = argv[i + 1];
    else {
      std::fprintf(stderr,
                   "usage: hato-index-cost [--messages N] [--batch B] [--size BYTES] [--dir DIR] "
                   "[--variant index|format3|no-positions|run-positions|words]\n");
      return 2;
    }
  }
  std::filesystem::remove_all(dir);
  std::vector<hato::search::IndexDoc> docs;
  docs.reserve(messages);
  for (int i = 0; i < messages; ++i) docs.push_back(Message(i, size));
  std::clock_t start = std::clock();
  if (variant == "index") {
    auto index = hato::search::TextIndex::Open(dir, messages);
    if (!index) {
      std::fprintf(stderr, "%s\n", index.error().message.c_str());
      return 1;
    }
    for (int i = 0; i < messages; i += batch) {
      int end = std::min(messages, i + batch);
      std::vector<hato::search::IndexDoc> part(docs.begin() + i, docs.begin() + end);
      if (!(*index)->Add(part, end) || !(*index)->Commit()) {
        std::fprintf(stderr, "indexing failed\n");
        return 1;
      }
    }
  } else if (variant == "format3" || variant == "no-positions" || variant == "run-positions" ||
             variant == "words") {
    Xapian::WritableDatabase db(
        dir, Xapian::DB_CREATE_OR_OPEN | Xapian::DB_NO_SYNC | Xapian::DB_BACKEND_GLASS);
    for (int i = 0; i < messages; ++i) {
      Xapian::Document doc;
      AddVariantField(doc, variant, docs[i].header, "H");
      AddVariantField(doc, variant, docs[i].body, "B");
      db.replace_document(static_cast<Xapian::docid>(docs[i].id), doc);
      if ((i + 1) % batch == 0) db.commit();
    }
    db.commit();
  } else {
    std::fprintf(stderr, "unknown --variant %s\n", variant.c_str());
    return 2;
  }
  double ms = double(std::clock() - start) * 1000.0 / CLOCKS_PER_SEC / messages;
  uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  std::printf(
      "{\"messages\": %d, \"batch\": %d, \"variant\": \"%s\", \"size\": %zu, "
      "\"cpu_ms_per_msg\": %.4f, \"index_bytes_per_msg\": %.0f}\n",
      messages, batch, variant.c_str(), size, ms, double(bytes) / messages);
  std::filesystem::remove_all(dir);
  return 0;
}
