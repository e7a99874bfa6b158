#include "msgauth/dkim.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "base/digest.h"
#include "base/strings.h"
#include "mime/header.h"

namespace hato::msgauth {

struct SigningKey::Impl {
  EVP_PKEY* pkey = nullptr;
  ~Impl() { EVP_PKEY_free(pkey); }
};

namespace {

using mime::internal::Field;
using mime::internal::ScanHeader;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Headers recommended for signing (RFC 6376 section 5.4.1) and the ones signed
// once more than they occur (section 8.15: a later added instance breaks the
// signature).
const std::vector<std::string> kOversigned = {"from",       "to",           "cc",
                                              "subject",    "date",         "reply-to",
                                              "message-id", "content-type", "mime-version"};

// The message split into its raw header fields and body (RFC 5322 section 2.1).
struct Split {
  std::vector<Field> fields;
  std::string_view body;
};

Split SplitMessage(std::string_view message) {
  auto scan = ScanHeader(message, std::numeric_limits<size_t>::max());
  return Split{std::move(scan.fields), message.substr(std::min(scan.end, message.size()))};
}

std::string_view RawField(std::string_view message, const Field& f) {
  return message.substr(f.begin, f.end - f.begin);
}

// The canonicalized header fields named in h=, each instance taken from the
// bottom up; a name with no unused instance left contributes nothing
// (RFC 6376 section 5.4.2).
std::string HashedHeaders(std::string_view message, const std::vector<Field>& fields,
                          const std::vector<std::string>& names, Canon canon,
                          const Field* exclude) {
  std::vector<bool> used(fields.size(), false);
  std::string out;
  for (const auto& name : names) {
    for (size_t i = fields.size(); i-- > 0;) {
      if (used[i] || &fields[i] == exclude || !EqualsIgnoreCase(fields[i].name, name)) continue;
      used[i] = true;
      out += CanonHeader(canon, RawField(message, fields[i]));
      break;
    }
  }
  return out;
}

// The signature field's own contribution: canonicalized, without the final
// CRLF (section 3.7).
std::string SelfPart(Canon canon, std::string_view field_text) {
  std::string c = CanonHeader(canon, field_text);
  c.resize(c.size() - 2);
  return c;
}

// RSA: PKCS#1 v1.5 over SHA-256 of the data. Ed25519 (RFC 8463 section 3):
// PureEdDSA over the SHA-256 hash of the data.
Result<std::string> SignData(EVP_PKEY* pkey, KeyType type, std::string_view data) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string input = type == KeyType::kRsa ? std::string(data) : Sha256(data);
  const EVP_MD* md = type == KeyType::kRsa ? EVP_sha256() : nullptr;
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, pkey) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    return Err(ErrorKind::kInternal, "dkim: signing failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return Err(ErrorKind::kInternal, "dkim: signing failed");
  }
  sig.resize(len);
  return sig;
}

bool VerifyData(EVP_PKEY* pkey, KeyType type, std::string_view data, std::string_view sig) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string input = type == KeyType::kRsa ? std::string(data) : Sha256(data);
  const EVP_MD* md = type == KeyType::kRsa ? EVP_sha256() : nullptr;
  bool ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, pkey) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  // A failed verification leaves errors on this thread's OpenSSL queue, where
  // a later SSL_get_error on the same thread would find them.
  if (!ok) ERR_clear_error();
  return ok;
}

// The public key of a key record: DER SubjectPublicKeyInfo (what RFC 6376
// section 3.6.1 specifies) or a bare RSAPublicKey (seen in the wild), or the
// raw Ed25519 key.
Result<PkeyPtr> PublicKeyOf(const DkimKey& key);

Result<PkeyPtr> PublicKey(const DkimKey& key) {
  auto k = PublicKeyOf(key);
  if (!k) ERR_clear_error();
  return k;
}

