// SORT and THREAD, pure parts (see sort.h). RFC 5256 sections 2.1 (base
// subject), 2.2 (sent date), 3 (SORT, THREAD=ORDEREDSUBJECT,
// THREAD=REFERENCES); RFC 5957 (DISPLAYFROM, DISPLAYTO).
#include "imap/proto/sort.h"

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <unordered_map>

#include "imap/proto/strings.h"

namespace hato::imap {
namespace {

bool IsWsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool StartsWithNoCase(std::string_view s, size_t at, std::string_view word) {
  if (s.size() - std::min(at, s.size()) < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (Upper(s[at + i]) != Upper(word[i])) return false;
  }
  return true;
}

// subj-blob = "[" *BLOBCHAR "]" *WSP: the end of one at `at`, or npos.
size_t SkipBlob(std::string_view s, size_t at) {
  if (at >= s.size() || s[at] != '[') return std::string::npos;
  size_t i = at + 1;
  while (i < s.size() && s[i] != ']' && s[i] != '[') ++i;
  if (i >= s.size() || s[i] != ']') return std::string::npos;
  ++i;
  while (i < s.size() && s[i] == ' ') ++i;
  return i;
}

// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":": its end, or npos.
size_t SkipRefwd(std::string_view s, size_t at) {
  size_t i;
  if (StartsWithNoCase(s, at, "re")) {
    i = at + 2;
  } else if (StartsWithNoCase(s, at, "fwd")) {
    i = at + 3;
  } else if (StartsWithNoCase(s, at, "fw")) {
    i = at + 2;
  } else {
    return std::string::npos;
  }
  while (i < s.size() && s[i] == ' ') ++i;
  if (size_t b = SkipBlob(s, i); b != std::string::npos) i = b;
  if (i < s.size() && s[i] == ':') return i + 1;
  return std::string::npos;
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::optional<int> Number(std::string_view w) {
  if (w.empty() || w.size() > 9) return std::nullopt;
  int n = 0;
  for (char c : w) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

std::string BaseSubject(std::string_view subject, bool* reply_or_forward) {
  // (1) Whitespace runs (tabs and folding included) become one space.
  std::string s;
  s.reserve(subject.size());
  for (char c : subject) {
    if (IsWsp(c)) {
      if (s.empty() || s.back() != ' ') s += ' ';
    } else {
      s += c;
    }
  }
  bool rf = false;
  while (true) {
    // (2) Trailing "(fwd)" and whitespace.
    while (true) {
      if (!s.empty() && s.back() == ' ') {
        s.pop_back();
      } else if (s.size() >= 5 && StartsWithNoCase(s, s.size() - 5, "(fwd)")) {
        s.resize(s.size() - 5);
        rf = true;
      } else {
        break;
      }
    }
    // (3) and (4), until neither changes anything.
    while (true) {
      size_t before = s.size();
      while (true) {  // (3) subj-leader = (*subj-blob subj-refwd) / WSP
        if (!s.empty() && s[0] == ' ') {
          s.erase(0, 1);
          continue;
        }
        size_t i = 0;
        for (size_t b; (b = SkipBlob(s, i)) != std::string::npos;) i = b;
        size_t r = SkipRefwd(s, i);
        if (r == std::string::npos) break;
        s.erase(0, r);
        rf = true;
      }
      // (4) A leading subj-blob, when something remains after it.
      if (size_t b = SkipBlob(s, 0); b != std::string::npos && b < s.size()) s.erase(0, b);
      if (s.size() == before) break;
    }
    // (5) "[fwd:" ... "]" around the rest.
    if (s.size() >= 6 && StartsWithNoCase(s, 0, "[fwd:") && s.back() == ']') {
      s = s.substr(5, s.size() - 6);
      rf = true;
      continue;
    }
    break;
  }
  if (reply_or_forward) *reply_or_forward = rf;
  return SortFold(s);
}

std::string SortFold(std::string_view in) {
  // U+00C0..U+00FF: the base letter and the combining mark's UTF-8 tail
  // (U+03xx is 0xCC 0x80+xx); "" where there is no decomposition.
  struct Fold {
    const char* base;
    unsigned char mark;  // 0: none
  };
  static constexpr Fold kLatin1[64] = {
      {"A", 0x80}, {"A", 0x81}, {"A", 0x82}, {"A", 0x83}, {"A", 0x88}, {"A", 0x8A}, {"AE", 0},
      {"C", 0xA7}, {"E", 0x80}, {"E", 0x81}, {"E", 0x82}, {"E", 0x88}, {"I", 0x80}, {"I", 0x81},
      {"I", 0x82}, {"I", 0x88}, {"", 0},     {"N", 0x83}, {"O", 0x80}, {"O", 0x81}, {"O", 0x82},
      {"O", 0x83}, {"O", 0x88}, {"", 0},     {"", 0},     {"U", 0x80}, {"U", 0x81}, {"U", 0x82},
      {"U", 0x88}, {"Y", 0x81}, {"", 0},     {"SS", 0},   {"A", 0x80}, {"A", 0x81}, {"A", 0x82},
      {"A", 0x83}, {"A", 0x88}, {"A", 0x8A}, {"AE", 0},   {"C", 0xA7}, {"E", 0x80}, {"E", 0x81},
      {"E", 0x82}, {"E", 0x88}, {"I", 0x80}, {"I", 0x81}, {"I", 0x82}, {"I", 0x88}, {"", 0},
      {"N", 0x83}, {"O", 0x80}, {"O", 0x81}, {"O", 0x82}, {"O", 0x83}, {"O", 0x88}, {"", 0},
      {"", 0},     {"U", 0x80}, {"U", 0x81}, {"U", 0x82}, {"U", 0x88}, {"Y", 0x81}, {"", 0},
      {"Y", 0x88},
  };
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == 0xC3 && i + 1 < in.size()) {
      unsigned char d = static_cast<unsigned char>(in[i + 1]);
      if (d >= 0x80 && d <= 0xBF && kLatin1[d - 0x80].base[0] != '\0') {
        out += kLatin1[d - 0x80].base;
        if (kLatin1[d - 0x80].mark) {
          out += static_cast<char>(0xCC);
          out += static_cast<char>(kLatin1[d - 0x80].mark);
        }
        ++i;
        continue;
      }
    }
    out += Upper(static_cast<char>(c));
  }
  return out;
}

std::optional<int64_t> ParseSentDate(std::string_view value) {
  // Comments out, then words split at whitespace (and ",").
  std::string text;
  int depth = 0;
  for (char c : value) {
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (depth > 0) --depth;
    } else if (depth == 0) {
      text += c == ',' || IsWsp(c) ? ' ' : c;
    }
  }
  std::vector<std::string_view> w;
  std::string_view t = text;
  for (size_t i = 0; i < t.size();) {
    while (i < t.size() && t[i] == ' ') ++i;
    size_t j = i;
    while (j < t.size() && t[j] != ' ') ++j;
    if (j > i) w.push_back(t.substr(i, j - i));
    i = j;
  }
  size_t i = 0;
  if (!w.empty() && !Number(w[0])) ++i;  // day-of-week
  if (i + 3 > w.size()) return std::nullopt;
  auto day = Number(w[i]);
  int month = 0;
  static constexpr const char* kMonths[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                            "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
  for (int k = 0; k < 12; ++k) {
    if (w[i + 1].size() >= 3 && StartsWithNoCase(w[i + 1], 0, kMonths[k])) month = k + 1;
  }
  auto year = Number(w[i + 2]);
  if (!day || !year || month == 0 || *day < 1 || *day > 31) return std::nullopt;
  int y = *year;
  if (w[i + 2].size() <= 2) y += y < 50 ? 2000 : 1900;  // RFC 5322 section 4.3
  if (w[i + 2].size() == 3) y += 1900;
  int hh = 0, mm = 0, ss = 0;
  int64_t zone = 0;
  if (i + 3 < w.size()) {
    std::string_view tm = w[i + 3];
    int parts[3] = {0, 0, 0};
    size_t n = 0, p = 0;
    while (n < 3 && p <= tm.size()) {
      size_t q = tm.find(':', p);
      if (q == std::string::npos) q = tm.size();
      auto v = Number(tm.substr(p, q - p));
      if (!v) return std::nullopt;
      parts[n++] = *v;
      p = q + 1;
    }
    if (n < 2 || parts[0] > 23 || parts[1] > 59 || parts[2] > 60) return std::nullopt;
    hh = parts[0];
    mm = parts[1];
    ss = parts[2];
    if (i + 4 < w.size()) {
      std::string_view z = w[i + 4];
      if ((z[0] == '+' || z[0] == '-') && z.size() == 5) {
        auto v = Number(z.substr(1));
        if (!v) return std::nullopt;
        zone = (*v / 100) * 60 + *v % 100;
        if (z[0] == '-') zone = -zone;
      } else {
        static const std::map<std::string, int> kZones = {
            {"UT", 0},     {"GMT", 0},    {"EST", -300}, {"EDT", -240}, {"CST", -360},
            {"CDT", -300}, {"MST", -420}, {"MDT", -360}, {"PST", -480}, {"PDT", -420}};
        std::string up;
        for (char c : z) up += Upper(c);
        auto it = kZones.find(up);
        zone = it == kZones.end() ? 0 : it->second;  // military and unknown zones: UTC
      }
    }
  }
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(month), static_cast<unsigned>(*day));
  return days * 86400 + hh * 3600 + mm * 60 + ss - zone * 60;
}

std::vector<std::string> ParseMessageIds(std::string_view value) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < value.size()) {
    size_t open = value.find('<', i);
    if (open == std::string::npos) break;
    size_t close = value.find('>', open + 1);
    if (close == std::string::npos) break;
    size_t nested = value.find('<', open + 1);
    if (nested < close) {  // "<a <b@c>": the later one
      i = nested;
      continue;
    }
    std::string id;
    for (char c : value.substr(open + 1, close - open - 1)) {
      if (!IsWsp(c)) id += c;
    }
    if (!id.empty() && id.find('@') != std::string::npos) out.push_back("<" + id + ">");
    i = close + 1;
  }
  return out;
}

