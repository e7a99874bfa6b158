// The HTTP request syntax (src/http/request.h): heads, limits, smuggling
// defences, chunked bodies, paths.
#include <gtest/gtest.h>

#include "http/request.h"
#include "http/url.h"

namespace hato::http {
namespace {

TEST(HttpRequest, ParsesAGetWithQueryAndKeepAlive) {
  std::string in = "GET /a%20b?x=1&y=%41 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\nextra";
  HeadResult r = ParseRequestHead(in, 8192);
  ASSERT_EQ(r.verdict, Verdict::kComplete);
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.path, "/a b");
  EXPECT_EQ(r.head.query, "x=1&y=%41");
  EXPECT_TRUE(r.head.keep_alive);
  EXPECT_EQ(r.consumed, in.size() - 5);
  EXPECT_EQ(*r.head.Get("accept"), "*/*");
  auto q = ParseQuery(r.head.query);
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[1].second, "A");
  HeadResult old = ParseRequestHead("\r\nHEAD / HTTP/1.0\n\n", 8192);
  ASSERT_EQ(old.verdict, Verdict::kComplete);
  EXPECT_FALSE(old.head.keep_alive);
  EXPECT_FALSE(ParseRequestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 8192)
                   .head.keep_alive);
}

TEST(HttpRequest, NeedsMoreThenRefusesOversized) {
  EXPECT_EQ(ParseRequestHead("GET / HTTP/1.1\r\nHost: a\r\n", 8192).verdict, Verdict::kNeedMore);
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(9000, 'a');
  EXPECT_EQ(ParseRequestHead(big, 8192).verdict, Verdict::kTooLarge);
  EXPECT_EQ(ParseRequestHead(big + "\r\n\r\n", 8192).verdict, Verdict::kTooLarge);
}

TEST(HttpRequest, RejectsMalformedAndSmuggling) {
  for (const char* bad :
       {"GET\r\n\r\n", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "GET x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/2\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nBad Name: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "GET /%00 HTTP/1.1\r\nHost: a\r\n\r\n", "GET /%4 HTTP/1.1\r\nHost: a\r\n\r\n"}) {
    EXPECT_EQ(ParseRequestHead(bad, 8192).verdict, Verdict::kBad) << bad;
  }
}

TEST(ChunkedDecoder, DecodesAcrossPiecesAndEnforcesTheLimit) {
  std::string in = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  for (size_t split = 0; split <= in.size(); ++split) {
    ChunkedDecoder d(100);
    std::string out, buf = in.substr(0, split);
    size_t used = d.Feed(buf, out);
    buf = buf.substr(used) + in.substr(split);
    used = d.Feed(buf, out);
    ASSERT_TRUE(d.done()) << split;
    EXPECT_EQ(out, "hello world");
    EXPECT_EQ(buf.substr(used), "NEXT");
  }
  ChunkedDecoder small(8);
  std::string out;
  small.Feed("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", out);
  EXPECT_TRUE(small.too_large());
  ChunkedDecoder bad(100);
  bad.Feed("zz\r\n", out);
  EXPECT_TRUE(bad.failed());
}

TEST(HttpPaths, SafeRelativePathRefusesEscapes) {
  EXPECT_EQ(*SafeRelativePath("/a/b.js"), "a/b.js");
  EXPECT_EQ(*SafeRelativePath("/"), "");
  EXPECT_EQ(*SafeRelativePath("/dir/"), "dir");
  for (const char* bad : {"/../x", "/a/../x", "/a/./x", "/a//b", "/a\\b", "/a/..", "/.."})
    EXPECT_FALSE(SafeRelativePath(bad).has_value()) << bad;
}

TEST(HttpNegotiation, EncodingsAndEtags) {
  EXPECT_TRUE(AcceptsEncoding("gzip, br", "br"));
  EXPECT_FALSE(AcceptsEncoding("gzip, br;q=0", "br"));
  EXPECT_TRUE(AcceptsEncoding("*", "gzip"));
  EXPECT_FALSE(AcceptsEncoding("identity", "gzip"));
  EXPECT_TRUE(EtagMatches("\"a\", W/\"b\"", "\"b\""));
  EXPECT_TRUE(EtagMatches("*", "\"x\""));
  EXPECT_FALSE(EtagMatches("\"a\"", "\"b\""));
  EXPECT_EQ(ContentTypeFor("x/app.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("noext"), "application/octet-stream");
}

TEST(HttpUrl, HttpsUrls) {
  auto u = ParseHttpsUrl("https://acme.test:14000/dir");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "acme.test");
  EXPECT_EQ(u->port, 14000);
  EXPECT_EQ(u->path, "/dir");
  auto d = ParseHttpsUrl("https://ca.example");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 443);
  EXPECT_EQ(d->path, "/");
  auto v6 = ParseHttpsUrl("https://[::1]:8443/x");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8443);
  EXPECT_FALSE(ParseHttpsUrl("http://ca.example/dir"));
  EXPECT_FALSE(ParseHttpsUrl("https://user@ca.example/dir"));
  EXPECT_FALSE(ParseHttpsUrl("https://ca.example:0/"));
  EXPECT_FALSE(ParseHttpsUrl("https://ca.example:99999/"));
  EXPECT_FALSE(ParseHttpsUrl("https://ca.example/a b"));
  EXPECT_FALSE(ParseHttpsUrl("https:///dir"));
}

TEST(HttpUrl, HostField) {
  EXPECT_EQ(HostField(*ParseHttpsUrl("https://ca.example/x")), "ca.example");
  EXPECT_EQ(HostField(*ParseHttpsUrl("https://ca.example:8443/x")), "ca.example:8443");
  EXPECT_EQ(HostField(*ParseHttpsUrl("https://[::1]:8443/x")), "[::1]:8443");
}

}  // namespace
}  // namespace hato::http
