// JMAP for Sieve Scripts (RFC 9661): SieveScript/get, /changes, /set,
// /query and /validate over the account's scripts in the store (the same
// ones ManageSieve and `hato sieve` manage; src/sieve). Blocking: everything
// here runs on the blocking pool (jmap/api.h RunRequest).
//
// Ids and states come from the store: a SieveScript is "S" + the store's
// script id, which a rename keeps (/set may change `name`, as ManageSieve's
// RENAMESCRIPT does); the state is "c" + the account's script change
// counter, which every script write adds to in its transaction, so
// /changes reports created, updated and destroyed (tombstones) scripts.
// A /set that wrote something publishes the account's records
// (server::ChangeFeed::PublishRecords): EventSource streams then send
// StateChange for SieveScript (jmap/api.cc). The server's own scripts
// (sieve::IsReservedScriptName: forwarding, vacation response) do not exist
// here; their writes still move the counter (a state change with nothing in
// /changes). Content travels as blobs (section 2.2): a script's blobId is
// its text's "b" + SHA-256, readable at the download URL.
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

// The SieveScript state string of the store's script counter
// (Store::SieveScriptsState).
std::string SieveState(uint64_t seq);

// A script's text by the hex SHA-256 of its blobId; kNotFound when no
// script of the account has it (jmap/mail.cc ReadBlob asks last).
Result<std::string> ReadSieveBlob(Context& ctx, const std::string& hex);

}  // namespace hato::jmap