std::vector<size_t> SortOrder(const std::vector<SortInput>& in,
                              const std::vector<SortCriterion>& criteria) {
  std::vector<size_t> order(in.size());
  std::iota(order.begin(), order.end(), 0);
  auto cmp3 = [](const auto& a, const auto& b) { return a < b ? -1 : b < a ? 1 : 0; };
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    const SortInput& a = in[x];
    const SortInput& b = in[y];
    for (const SortCriterion& c : criteria) {
      int r = 0;
      switch (c.field) {
        case SortField::kArrival:
          r = cmp3(a.arrival, b.arrival);
          break;
        case SortField::kCc:
          r = a.cc.compare(b.cc);
          break;
        case SortField::kDate:
          r = cmp3(a.date, b.date);
          break;
        case SortField::kFrom:
          r = a.from.compare(b.from);
          break;
        case SortField::kSize:
          r = cmp3(a.size, b.size);
          break;
        case SortField::kSubject:
          r = a.subject.compare(b.subject);
          break;
        case SortField::kTo:
          r = a.to.compare(b.to);
          break;
        case SortField::kDisplayFrom:
          r = a.display_from.compare(b.display_from);
          break;
        case SortField::kDisplayTo:
          r = a.display_to.compare(b.display_to);
          break;
      }
      if (r != 0) return c.reverse ? r > 0 : r < 0;
    }
    return a.seq < b.seq;
  });
  return order;
}

