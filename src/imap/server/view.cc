#include "imap/server/view.h"

#include <algorithm>

namespace hato::imap {

uint32_t MessageView::Uid(size_t index) const {
  if (awake_) return metas_[index].uid;
  for (const Run& r : runs_) {
    if (index < r.count) return r.first + static_cast<uint32_t>(index);
    index -= r.count;
  }
  return 0;
}

uint32_t MessageView::MaxUid() const {
  if (awake_) return metas_.empty() ? 0 : metas_.back().uid;
  return runs_.empty() ? 0 : runs_.back().first + runs_.back().count - 1;
}

std::optional<size_t> MessageView::Find(uint32_t uid) const {
  if (awake_) {
    auto it = std::lower_bound(metas_.begin(), metas_.end(), uid,
                               [](const store::MessageMeta& m, uint32_t u) { return m.uid < u; });
    if (it == metas_.end() || it->uid != uid) return std::nullopt;
    return static_cast<size_t>(it - metas_.begin());
  }
  size_t before = 0;
  for (const Run& r : runs_) {
    if (uid < r.first) return std::nullopt;
    if (uid - r.first < r.count) return before + (uid - r.first);
    before += r.count;
  }
  return std::nullopt;
}

void MessageView::Assign(std::vector<store::MessageMeta> metas) {
  awake_ = true;
  metas_ = std::move(metas);
  runs_.clear();
  runs_.shrink_to_fit();
  asleep_size_ = 0;
}

void MessageView::Append(const store::MessageMeta& m) {
  if (awake_) {
    metas_.push_back(m);
    return;
  }
  if (!runs_.empty() && runs_.back().first + runs_.back().count == m.uid) {
    ++runs_.back().count;
  } else {
    runs_.push_back(Run{m.uid, 1});
  }
  ++asleep_size_;
}

void MessageView::Erase(size_t index) {
  if (awake_) {
    metas_.erase(metas_.begin() + static_cast<long>(index));
    return;
  }
  for (size_t i = 0; i < runs_.size(); ++i) {
    Run& r = runs_[i];
    if (index >= r.count) {
      index -= r.count;
      continue;
    }
    if (r.count == 1) {
      runs_.erase(runs_.begin() + static_cast<long>(i));
    } else if (index == 0) {
      ++r.first;
      --r.count;
    } else if (index == r.count - 1) {
      --r.count;
    } else {
      Run tail{r.first + static_cast<uint32_t>(index) + 1,
               r.count - static_cast<uint32_t>(index) - 1};
      r.count = static_cast<uint32_t>(index);
      runs_.insert(runs_.begin() + static_cast<long>(i) + 1, tail);
    }
    --asleep_size_;
    return;
  }
}

void MessageView::Sleep() {
  if (!awake_) return;
  runs_.clear();
  for (const auto& m : metas_) {
    if (!runs_.empty() && runs_.back().first + runs_.back().count == m.uid) {
      ++runs_.back().count;
    } else {
      runs_.push_back(Run{m.uid, 1});
    }
  }
  runs_.shrink_to_fit();
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
  for (const Run& r : runs_) out.emplace_back(r.first, r.first + r.count - 1);
  return out;
}

void MessageView::Wake(const std::vector<store::MessageMeta>& found) {
  if (awake_) return;
  std::vector<store::MessageMeta> metas;
  metas.reserve(asleep_size_);
  size_t f = 0;
  for (const Run& r : runs_) {
    for (uint32_t k = 0; k < r.count; ++k) {
      uint32_t uid = r.first + k;
      while (f < found.size() && found[f].uid < uid) ++f;
      if (f < found.size() && found[f].uid == uid) {
        metas.push_back(found[f]);
      } else {
        store::MessageMeta placeholder;
        placeholder.uid = uid;
        metas.push_back(placeholder);
      }
    }
  }
  Assign(std::move(metas));
}

size_t MessageView::MemoryBytes() const {
  size_t n = metas_.capacity() * sizeof(store::MessageMeta) + runs_.capacity() * sizeof(Run);
  for (const auto& m : metas_) {
    if (m.keywords.capacity() > 15) n += m.keywords.capacity() + 1;  // beyond the SSO buffer
  }
  return n;
}

}  // namespace hato::imap
