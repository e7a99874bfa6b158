// App passwords (issue 13, item 2): a separate, revocable password per mail
// client, so that the account's own password stays in the member's head and
// a lost phone costs one revocation. Each is 20 characters of a 32-letter
// alphabet (100 random bits) shown once as "abcd-efgh-jkmn-pqrs-tuvw"; the
// store keeps only AppPasswordHash of its normalized form, as an access
// token of kind "app" (store::Store::AddToken). They work wherever a
// password is checked by server::CheckLogin (IMAP, POP3, SMTP submission,
// HTTP Basic), never for the web login or a password change, and not with
// SCRAM (no verifier is kept for them). Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hato::auth {

inline constexpr size_t kAppPasswordChars = 20;
inline constexpr size_t kMaxAppPasswordLabel = 100;

// Lower-case letters and digits without the confusable 0 1 l o (32 of them:
// each character carries 5 bits).
inline constexpr std::string_view kAppPasswordAlphabet = "abcdefghijkmnpqrstuvwxyz23456789";

// Formats 20 alphabet characters chosen from `random` (at least 20 bytes) in
// groups of four joined by "-".
std::string FormatAppPassword(std::string_view random);

// The 20 characters of an app password typed with or without the dashes or
// spaces, in any case; nullopt when `typed` cannot be one.
std::optional<std::string> NormalizeAppPassword(std::string_view typed);

// The stored form: hex SHA-256 of "app:" + the normalized password.
std::string AppPasswordHash(std::string_view normalized);

}  // namespace hato::auth
