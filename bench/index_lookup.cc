// hato-index-lookup: the full-text index's own part of a search
// (search::TextIndex::LookupFew and Lookup over every document), without a
// server or the store, on the mail of bench/search_bench.py (the same word
// list, 40-400 words per body, a Japanese line in every fifth). Builds the
// index in DIR first (search::TextIndex as it is), then times each needle
// three times. Session 14 compared format 4 with main's format 3 by building
// this same file against main's tree.
//
// Usage: hato-index-lookup MESSAGES [DIR]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "search/text_index.h"

using hato::search::IndexDoc;
using hato::search::TextIndex;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: hato-index-lookup MESSAGES [DIR]\n");
    return 2;
  }
  int n = std::atoi(argv[1]);
  std::string dir = argc > 2 ? argv[2] : "/tmp/hato-index-lookup";
  std::filesystem::remove_all(dir);
  auto index = TextIndex::Open(dir, n);
  if (!index) {
    std::fprintf(stderr, "%s\n", index.error().message.c_str());
    return 1;
  }
  static const char* kWords[] = {
      "meeting",  "budget",  "invoice", "delivery", "schedule", "project", "report",  "network",
      "server",   "backup",  "storage", "customer", "contract", "review",  "release", "update",
      "holiday",  "travel",  "lunch",   "weather",  "printer",  "license", "renewal", "security",
      "password", "account", "mailbox", "folder",   "filter"};
  static const char* kJapanese[] = {"会議の資料を送ります", "請求書をご確認ください",
                                    "明日の予定について", "サーバーの保守作業のお知らせ",
                                    "お疲れ様です"};
  std::mt19937 random(17);
  std::vector<IndexDoc> docs;
  for (int i = 1; i <= n; ++i) {
    IndexDoc d;
    d.id = i;
    d.header = "Subject: x";
    int words = 40 + static_cast<int>(random() % 360);
    for (int j = 0; j < words; ++j) {
      d.body += kWords[random() % std::size(kWords)];
      d.body += j % 10 == 9 ? "\r\n" : " ";
    }
    if (i % 5 == 0) d.body.append(kJapanese[random() % std::size(kJapanese)]).append("\r\n");
    docs.push_back(std::move(d));
    if (docs.size() == 256 || i == n) {
      if (!(*index)->Add(docs, i) || !(*index)->Commit()) {
        std::fprintf(stderr, "indexing failed\n");
        return 1;
      }
      docs.clear();
    }
  }
  std::vector<int64_t> all;
  for (int i = 1; i <= n; ++i) all.push_back(i);
  for (const char* needle : {"保守作業", "保守", "ackup stor", "invoice", "zebracorn"}) {
    for (int round = 0; round < 3; ++round) {
      auto t0 = std::chrono::steady_clock::now();
      auto few = (*index)->LookupFew(needle, false, 1000);
      auto t1 = std::chrono::steady_clock::now();
      auto hits = (*index)->Lookup(needle, false, all);
      auto t2 = std::chrono::steady_clock::now();
      if (!few || !hits) return 1;
      std::printf("%s: LookupFew %.1f ms, Lookup %.1f ms, matches %zu, candidates %zu\n", needle,
                  std::chrono::duration<double, std::milli>(t1 - t0).count(),
                  std::chrono::duration<double, std::milli>(t2 - t1).count(), hits->matches.size(),
                  hits->candidates.size());
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
