// The metrics endpoint's HTTP request parser and Prometheus text writer.
#include <gtest/gtest.h>

#include "metrics/http.h"
#include "metrics/registry.h"

namespace hato::metrics {
namespace {

using V = HttpRequest::Verdict;

TEST(HttpRequest, ParsesAGet) {
  std::string in = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nextra";
  HttpRequest r = ParseHttpRequest(in);
  ASSERT_EQ(r.verdict, V::kComplete);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/metrics");
  EXPECT_EQ(r.consumed, in.size() - 5);
  EXPECT_EQ(ParseHttpRequest("\r\nHEAD / HTTP/1.0\n\n").verdict, V::kComplete);
}

TEST(HttpRequest, NeedsMoreThenRefusesOversized) {
  EXPECT_EQ(ParseHttpRequest("GET /metrics HTTP/1.1\r\nHost: a\r\n").verdict, V::kNeedMore);
  std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(kMaxHttpRequestBytes, 'a');
  EXPECT_EQ(ParseHttpRequest(big).verdict, V::kTooLarge);
  EXPECT_EQ(ParseHttpRequest(big + "\r\n\r\n").verdict, V::kTooLarge);
}

TEST(HttpRequest, RejectsMalformedAndBodies) {
  for (const char* bad :
       {"GET\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
        "GET / HTTP/2\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", "GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    EXPECT_EQ(ParseHttpRequest(bad).verdict, V::kBad) << bad;
  }
}

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
