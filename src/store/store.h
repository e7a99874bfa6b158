// The store: the domain operations every protocol uses (deliver, list, read,
// expunge, accounts and domains). Protocol code calls these, never SQL; the
// embedded backend (store/sqlite) is the only place SQL appears.
//
// Threading contract:
//  - Reads are synchronous, thread-safe and may block on disk: call them off
//    the network event loop (io/await.h Offload).
//  - Mail writes (Deliver, Expunge) are asynchronous: they are queued to the
//    backend's single writer, group-committed with other writes, and `done`
//    is called on the writer thread only after the change is on stable
//    storage (or has failed, with nothing of it visible).
//  - Admin writes are synchronous wrappers over the same writer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "io/fs.h"

namespace hato::store {

template <typename T>
using Done = std::function<void(Result<T>)>;

inline constexpr const char* kInbox = "INBOX";

// Message flags (RFC 3501 section 2.3.2 system flags), stored as bits.
enum Flag : uint32_t {
  kSeen = 1,
  kAnswered = 2,
  kFlagged = 4,
  kDeleted = 8,
  kDraft = 16,
};

enum class FlagOp { kReplace, kAdd, kRemove };

struct Account {
  int64_t id = 0;
  std::string address;  // canonical: lower-case local part and domain
  std::string password_hash;
};

struct AccountSummary {
  std::string address;
  uint64_t messages = 0;
  uint64_t bytes = 0;
};

struct DeliveryRequest {
  std::string return_path;           // envelope sender, "" for the null path
  std::vector<int64_t> account_ids;  // local recipients, delivered to INBOX
  std::string content;               // the full message as stored (CRLF line ends)
  int64_t received_at = 0;           // unix seconds
};

struct DeliveryReceipt {
  std::string content_id;  // hex SHA-256 of the stored content
  std::vector<int64_t> message_ids;
};

struct MessageMeta {
  int64_t id = 0;
  uint32_t uid = 0;
  uint64_t size = 0;
  int64_t internal_date = 0;
  uint32_t flags = 0;
};

struct MailboxSnapshot {
  int64_t mailbox_id = 0;
  uint32_t uidvalidity = 0;
  std::vector<MessageMeta> messages;  // live messages in UID order
};

struct VerifyReport {
  uint64_t blobs_checked = 0;
  std::vector<std::string> problems;  // empty when the store verified clean
};

class Store {
 public:
  virtual ~Store() = default;

  // Domains and accounts (admin).
  virtual Status AddDomain(std::string_view domain) = 0;
  virtual Status RemoveDomain(std::string_view domain) = 0;  // only when it has no live accounts
  virtual Result<std::vector<std::string>> ListDomains() = 0;
  virtual Result<bool> IsLocalDomain(std::string_view domain) = 0;
  virtual Status AddAccount(std::string_view address, std::string_view password_hash) = 0;
  virtual Status SetPassword(std::string_view address, std::string_view password_hash) = 0;
  // Soft removal: the account stops receiving and logging in; its mail is kept
  // for the retention period and then purged.
  virtual Status RemoveAccount(std::string_view address) = 0;
  virtual Result<std::vector<AccountSummary>> ListAccounts() = 0;
  virtual Result<Account> FindAccount(std::string_view address) = 0;

  // Mail.
  virtual void Deliver(DeliveryRequest request, Done<DeliveryReceipt> done) = 0;
  virtual Result<MailboxSnapshot> ListMessages(int64_t account_id, std::string_view mailbox) = 0;
  // Returns the verified content; kCorrupt when it fails its checksum.
  virtual Result<std::string> ReadMessage(int64_t account_id, int64_t message_id) = 0;
  // Changes the flags of messages (each change gets a new modification
  // sequence, RFC 7162). Messages not in the account are ignored.
  virtual void SetFlags(int64_t account_id, std::vector<int64_t> message_ids, FlagOp op,
                        uint32_t flags, Done<void> done) = 0;
  // Moves messages to the retention area (recoverable until purged).
  virtual void Expunge(int64_t account_id, std::vector<int64_t> message_ids, Done<void> done) = 0;

  // Maintenance.
  // Destroys expunged messages and removed accounts older than `cutoff` (unix seconds).
  virtual Result<uint64_t> PurgeExpired(int64_t cutoff) = 0;
  // Reads every referenced body and checks it against its checksum.
  virtual Result<VerifyReport> Verify() = 0;
};

struct StoreOptions {
  io::FileSystem* fs = nullptr;  // null: the real file system (tests inject faults here)
  bool compress = true;
  size_t max_pending_writes = 10000;  // queued writes past this fail fast (kTemporary)
  size_t max_batch = 512;             // writes group-committed in one transaction at most
};

// Opens (creating and migrating as needed) the embedded store under data_dir.
Result<std::unique_ptr<Store>> OpenEmbeddedStore(const std::string& data_dir,
                                                 const StoreOptions& options);

// Blocks until an async write completes; for the CLI and tests.
template <typename T, typename Op>
Result<T> Wait(Op&& op);

}  // namespace hato::store

#include "store/wait.h"