Result<PkeyPtr> PublicKeyOf(const DkimKey& key) {
  const auto* p = reinterpret_cast<const unsigned char*>(key.public_key.data());
  if (key.type == KeyType::kEd25519) {
    PkeyPtr k(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, p, key.public_key.size()));
    if (!k) return Err(ErrorKind::kInvalid, "bad ed25519 key");
    return k;
  }
  const unsigned char* q = p;
  PkeyPtr k(d2i_PUBKEY(nullptr, &q, static_cast<long>(key.public_key.size())));
  if (!k) {
    q = p;
    k.reset(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &q, static_cast<long>(key.public_key.size())));
  }
  if (!k || EVP_PKEY_get_base_id(k.get()) != EVP_PKEY_RSA) {
    return Err(ErrorKind::kInvalid, "bad rsa key");
  }
  if (EVP_PKEY_get_bits(k.get()) < kMinRsaBits) {
    return Err(ErrorKind::kInvalid, "rsa key shorter than 1024 bits (RFC 8301 section 3.2)");
  }
  return k;
}

// Appends `text` folded into lines of at most ~76 octets, breaking only at
// the given characters (FWS is allowed there).
void AppendFolded(std::string* out, size_t* col, std::string_view text, bool anywhere) {
  for (size_t i = 0; i < text.size(); ++i) {
    bool can_break = anywhere || text[i] == ':';
    if (can_break && *col >= 76) {
      *out += "\r\n\t";
      *col = 1;
    }
    *out += text[i];
    ++*col;
  }
}

}  // namespace

Result<SigningKey> SigningKey::FromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  // No passphrase: an encrypted key fails instead of prompting on a terminal.
  pem_password_cb* no_password = [](char*, int, int, void*) { return 0; };
  EVP_PKEY* raw = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr) : nullptr;
  if (raw == nullptr) {
    ERR_clear_error();
    return Err(ErrorKind::kInvalid, "dkim: not an unencrypted PEM private key");
  }
  SigningKey k;
  k.impl_ = std::make_shared<Impl>();
  k.impl_->pkey = raw;
  int id = EVP_PKEY_get_base_id(raw);
  if (id == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(raw) < kMinRsaBits) {
      return Err(ErrorKind::kInvalid, "dkim: rsa key shorter than 1024 bits");
    }
    k.type_ = KeyType::kRsa;
  } else if (id == EVP_PKEY_ED25519) {
    k.type_ = KeyType::kEd25519;
  } else {
    return Err(ErrorKind::kInvalid, "dkim: key is neither RSA nor Ed25519");
  }
  return k;
}

Result<SigningKey> SigningKey::Generate(KeyType type, int rsa_bits) {
  EVP_PKEY* raw = type == KeyType::kRsa
                      ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits))
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw == nullptr) return Err(ErrorKind::kInternal, "dkim: key generation failed");
  SigningKey k;
  k.impl_ = std::make_shared<Impl>();
  k.impl_->pkey = raw;
  k.type_ = type;
  return k;
}

Result<std::string> SigningKey::PrivatePem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->pkey, nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    return Err(ErrorKind::kInternal, "dkim: cannot write the private key");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> SigningKey::DnsRecord() const {
  std::string pub;
  if (type_ == KeyType::kEd25519) {
    size_t len = 32;
    pub.resize(len);
    if (EVP_PKEY_get_raw_public_key(impl_->pkey, reinterpret_cast<unsigned char*>(pub.data()),
                                    &len) != 1) {
      return Err(ErrorKind::kInternal, "dkim: cannot export the public key");
    }
    pub.resize(len);
  } else {
    int len = i2d_PUBKEY(impl_->pkey, nullptr);
    if (len <= 0) return Err(ErrorKind::kInternal, "dkim: cannot export the public key");
    pub.resize(static_cast<size_t>(len));
    auto* p = reinterpret_cast<unsigned char*>(pub.data());
    i2d_PUBKEY(impl_->pkey, &p);
  }
  return std::string("v=DKIM1; k=") + (type_ == KeyType::kRsa ? "rsa" : "ed25519") +
         "; p=" + Base64Encode(pub);
}

