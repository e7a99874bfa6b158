// The metrics endpoint's Prometheus text writer.
#include <gtest/gtest.h>

#include "metrics/registry.h"

namespace hato::metrics {
namespace {

TEST(TextWriter, WritesHistogramsCumulatively) {
  Histogram h;
  h.Observe(3);
  h.Observe(700);
  h.Observe(120000);
  TextWriter w;
  w.WriteHistogram("x_seconds", "help", h);
  const std::string& t = w.text();
  EXPECT_NE(t.find("# TYPE x_seconds histogram\n"), std::string::npos);
  EXPECT_NE(t.find("x_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("x_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("x_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("x_seconds_count 3\n"), std::string::npos);
}

}  // namespace
}  // namespace hato::metrics
