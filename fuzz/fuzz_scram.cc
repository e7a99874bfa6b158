// libFuzzer target for the SCRAM-SHA-256 server (src/auth/scram.h).
//
// Input: "<client-first-message>\n<client-final-message>" (the second part
// optional); the whole input also goes to the verifier and saslname parsers.
//
// Invariants:
//   * nothing crashes; parse errors are kInvalid, a failed proof kAuth;
//   * a parsed client-first-message is gs2_header + bare, its user and
//     authzid re-escape to what was sent, its nonce is printable without ',';
//   * the state machine agrees with the parser, and its server-first message
//     starts with "r=" + client nonce + our nonce;
//   * a client-final-message is accepted only with c= the base64 GS2 header
//     and r= the combined nonce, and then answers "v=" + 44 base64 chars;
//   * a correct client-final-message built by an independent client for the
//     parsed client-first-message is always accepted;
//   * UnescapeSaslName(x) succeeds only when EscapeSaslName gives x back;
//     ParseScramVerifier / FormatScramVerifier round-trip.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/scram.h"
#include "base/strings.h"
#include "fuzz_util.h"

namespace {

using hato::ErrorKind;
using namespace hato::auth;

constexpr std::string_view kPassword = "pencil";
constexpr std::string_view kOurNonce = "fuzzNONCE+/0";

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

struct Fixture {
  ScramVerifier verifier;
  std::string client_key;
};

const Fixture& Fix() {
  static const Fixture f = [] {
    Fixture x;
    x.verifier = *ComputeScramVerifier(kPassword, "0123456789abcdef", kScramMinIterations);
    unsigned char salted[32];
    PKCS5_PBKDF2_HMAC(kPassword.data(), static_cast<int>(kPassword.size()),
                      reinterpret_cast<const unsigned char*>(x.verifier.salt.data()),
                      static_cast<int>(x.verifier.salt.size()), x.verifier.iterations, EVP_sha256(),
                      32, salted);
    x.client_key = Hmac(std::string_view(reinterpret_cast<char*>(salted), 32), "Client Key");
    return x;
  }();
  return f;
}

bool Printable(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

void CheckClientFirst(std::string_view msg, const hato::Result<ScramClientFirst>& r) {
  if (!r.ok()) {
    FUZZ_CHECK(r.error().kind == ErrorKind::kInvalid);
    return;
  }
  FUZZ_CHECK_EQ_STR(r->gs2_header + r->bare, std::string(msg));
  FUZZ_CHECK(r->gs2_flag == 'n' || r->gs2_flag == 'y');
  std::string header = std::string(1, r->gs2_flag) + "," +
                       (r->authzid.empty() ? "" : "a=" + EscapeSaslName(r->authzid)) + ",";
  FUZZ_CHECK_EQ_STR(r->gs2_header, header);
  FUZZ_CHECK(!r->user.empty());
  std::string start = "n=" + EscapeSaslName(r->user) + ",r=" + r->nonce;
  FUZZ_CHECK(r->bare.rfind(start, 0) == 0);
  FUZZ_CHECK(r->bare.size() == start.size() || r->bare[start.size()] == ',');
  FUZZ_CHECK(Printable(r->nonce));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const Fixture& fix = Fix();

  if (auto name = UnescapeSaslName(in)) FUZZ_CHECK_EQ_STR(EscapeSaslName(*name), std::string(in));
  if (auto v = ParseScramVerifier(in)) {
    FUZZ_CHECK(v->iterations >= kScramMinIterations && v->iterations <= kScramMaxIterations);
    FUZZ_CHECK(v->stored_key.size() == 32 && v->server_key.size() == 32 && !v->salt.empty());
    auto again = ParseScramVerifier(FormatScramVerifier(*v));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK_EQ_STR(FormatScramVerifier(*again), FormatScramVerifier(*v));
  }

  size_t nl = in.find('\n');
  std::string_view first_msg = in.substr(0, nl);
  std::string_view final_msg = nl == std::string_view::npos ? "" : in.substr(nl + 1);

  auto parsed = ParseScramClientFirst(first_msg);
  CheckClientFirst(first_msg, parsed);
  ScramServer server;
  auto first = server.ReceiveClientFirst(first_msg);
  FUZZ_CHECK(first.ok() == parsed.ok());
  if (!first.ok()) {
    FUZZ_CHECK(!server.ReceiveClientFinal(final_msg).ok());  // out of order
    return 0;
  }
  std::string server_first = server.ServerFirst(fix.verifier, kOurNonce);
  std::string nonce = first->nonce + std::string(kOurNonce);
  FUZZ_CHECK(server_first.rfind("r=" + nonce + ",s=", 0) == 0);

  auto fin = server.ReceiveClientFinal(final_msg);
  auto fin_parsed = ParseScramClientFinal(final_msg);
  if (fin.ok()) {
    FUZZ_CHECK(fin_parsed.ok());
    FUZZ_CHECK_EQ_STR(fin_parsed->channel_binding, hato::Base64Encode(first->gs2_header));
    FUZZ_CHECK_EQ_STR(fin_parsed->nonce, nonce);
    FUZZ_CHECK(fin->size() == 46 && fin->rfind("v=", 0) == 0);
  } else {
    FUZZ_CHECK(fin.error().kind == ErrorKind::kInvalid || fin.error().kind == ErrorKind::kAuth);
    if (!fin_parsed.ok()) FUZZ_CHECK(fin.error().kind == ErrorKind::kInvalid);
  }

  // An honest client's answer to the same client-first-message succeeds.
  ScramServer honest;
  FUZZ_CHECK(honest.ReceiveClientFirst(first_msg).ok());
  std::string sf = honest.ServerFirst(fix.verifier, kOurNonce);
  std::string without_proof = "c=" + hato::Base64Encode(first->gs2_header) + ",r=" + nonce;
  std::string auth_message = first->bare + "," + sf + "," + without_proof;
  unsigned char stored[32];
  SHA256(reinterpret_cast<const unsigned char*>(fix.client_key.data()), fix.client_key.size(),
         stored);
  std::string proof = Hmac(std::string_view(reinterpret_cast<char*>(stored), 32), auth_message);
  for (size_t i = 0; i < proof.size(); ++i) proof[i] ^= fix.client_key[i];
  auto ok = honest.ReceiveClientFinal(without_proof + ",p=" + hato::Base64Encode(proof));
  if (!ok.ok())
    hato::fuzz::Fail(__FILE__, __LINE__, "honest proof refused", std::string(first_msg),
                     ok.error().message);
  return 0;
}
