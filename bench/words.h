// The words the load generators' 4 KiB messages are made of (hato-smtp-load's
// MessageBuilder, hato-index-cost): ordinary office prose, so the text index
// sees a realistic mix of common and rarer words.
#pragma once

namespace hato::bench {

inline constexpr const char* kWords[] = {
    "the",     "quarterly", "report",   "meeting",  "please",   "review",  "attached", "schedule",
    "project", "team",      "update",   "customer", "server",   "release", "budget",   "thanks",
    "regards", "we",        "will",     "should",   "could",    "discuss", "tomorrow", "morning",
    "after",   "lunch",     "numbers",  "look",     "good",     "issue",   "fixed",    "deploy",
    "staging", "mail",      "delivery", "queue",    "latency",  "message", "inbox",    "question",
    "answer",  "and",       "or",       "with",     "for",      "from",    "about",    "this",
    "that",    "our",       "your",     "their",    "is",       "are",     "was",      "be",
    "a",       "an",        "to",       "of",       "in",       "on",      "at",       "it",
    "not",     "all",       "new",      "first",    "last",     "week",    "month",    "year",
    "plan",    "draft",     "final",    "version",  "notes",    "agenda",  "call",     "office",
    "travel",  "invoice",   "payment",  "order",    "shipping", "support", "ticket",   "feature",
    "request", "document",  "summary"};

}  // namespace hato::bench
