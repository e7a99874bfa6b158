// Counters, gauges and histograms for the metrics endpoint, written in the
// Prometheus text exposition format (version 0.0.4). The values themselves
// live with their owners (Admission, Counters, the store); `serve` gathers
// them into a TextWriter on each scrape. Thread-safe: Histogram::Observe and
// every counter are atomic; TextWriter is used by one scrape at a time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace hato::metrics {

// A fixed-bucket latency histogram in milliseconds.
class Histogram {
 public:
  static constexpr std::array<int64_t, 12> kBoundsMs = {1,   5,   10,   25,   50,    100,
                                                        250, 500, 1000, 2500, 10000, 60000};
  void Observe(int64_t ms) {
    size_t i = 0;
    while (i < kBoundsMs.size() && ms > kBoundsMs[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ms_.fetch_add(ms, std::memory_order_relaxed);
  }
  uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  int64_t sum_ms() const { return sum_ms_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kBoundsMs.size() + 1> buckets_{};  // last: +Inf
  std::atomic<int64_t> sum_ms_{0};
};

class TextWriter {
 public:
  // HELP and TYPE lines, once per metric family.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // One sample; `labels` is the inside of {...} or empty.
  void Sample(std::string_view name, std::string_view labels, double value);
  // A histogram in seconds, from its millisecond buckets.
  void WriteHistogram(std::string_view name, std::string_view help, const Histogram& h);
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

// Resident set size of this process in bytes (Linux /proc/self/statm), 0 if unknown.
uint64_t ResidentBytes();

}  // namespace hato::metrics
