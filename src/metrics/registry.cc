#include "metrics/registry.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace hato::metrics {

void TextWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void TextWriter::Sample(std::string_view name, std::string_view labels, double value) {
  out_.append(name);
  if (!labels.empty()) out_.append("{").append(labels).append("}");
  char buf[64];
  // Integers print without an exponent; other values with enough precision.
  if (value == static_cast<double>(static_cast<int64_t>(value))) {
    std::snprintf(buf, sizeof(buf), " %lld\n", static_cast<long long>(value));
  } else {
    std::snprintf(buf, sizeof(buf), " %.6g\n", value);
  }
  out_.append(buf);
}

void TextWriter::WriteHistogram(std::string_view name, std::string_view help, const Histogram& h) {
  Family(name, "histogram", help);
  std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= Histogram::kBoundsMs.size(); ++i) {
    cumulative += h.bucket(i);
    std::string le = "+Inf";
    if (i < Histogram::kBoundsMs.size()) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%g", static_cast<double>(Histogram::kBoundsMs[i]) / 1000);
      le = buf;
    }
    Sample(bucket, "le=\"" + le + "\"", static_cast<double>(cumulative));
  }
  Sample(std::string(name) + "_sum", "", static_cast<double>(h.sum_ms()) / 1000);
  Sample(std::string(name) + "_count", "", static_cast<double>(cumulative));
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace hato::metrics