namespace {

// One container of the REFERENCES algorithm: a message or a dummy.
struct Node {
  int msg = -1;  // index into the input, -1 for a dummy
  int parent = -1;
  std::vector<int> children;
};

class Threader {
 public:
  explicit Threader(const std::vector<SortInput>& in) : in_(in) {}

  std::string References() {
    // (1) Containers and links, in sequence order.
    std::vector<size_t> by_seq(in_.size());
    std::iota(by_seq.begin(), by_seq.end(), 0);
    std::sort(by_seq.begin(), by_seq.end(),
              [&](size_t a, size_t b) { return in_[a].seq < in_[b].seq; });
    for (size_t i : by_seq) {
      const SortInput& m = in_[i];
      int self = -1;
      if (!m.message_id.empty()) {
        auto it = ids_.find(m.message_id);
        if (it == ids_.end()) {
          self = New();
          ids_[m.message_id] = self;
        } else if (nodes_[it->second].msg < 0) {
          self = it->second;
        }
      }
      if (self < 0) self = New();  // missing or duplicate Message-ID: a unique one
      nodes_[self].msg = static_cast<int>(i);
      // (A) Link the references in order, keeping existing links.
      int prev = -1;
      for (const std::string& ref : m.references) {
        int c = Get(ref);
        if (prev >= 0 && nodes_[c].parent < 0 && CanLink(prev, c)) Link(prev, c);
        prev = c;
      }
      // (B) The last reference is the message's parent.
      if (nodes_[self].parent >= 0) Unlink(self);
      if (prev >= 0 && CanLink(prev, self)) Link(prev, self);
    }
    // (2) The root set.
    std::vector<int> roots;
    for (int n = 0; n < static_cast<int>(nodes_.size()); ++n) {
      if (nodes_[n].parent < 0) roots.push_back(n);
    }
    // (4) Prune dummies.
    roots = Prune(roots, /*root=*/true);
    // (5) Sort the root set by sent date (a dummy by its first child).
    for (int r : roots) {
      if (nodes_[r].msg < 0) SortSiblings(nodes_[r].children);
    }
    SortSiblings(roots);
    // (6) Gather the roots with the same base subject.
    std::unordered_map<std::string, int> table;
    for (int r : roots) {
      const SortInput* s = Subject(r);
      if (!s || s->subject.empty()) continue;
      auto [it, added] = table.emplace(s->subject, r);
      if (added) continue;
      int t = it->second;
      if (nodes_[t].msg >= 0 && (nodes_[r].msg < 0 || (Reply(t) && !Reply(r)))) it->second = r;
    }
    std::vector<int> merged;
    std::vector<char> absorbed(nodes_.size(), 0);  // put under a new dummy before its turn
    for (int r : roots) {
      if (absorbed[static_cast<size_t>(r)]) continue;
      const SortInput* s = Subject(r);
      if (!s || s->subject.empty()) {
        merged.push_back(r);
        continue;
      }
      int& t = table[s->subject];
      if (t == r) {
        merged.push_back(r);
        continue;
      }
      bool rd = nodes_[r].msg < 0, td = nodes_[t].msg < 0;
      if (rd && td) {
        for (int c : nodes_[r].children) Adopt(t, c);
        nodes_[r].children.clear();
      } else if (td || (Reply(r) && !Reply(t))) {
        Adopt(t, r);
      } else {
        int d = New();
        absorbed.push_back(0);
        auto at = std::find(merged.begin(), merged.end(), t);
        if (at != merged.end()) {
          *at = d;
        } else {
          merged.push_back(d);
          absorbed[static_cast<size_t>(t)] = 1;
        }
        Adopt(d, t);
        Adopt(d, r);
        t = d;
      }
    }
    // (7) Sort every set of siblings, the deepest first.
    for (int r : merged) SortTree(r);
    SortSiblings(merged);
    std::string out;
    for (int r : merged) {
      out += '(';
      Render(r, out);
      out += ')';
    }
    return out;
  }

