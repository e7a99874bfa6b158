// JMAP request decoding, result references and state strings
// (src/jmap/request.h, src/jmap/state.h).
#include <gtest/gtest.h>

#include "jmap/request.h"
#include "jmap/state.h"

namespace hato::jmap {
namespace {

const std::vector<std::string> kCaps = {kCapCore, kCapMail};

std::string TypeOf(const std::variant<ApiRequest, RequestError>& r) {
  auto* e = std::get_if<RequestError>(&r);
  return e ? e->type.substr(e->type.rfind(':') + 1) : "ok";
}

TEST(JmapDecode, AcceptsARequest) {
  auto r = DecodeApiRequest(
      R"({"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"a":1},"c1"]],)"
      R"("createdIds":{"k":"e1"}})",
      DecodeLimits{}, kCaps);
  ASSERT_EQ(TypeOf(r), "ok");
  const ApiRequest& req = std::get<ApiRequest>(r);
  ASSERT_EQ(req.calls.size(), 1u);
  EXPECT_EQ(req.calls[0].name, "Core/echo");
  EXPECT_EQ(req.calls[0].id, "c1");
  EXPECT_EQ(req.created_ids->at("k"), "e1");
}

TEST(JmapDecode, RequestLevelErrors) {
  EXPECT_EQ(TypeOf(DecodeApiRequest("nope", DecodeLimits{}, kCaps)), "notJSON");
  EXPECT_EQ(TypeOf(DecodeApiRequest(std::string(100, '[') + std::string(100, ']'), DecodeLimits{},
                                    kCaps)),
            "notJSON");
  EXPECT_EQ(TypeOf(DecodeApiRequest("[]", DecodeLimits{}, kCaps)), "notRequest");
  EXPECT_EQ(
      TypeOf(DecodeApiRequest(R"({"using":[],"methodCalls":[["a",{}]]})", DecodeLimits{}, kCaps)),
      "notRequest");
  EXPECT_EQ(
      TypeOf(DecodeApiRequest(R"({"using":["urn:x"],"methodCalls":[]})", DecodeLimits{}, kCaps)),
      "unknownCapability");
  auto big = DecodeApiRequest(std::string(200, ' ') + "{}", DecodeLimits{100, 10}, kCaps);
  ASSERT_EQ(TypeOf(big), "limit");
  EXPECT_EQ(std::get<RequestError>(big).limit, "maxSizeRequest");
  auto many =
      DecodeApiRequest(R"({"using":[],"methodCalls":[["a",{},"1"],["b",{},"2"],["c",{},"3"]]})",
                       DecodeLimits{1000, 2}, kCaps);
  EXPECT_EQ(std::get<RequestError>(many).limit, "maxCallsInRequest");
}

TEST(JmapReferences, ResolvesPathsWithWildcards) {
  std::vector<Response> earlier;
  earlier.push_back(
      Response{"Email/get",
               json::parse(R"({"list":[{"threadId":"t1"},{"threadId":"t2"}]})").as_object(), "0"});
  json::object args =
      json::parse(R"({"#ids":{"resultOf":"0","name":"Email/get","path":"/list/*/threadId"}})")
          .as_object();
  EXPECT_FALSE(ResolveReferences(args, earlier).has_value());
  EXPECT_EQ(json::serialize(args), R"({"ids":["t1","t2"]})");
  json::object wrong_name =
      json::parse(R"({"#ids":{"resultOf":"0","name":"Email/query","path":"/list"}})").as_object();
  EXPECT_EQ(*ResolveReferences(wrong_name, earlier), "invalidResultReference");
  json::object both =
      json::parse(R"({"ids":[],"#ids":{"resultOf":"0","name":"Email/get","path":"/list"}})")
          .as_object();
  EXPECT_EQ(*ResolveReferences(both, earlier), "invalidArguments");
  EXPECT_FALSE(EvaluatePointer(json::parse(R"({"a":[1]})"), "/a/01").has_value());
  EXPECT_EQ(json::serialize(*EvaluatePointer(json::parse(R"({"a/b":{"~":2}})"), "/a~1b/~0")), "2");
}

TEST(JmapState, RoundTripsAndRefusesOtherSpellings) {
  std::vector<MailboxMark> marks = {{1, 5, 10, 0}, {7, 123456789, 1, 0}};
  std::string s = EncodeState('e', marks);
  EXPECT_EQ(*DecodeState('e', s), marks);
  EXPECT_FALSE(DecodeState('m', s).has_value());
  EXPECT_FALSE(DecodeState('e', "e_01-2-3").has_value());
  EXPECT_FALSE(DecodeState('e', "e_2-1-1_1-1-1").has_value());  // not sorted
  EXPECT_FALSE(DecodeState('e', "e_1-2").has_value());
  EXPECT_EQ(DecodeState('e', "e")->size(), 0u);
  std::vector<MailboxMark> with_meta = {{3, 4, 5, 4000000000u}};
  EXPECT_EQ(*DecodeState('m', EncodeState('m', with_meta)), with_meta);
}

TEST(JmapIds, Validity) {
  EXPECT_TRUE(IsValidId("e0123-abc_Z"));
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId("a b"));
  EXPECT_FALSE(IsValidId(std::string(256, 'a')));
}

}  // namespace
}  // namespace hato::jmap