const std::vector<std::string>& DefaultSignedHeaders() {
  static const std::vector<std::string> kList = {"from",
                                                 "sender",
                                                 "reply-to",
                                                 "subject",
                                                 "date",
                                                 "message-id",
                                                 "to",
                                                 "cc",
                                                 "mime-version",
                                                 "content-type",
                                                 "content-transfer-encoding",
                                                 "content-id",
                                                 "content-description",
                                                 "in-reply-to",
                                                 "references",
                                                 "list-id",
                                                 "list-help",
                                                 "list-unsubscribe",
                                                 "list-unsubscribe-post",
                                                 "list-subscribe",
                                                 "list-post",
                                                 "list-owner",
                                                 "list-archive"};
  return kList;
}

Result<std::string> Sign(const SigningKey& key, const SignOptions& opts, std::string_view message) {
  if (opts.domain.empty() || opts.selector.empty()) {
    return Err(ErrorKind::kInvalid, "dkim: domain and selector are required");
  }
  Split m = SplitMessage(message);
  std::vector<std::string> names = opts.headers;
  if (names.empty()) {
    for (const auto& h : DefaultSignedHeaders()) {
      size_t n = std::count_if(m.fields.begin(), m.fields.end(),
                               [&](const Field& f) { return EqualsIgnoreCase(f.name, h); });
      if (std::find(kOversigned.begin(), kOversigned.end(), h) != kOversigned.end() && n > 0) ++n;
      names.insert(names.end(), n, h);
    }
  }
  if (std::none_of(names.begin(), names.end(),
                   [](const std::string& n) { return EqualsIgnoreCase(n, "from"); })) {
    return Err(ErrorKind::kInvalid, "dkim: the message has no From field to sign");
  }
  std::string body = CanonBody(opts.body_canon, m.body);

  std::string f = "DKIM-Signature: v=1; a=" + std::string(AlgorithmName(key.algorithm())) +
                  "; c=" + std::string(CanonName(opts.header_canon)) + "/" +
                  std::string(CanonName(opts.body_canon)) + "; d=" + opts.domain +
                  "; s=" + opts.selector + ";";
  if (opts.timestamp > 0) {
    f += " t=" + std::to_string(opts.timestamp) + ";";
    if (opts.expire_after > 0)
      f += " x=" + std::to_string(opts.timestamp + opts.expire_after) + ";";
  }
  if (!opts.identity.empty()) f += " i=" + opts.identity + ";";
  if (opts.body_length) f += " l=" + std::to_string(body.size()) + ";";
  f += "\r\n\th=";
  size_t col = 3;
  std::string h;
  for (size_t i = 0; i < names.size(); ++i) h += (i ? ":" : "") + names[i];
  AppendFolded(&f, &col, h, false);
  f += ";\r\n\tbh=" + Base64Encode(Sha256(body)) + ";\r\n\tb=";

  std::string data = HashedHeaders(message, m.fields, names, opts.header_canon, nullptr);
  data += SelfPart(opts.header_canon, f);
  auto sig = SignData(key.impl().pkey, key.type(), data);
  if (!sig) return sig.error();
  col = 3;
  AppendFolded(&f, &col, Base64Encode(*sig), true);
  f += "\r\n";
  return f;
}

std::string_view DkimStatusName(DkimStatus s) {
  switch (s) {
    case DkimStatus::kPass:
      return "pass";
    case DkimStatus::kFail:
      return "fail";
    case DkimStatus::kNeutral:
      return "neutral";
    case DkimStatus::kPolicy:
      return "policy";
    case DkimStatus::kTempError:
      return "temperror";
    case DkimStatus::kPermError:
      return "permerror";
  }
  return "permerror";
}