 private:
  int New() {
    nodes_.emplace_back();
    return static_cast<int>(nodes_.size()) - 1;
  }
  int Get(const std::string& id) {
    auto it = ids_.find(id);
    if (it != ids_.end()) return it->second;
    int n = New();
    ids_[id] = n;
    return n;
  }
  // Whether `child` may go under `parent`: not when `parent` is `child` or
  // below it (a loop), nor below kMaxThreadDepth ancestors (the tree is
  // walked recursively; a crafted chain of references must not exhaust the
  // stack).
  bool CanLink(int parent, int child) const {
    size_t depth = 0;
    for (int n = parent; n >= 0; n = nodes_[n].parent) {
      if (n == child || ++depth > kMaxThreadDepth) return false;
    }
    return true;
  }
  static constexpr size_t kMaxThreadDepth = 1000;
  void Link(int parent, int child) {
    nodes_[child].parent = parent;
    nodes_[parent].children.push_back(child);
  }
  void Unlink(int child) {
    auto& sib = nodes_[nodes_[child].parent].children;
    sib.erase(std::remove(sib.begin(), sib.end(), child), sib.end());
    nodes_[child].parent = -1;
  }
  void Adopt(int parent, int child) {
    nodes_[child].parent = parent;
    nodes_[parent].children.push_back(child);
  }
  std::vector<int> Prune(const std::vector<int>& list, bool root) {
    std::vector<int> out;
    for (int n : list) {
      nodes_[n].children = Prune(nodes_[n].children, false);
      for (int c : nodes_[n].children) nodes_[c].parent = n;
      if (nodes_[n].msg >= 0) {
        out.push_back(n);
      } else if (nodes_[n].children.empty()) {
        continue;
      } else if (root && nodes_[n].children.size() > 1) {
        out.push_back(n);
      } else {
        for (int c : nodes_[n].children) {
          nodes_[c].parent = root ? -1 : nodes_[n].parent;
          out.push_back(c);
        }
      }
    }
    return out;
  }
  // The message that stands for a node: itself, or a dummy's first child.
  const SortInput* Subject(int n) const {
    if (nodes_[n].msg >= 0) return &in_[static_cast<size_t>(nodes_[n].msg)];
    if (nodes_[n].children.empty()) return nullptr;
    return Subject(nodes_[n].children.front());
  }
  bool Reply(int n) const {
    return nodes_[n].msg >= 0 && in_[static_cast<size_t>(nodes_[n].msg)].reply;
  }
  void SortSiblings(std::vector<int>& list) {
    std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
      const SortInput* x = Subject(a);
      const SortInput* y = Subject(b);
      if (!x || !y) return x != nullptr && y == nullptr;
      if (x->date != y->date) return x->date < y->date;
      return x->seq < y->seq;
    });
  }
  void SortTree(int n) {
    for (int c : nodes_[n].children) SortTree(c);
    SortSiblings(nodes_[n].children);
  }
  void Render(int n, std::string& out) const {
    const Node& node = nodes_[n];
    if (node.msg >= 0) out += std::to_string(in_[static_cast<size_t>(node.msg)].number);
    if (node.children.size() == 1 && node.msg >= 0) {
      out += ' ';
      Render(node.children.front(), out);
      return;
    }
    if (node.msg >= 0 && !node.children.empty()) out += ' ';
    for (int c : node.children) {
      out += '(';
      Render(c, out);
      out += ')';
    }
  }

  const std::vector<SortInput>& in_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, int> ids_;
};

}  // namespace

