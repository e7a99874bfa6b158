// JMAP for Sieve Scripts (RFC 9661): SieveScript/get, /set, /query and
// /validate over the account's scripts in the store (the same ones
// ManageSieve and `hato sieve` manage; src/sieve). Blocking: everything here
// runs on the blocking pool (jmap/api.h RunRequest).
//
// Ids: a SieveScript is "S" + the base64url of its name (the store keys
// scripts by name), so a rename would change the id: /set refuses to change
// a name (invalidProperties) and clients destroy and create instead. The
// server's own scripts (sieve::IsReservedScriptName: forwarding, vacation
// response) do not exist here. Content travels as blobs (section 2.2): a
// script's blobId is its text's "b" + SHA-256, readable at the download URL.
#pragma once

#include <string>
#include <vector>

#include "jmap/api.h"

namespace hato::jmap {

inline constexpr const char* kCapSieve = "urn:ietf:params:jmap:sieve";

const std::vector<MethodEntry>& SieveMethods();

// The capability's values (RFC 9661 section 1.2.1): the session's and the
// account's (limits from [sieve] in hato.toml).
json::object SieveSessionCapability();
json::object SieveAccountCapability(const config::Config& cfg);

// A script's text by the hex SHA-256 of its blobId; kNotFound when no
// script of the account has it (jmap/mail.cc ReadBlob asks last).
Result<std::string> ReadSieveBlob(Context& ctx, const std::string& hex);

}  // namespace hato::jmap