namespace {

// The canonical bodies, computed once per algorithm for all signatures.
struct BodyCache {
  std::string_view body;
  std::optional<std::string> simple, relaxed;
  const std::string& Get(Canon c) {
    auto& slot = c == Canon::kSimple ? simple : relaxed;
    if (!slot) slot = CanonBody(c, body);
    return *slot;
  }
};

DkimResult VerifyOne(std::string_view message, const Split& m, const Field& field, DnsLookup& dns,
                     const VerifyOptions& opts, BodyCache& bodies) {
  DkimResult r;
  auto done = [&r](DkimStatus s, std::string reason) {
    r.status = s;
    r.reason = std::move(reason);
    return r;
  };
  auto parsed = ParseSignature(field.value);
  if (!parsed) return done(DkimStatus::kPermError, parsed.error().message);
  const DkimSignature& sig = *parsed;
  r.domain = sig.domain;
  r.selector = sig.selector;
  r.identity = sig.identity;
  r.algorithm = std::string(AlgorithmName(sig.algorithm));
  r.b_prefix = sig.b_text.substr(0, 8);

  // Section 6.1.1: a signature past its x= is not valid.
  if (sig.expiration && opts.now > 0 && static_cast<uint64_t>(opts.now) > *sig.expiration) {
    return done(DkimStatus::kFail, "signature expired");
  }
  if (sig.body_length && opts.length_policy == LengthPolicy::kRejectAnyLength) {
    return done(DkimStatus::kPolicy, "l= not accepted");
  }

  // Section 6.1.2: the key record at SELECTOR._domainkey.DOMAIN.
  auto txt = dns.Txt(sig.selector + "._domainkey." + sig.domain);
  if (!txt) {
    if (IsNxDomain(txt.error())) return done(DkimStatus::kPermError, "no key record");
    return done(DkimStatus::kTempError, "key lookup failed");
  }
  std::optional<DkimKey> key;
  std::string key_error = "no key record";
  for (const auto& rec : *txt) {
    auto k = ParseKeyRecord(rec);
    if (k) {
      key = std::move(*k);
      break;
    }
    key_error = k.error().message;
  }
  if (!key) return done(DkimStatus::kPermError, key_error);
  r.testing = key->testing;
  if (key->revoked) return done(DkimStatus::kPermError, "key revoked");
  KeyType want = sig.algorithm == SigAlgorithm::kRsaSha256 ? KeyType::kRsa : KeyType::kEd25519;
  if (key->type != want) return done(DkimStatus::kPermError, "key type does not match a=");
  if (key->strict) {  // t=s: the i= domain must be exactly d=
    std::string idom = AsciiLower(sig.identity.substr(sig.identity.rfind('@') + 1));
    if (idom != sig.domain) return done(DkimStatus::kPermError, "i= not d= under t=s");
  }
  auto pkey = PublicKey(*key);
  if (!pkey) return done(DkimStatus::kPermError, pkey.error().message);

  // Section 6.1.3: body hash, limited to l= octets.
  std::string_view body = bodies.Get(sig.body_canon);
  if (sig.body_length) {
    if (*sig.body_length > body.size()) return done(DkimStatus::kPermError, "l= exceeds the body");
    if (*sig.body_length < body.size() && opts.length_policy == LengthPolicy::kRejectAppended) {
      return done(DkimStatus::kPolicy, "unsigned content after l=");
    }
    body = body.substr(0, *sig.body_length);
  }
  if (Sha256(body) != sig.body_hash) return done(DkimStatus::kFail, "body hash did not verify");

  // Header hash: the h= fields, then this field with b='s value deleted
  // (section 3.7).
  std::string_view raw = RawField(message, field);
  size_t voff = static_cast<size_t>(field.value.data() - raw.data());
  std::string self =
      std::string(raw.substr(0, voff + sig.b_begin)) + std::string(raw.substr(voff + sig.b_end));
  std::string data = HashedHeaders(message, m.fields, sig.headers, sig.header_canon, &field);
  data += SelfPart(sig.header_canon, self);
  if (!VerifyData(pkey->get(), key->type, data, sig.signature)) {
    return done(DkimStatus::kFail, "signature did not verify");
  }
  return done(DkimStatus::kPass, "");
}

}  // namespace

std::vector<DkimResult> Verify(std::string_view message, DnsLookup& dns,
                               const VerifyOptions& opts) {
  Split m = SplitMessage(message);
  BodyCache bodies{m.body, std::nullopt, std::nullopt};
  std::vector<DkimResult> out;
  for (const Field& f : m.fields) {
    if (!EqualsIgnoreCase(f.name, "DKIM-Signature")) continue;
    if (out.size() >= opts.max_signatures) break;
    out.push_back(VerifyOne(message, m, f, dns, opts, bodies));
  }
  return out;
}

}  // namespace hato::msgauth