std::string ThreadOrderedSubject(const std::vector<SortInput>& in) {
  std::vector<size_t> order(in.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (in[a].subject != in[b].subject) return in[a].subject < in[b].subject;
    if (in[a].date != in[b].date) return in[a].date < in[b].date;
    return in[a].seq < in[b].seq;
  });
  std::vector<std::pair<size_t, size_t>> groups;  // [first, last) in `order`
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    while (j < order.size() && in[order[j]].subject == in[order[i]].subject) ++j;
    groups.emplace_back(i, j);
    i = j;
  }
  std::stable_sort(groups.begin(), groups.end(), [&](const auto& a, const auto& b) {
    const SortInput& x = in[order[a.first]];
    const SortInput& y = in[order[b.first]];
    if (x.date != y.date) return x.date < y.date;
    return x.seq < y.seq;
  });
  std::string out;
  for (auto [first, last] : groups) {
    out += '(' + std::to_string(in[order[first]].number);
    if (last - first == 2) {
      out += ' ' + std::to_string(in[order[first + 1]].number);
    } else if (last - first > 2) {
      out += ' ';
      for (size_t k = first + 1; k < last; ++k) {
        out += '(' + std::to_string(in[order[k]].number) + ')';
      }
    }
    out += ')';
  }
  return out;
}

std::string ThreadReferences(const std::vector<SortInput>& in) { return Threader(in).References(); }

}  // namespace hato::imap
