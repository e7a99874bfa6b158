#include "imap/proto/seqset.h"

#include <algorithm>

namespace hato::imap {

IdSet IdSet::FromIds(std::vector<uint32_t> ids) {
  std::sort(ids.begin(), ids.end());
  IdSet out;
  for (uint32_t id : ids) {
    if (id == 0) continue;
    if (!out.ranges_.empty() && out.ranges_.back().last >= id - 1) {
      out.ranges_.back().last = std::max(out.ranges_.back().last, id);
    } else {
      out.ranges_.push_back({id, id});
    }
  }
  return out;
}

IdSet IdSet::FromRanges(std::vector<Range> ranges) {
  for (Range& r : ranges) {
    if (r.first > r.last) std::swap(r.first, r.last);
    if (r.first == 0) r.first = 1;
  }
  std::erase_if(ranges, [](const Range& r) { return r.last == 0; });
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.first < b.first; });
  IdSet out;
  for (const Range& r : ranges) {
    // Merge overlapping or adjacent (last + 1 == first) ranges; 64-bit to avoid overflow.
    if (!out.ranges_.empty() &&
        static_cast<uint64_t>(out.ranges_.back().last) + 1 >= static_cast<uint64_t>(r.first)) {
      out.ranges_.back().last = std::max(out.ranges_.back().last, r.last);
    } else {
      out.ranges_.push_back(r);
    }
  }
  return out;
}

uint64_t IdSet::size() const {
  uint64_t n = 0;
  for (const Range& r : ranges_) n += static_cast<uint64_t>(r.last) - r.first + 1;
  return n;
}

bool IdSet::Contains(uint32_t id) const {
  // The first range whose last >= id; the id is inside iff that range starts at or before it.
  auto it = std::lower_bound(ranges_.begin(), ranges_.end(), id,
                             [](const Range& r, uint32_t v) { return r.last < v; });
  return it != ranges_.end() && it->first <= id;
}

std::string IdSet::ToString() const {
  std::string out;
  for (const Range& r : ranges_) {
    if (!out.empty()) out += ',';
    out += std::to_string(r.first);
    if (r.last != r.first) {
      out += ':';
      out += std::to_string(r.last);
    }
  }
  return out;
}

bool SeqSet::HasStar() const {
  return std::any_of(ranges.begin(), ranges.end(),
                     [](const Range& r) { return r.first == kStar || r.last == kStar; });
}

IdSet SeqSet::Resolve(uint32_t star) const {
  std::vector<IdSet::Range> rs;
  rs.reserve(ranges.size());
  for (const Range& r : ranges) {
    uint32_t a = r.first == kStar ? star : r.first;
    uint32_t b = r.last == kStar ? star : r.last;
    rs.push_back({a, b});  // FromRanges orders, drops 0 and clamps to >= 1
  }
  return IdSet::FromRanges(std::move(rs));
}

bool SeqSet::Contains(uint32_t id, uint32_t star) const {
  if (!resolved) return Resolve(star).Contains(id);
  auto it = std::lower_bound(ranges.begin(), ranges.end(), id,
                             [](const Range& r, uint32_t v) { return r.last < v; });
  return id != 0 && it != ranges.end() && it->first <= id;
}

std::string SeqSet::ToString() const {
  if (saved) return "$";
  std::string out;
  auto num = [&out](uint32_t n) {
    if (n == kStar) {
      out += '*';
    } else {
      out += std::to_string(n);
    }
  };
  for (const Range& r : ranges) {
    if (!out.empty()) out += ',';
    num(r.first);
    if (r.last != r.first) {
      out += ':';
      num(r.last);
    }
  }
  return out;
}

std::string CompressIds(std::span<const uint32_t> ids) {
  return IdSet::FromIds(std::vector<uint32_t>(ids.begin(), ids.end())).ToString();
}

}  // namespace hato::imap
