// JMAP Mail (RFC 8621) over the store: the session object, state strings,
// ids, blobs and the method handlers (Mailbox/*, Email/*, Thread/*,
// Identity/*, SearchSnippet/get, EmailSubmission/*). Blocking: everything here runs on the
// blocking pool (jmap/api.h RunRequest).
//
// Ids: an Email is its body: "e" + 24 hex digits of the body's SHA-256 (the
// same body in two mailboxes is one Email with two mailboxIds); a Mailbox is
// "m" + its store id; a Thread is "t" + 24 hex digits of the hash of the
// first message id of References, else In-Reply-To, else Message-ID (the
// root of the conversation as the message records it; mail.cc "Threads");
// a blob is "b"
// + the 64 hex digits of its SHA-256 (message bodies, uploads), or that and
// "_" + a part id for one decoded part.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "io/fs.h"
#include "jmap/api.h"

namespace hato::jmap {

std::string EmailIdOf(std::string_view sha256_raw);
// A mailing list archive the user may read (issue 14 item 7): an account in
// the session's `accounts` with isPersonal and isReadOnly (RFC 8620 section
// 2), whose Mailbox/Email/Thread reads work and whose writes answer
// accountReadOnly. Membership is checked again at every request.
struct SharedAccount {
  int64_t account_id = 0;  // the list's archive account
  std::string name;        // the list's address
};
// The archives `address` may read (Store::ListsOfMember).
Result<std::vector<SharedAccount>> SharedAccounts(store::Store& store, const std::string& address);
// Changes when the session object does: with the shared accounts.
std::string SessionState(std::string_view address, const std::vector<SharedAccount>& shared = {});
json::object SessionObject(const config::Config& cfg, int64_t account_id,
                           const std::string& address, const std::string& base_url,
                           const std::vector<SharedAccount>& shared = {});
const std::vector<std::string>& SupportedCapabilities();
std::string EmailState(const std::vector<store::MailboxInfo>& mailboxes);
std::string MailboxState(const std::vector<store::MailboxInfo>& mailboxes);

// Stores an upload (RFC 8620 section 6.1) in `dir` under its hash; returns
// its blobId. kTooLarge past the account's quota. Uploads older than
// kUploadLifetimeSeconds are removed.
inline constexpr int64_t kUploadLifetimeSeconds = 24 * 3600;
Result<std::string> SaveUpload(store::Store& store, int64_t account_id, const std::string& dir,
                               const std::string& body);
// A blob's bytes: an Email's body, a decoded part, or an upload. kNotFound otherwise.
Result<std::string> ReadBlob(Context& ctx, const std::string& blob_id);

std::vector<std::string_view> SplitOn(std::string_view s, char sep);

// Push of EmailSubmission (RFC 8620 section 7.3, RFC 8621 section 7): the
// account's EmailSubmission state as EmailSubmission/get would give it now
// (what the queue did since is observed first, which may move the state),
// and whether a submission still waits for an outcome from the queue.
struct SubmissionPush {
  std::string state;
  bool pending = false;
};
Result<SubmissionPush> SubmissionPushState(Context& ctx);

// The file system of JMAP's files in the data directory (the identity and
// submission files of older versions): the fault-injecting one under
// HATO_FAULTS_FILE (io/fault_fs.h). Default: io::FileSystem::Default().
// Set before serving.
void SetDataFiles(io::FileSystem* fs);

// Moves the identity and submission files of older versions
// (data/jmap-identities/{account}.json, data/jmap-submissions/...) into the
// store (Store::PutJmapDocument) unless the store already has that record,
// and renames each to *.json.migrated. Run once at start (AddRoutes).
// Returns how many files it moved.
size_t ImportJmapFiles(store::Store& store, const std::string& data_dir);

}  // namespace hato::jmap
