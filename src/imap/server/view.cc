#include "imap/server/view.h"

#include <algorithm>

namespace hato::imap {

namespace {

void PutVarint(std::string& out, uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

uint32_t GetVarint(const std::string& in, size_t& pos) {
  uint32_t v = 0;
  for (int shift = 0; pos < in.size(); shift += 7) {
    auto b = static_cast<unsigned char>(in[pos++]);
    v |= static_cast<uint32_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}

}  // namespace

template <typename F>
void MessageView::ForEachRun(F f) const {
  size_t pos = 0;
  uint32_t end = 0;
  while (pos < packed_.size()) {
    uint32_t first = end + GetVarint(packed_, pos);
    uint32_t count = GetVarint(packed_, pos) + 1;
    if (!f(Run{first, count})) return;
    end = first + count;
  }
  if (tail_.count > 0) f(tail_);
}

std::vector<MessageView::Run> MessageView::Runs() const {
  std::vector<Run> runs;
  ForEachRun([&runs](Run r) {
    runs.push_back(r);
    return true;
  });
  return runs;
}

void MessageView::PackTail() {
  PutVarint(packed_, tail_.first - packed_end_);
  PutVarint(packed_, tail_.count - 1);
  packed_end_ = tail_.first + tail_.count;
  tail_ = Run{0, 0};
}

void MessageView::SetRuns(const std::vector<Run>& runs) {
  packed_.clear();
  packed_end_ = 0;
  tail_ = Run{0, 0};
  for (const Run& r : runs) {
    if (tail_.count > 0) PackTail();
    tail_ = r;
  }
  packed_.shrink_to_fit();
}

uint32_t MessageView::Uid(size_t index) const {
  if (awake_) return metas_[index].uid;
  uint32_t uid = 0;
  ForEachRun([&index, &uid](Run r) {
    if (index < r.count) {
      uid = r.first + static_cast<uint32_t>(index);
      return false;
    }
    index -= r.count;
    return true;
  });
  return uid;
}

uint32_t MessageView::MaxUid() const {
  if (awake_) return metas_.empty() ? 0 : metas_.back().uid;
  return tail_.count == 0 ? 0 : tail_.first + tail_.count - 1;
}

std::optional<size_t> MessageView::Find(uint32_t uid) const {
  if (awake_) {
    auto it = std::lower_bound(metas_.begin(), metas_.end(), uid,
                               [](const store::MessageMeta& m, uint32_t u) { return m.uid < u; });
    if (it == metas_.end() || it->uid != uid) return std::nullopt;
    return static_cast<size_t>(it - metas_.begin());
  }
  size_t before = 0;
  std::optional<size_t> found;
  ForEachRun([uid, &before, &found](Run r) {
    if (uid < r.first) return false;
    if (uid - r.first < r.count) {
      found = before + (uid - r.first);
      return false;
    }
    before += r.count;
    return true;
  });
  return found;
}

void MessageView::Assign(std::vector<store::MessageMeta> metas) {
  awake_ = true;
  metas_ = std::move(metas);
  SetRuns({});
  asleep_size_ = 0;
  session_flags_.clear();
  session_flags_.shrink_to_fit();
}

void MessageView::Append(const store::MessageMeta& m) {
  if (awake_) {
    metas_.push_back(m);
    return;
  }
  if (tail_.count > 0 && tail_.first + tail_.count == m.uid) {
    ++tail_.count;
  } else {
    if (tail_.count > 0) PackTail();
    tail_ = Run{m.uid, 1};
  }
  ++asleep_size_;
}

void MessageView::Erase(size_t index) {
  if (awake_) {
    metas_.erase(metas_.begin() + static_cast<long>(index));
    return;
  }
  uint32_t uid = Uid(index);
  auto sf = std::lower_bound(session_flags_.begin(), session_flags_.end(),
                             std::make_pair(uid, uint32_t{0}));
  if (sf != session_flags_.end() && sf->first == uid) session_flags_.erase(sf);
  std::vector<Run> runs = Runs();
  for (size_t i = 0; i < runs.size(); ++i) {
    Run& r = runs[i];
    if (index >= r.count) {
      index -= r.count;
      continue;
    }
    if (r.count == 1) {
      runs.erase(runs.begin() + static_cast<long>(i));
    } else if (index == 0) {
      ++r.first;
      --r.count;
    } else if (index == r.count - 1) {
      --r.count;
    } else {
      Run tail{r.first + static_cast<uint32_t>(index) + 1,
               r.count - static_cast<uint32_t>(index) - 1};
      r.count = static_cast<uint32_t>(index);
      runs.insert(runs.begin() + static_cast<long>(i) + 1, tail);
    }
    SetRuns(runs);
    --asleep_size_;
    return;
  }
}

void MessageView::SetSessionFlag(uint32_t after_uid, uint32_t up_to_uid, uint32_t flag) {
  session_mask_ |= flag;
  if (awake_) {
    for (auto& m : metas_) {
      if (m.uid > after_uid && m.uid <= up_to_uid) m.flags |= flag;
    }
    return;
  }
  std::vector<std::pair<uint32_t, uint32_t>> merged;
  size_t k = 0;
  for (const Run& r : Runs()) {
    uint32_t from = std::max(r.first, after_uid + 1);
    uint32_t to = std::min(r.first + r.count - 1, up_to_uid);
    for (uint64_t uid = from; uid <= to; ++uid) {
      while (k < session_flags_.size() && session_flags_[k].first < uid) {
        merged.push_back(session_flags_[k++]);
      }
      uint32_t flags = flag;
      if (k < session_flags_.size() && session_flags_[k].first == uid) {
        flags |= session_flags_[k++].second;
      }
      merged.emplace_back(static_cast<uint32_t>(uid), flags);
    }
  }
  while (k < session_flags_.size()) merged.push_back(session_flags_[k++]);
  session_flags_ = std::move(merged);
}

size_t MessageView::CountFlag(uint32_t flag) const {
  size_t n = 0;
  if (awake_) {
    for (const auto& m : metas_) n += (m.flags & flag) != 0;
  } else {
    for (const auto& [uid, flags] : session_flags_) n += (flags & flag) != 0;
  }
  return n;
}

uint32_t MessageView::SessionFlags(size_t index) const {
  if (awake_) return metas_[index].flags & session_mask_;
  uint32_t uid = Uid(index);
  auto it = std::lower_bound(session_flags_.begin(), session_flags_.end(),
                             std::make_pair(uid, uint32_t{0}));
  return it != session_flags_.end() && it->first == uid ? it->second : 0;
}

void MessageView::Sleep() {
  if (!awake_) return;
  session_flags_.clear();
  if (session_mask_ != 0) {
    for (const auto& m : metas_) {
      if (m.flags & session_mask_) session_flags_.emplace_back(m.uid, m.flags & session_mask_);
    }
  }
  std::vector<Run> runs;
  for (const auto& m : metas_) {
    if (!runs.empty() && runs.back().first + runs.back().count == m.uid) {
      ++runs.back().count;
    } else {
      runs.push_back(Run{m.uid, 1});
    }
  }
  SetRuns(runs);
  asleep_size_ = metas_.size();
  metas_.clear();
  metas_.shrink_to_fit();
  awake_ = false;
}

std::vector<std::pair<uint32_t, uint32_t>> MessageView::UidRanges() const {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  if (awake_) {
    for (const auto& m : metas_) {
      if (!out.empty() && out.back().second + 1 == m.uid) {
        out.back().second = m.uid;
      } else {
        out.emplace_back(m.uid, m.uid);
      }
    }
    return out;
  }
  ForEachRun([&out](Run r) {
    out.emplace_back(r.first, r.first + r.count - 1);
    return true;
  });
  return out;
}

void MessageView::Wake(const std::vector<store::MessageMeta>& found) {
  if (awake_) return;
  std::vector<store::MessageMeta> metas;
  metas.reserve(asleep_size_);
  size_t f = 0;
  for (const Run& r : Runs()) {
    for (uint32_t k = 0; k < r.count; ++k) {
      uint32_t uid = r.first + k;
      while (f < found.size() && found[f].uid < uid) ++f;
      if (f < found.size() && found[f].uid == uid) {
        metas.push_back(found[f]);
        metas.back().flags &= ~session_mask_;  // not the store's to say
      } else {
        store::MessageMeta placeholder;
        placeholder.uid = uid;
        metas.push_back(placeholder);
      }
    }
  }
  size_t k = 0;
  for (auto& m : metas) {
    while (k < session_flags_.size() && session_flags_[k].first < m.uid) ++k;
    if (k < session_flags_.size() && session_flags_[k].first == m.uid) {
      m.flags |= session_flags_[k].second;
    }
  }
  uint32_t mask = session_mask_;
  Assign(std::move(metas));
  session_mask_ = mask;
}

size_t MessageView::MemoryBytes() const {
  size_t n = metas_.capacity() * sizeof(store::MessageMeta) + packed_.capacity() + 1;
  for (const auto& m : metas_) {
    if (m.keywords.capacity() > 15) n += m.keywords.capacity() + 1;  // beyond the SSO buffer
  }
  return n;
}

}  // namespace hato::imap
