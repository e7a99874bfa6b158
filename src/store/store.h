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
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "io/fs.h"
#include "store/blobs.h"
#include "store/keyword_limits.h"

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

struct FlagChange {
  FlagOp op = FlagOp::kAdd;
  uint32_t flags = 0;                 // system flags (Flag bits)
  std::vector<std::string> keywords;  // IMAP keywords, as given
  uint64_t unchanged_since = 0;       // RFC 7162 UNCHANGEDSINCE; 0 = unconditional
  // Enforced by SetFlags for every message it changes (store/keyword_limits.h):
  // past one, nothing is changed and SetFlags fails with kTooLarge.
  KeywordLimits keyword_limits;
};

struct FlagResult {
  std::vector<int64_t> refused;  // failed the UNCHANGEDSINCE test (RFC 7162 MODIFIED)
};

// The canonical form of a mailbox name: a first component equal to INBOX in
// any case becomes "INBOX" (RFC 3501 section 5.1). kInvalid for empty
// components, wildcards or control characters.
Result<std::string> CanonicalMailboxName(std::string_view name);

struct Account {
  int64_t id = 0;
  std::string address;  // canonical: lower-case local part and domain
  std::string password_hash;
  // SCRAM-SHA-256 verifier (auth/scram.h, RFC 5803 form) of the same
  // password; empty for accounts whose password was set before schema 9.
  std::string scram_sha256;
  // The account's session epoch (server/account_sessions.h), read with the
  // password: a session that logged in under a lower epoch is ended.
  int64_t session_epoch = 0;
  // Its quota limit (Store::SetQuota) as ResolveRecipient reads it; nullopt
  // = none, so delivery need not read its usage (GetQuota).
  std::optional<uint64_t> quota_bytes;
};

// An account whose sessions must end (password changed, removed, signed out
// everywhere): its new epoch.
struct SessionEnd {
  int64_t account_id = 0;
  int64_t epoch = 0;
};

// A removed account in retention (hato user list --removed).
struct RemovedAccount {
  int64_t id = 0;
  std::string address;
  int64_t removed_at = 0;  // unix seconds
  uint64_t messages = 0;   // kept for the retention period
  uint64_t bytes = 0;
};

struct AccountSummary {
  std::string address;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  std::optional<uint64_t> quota_bytes;  // none: unlimited
  bool admin = false;                   // the admin role (the web admin console)
};

// An address alias (issue 5): mail to `alias` goes to the account's INBOX,
// and the account may submit with it as MAIL FROM (RFC 6409 section 8.1).
struct AliasInfo {
  std::string alias;             // canonical, like Account::address
  std::string account;           // the target account's address
  bool account_removed = false;  // the target is removed (in retention): the alias is dormant
};

// An account's storage quota (RFC 9208 resource STORAGE): the live
// (not expunged) messages of all its mailboxes count.
struct QuotaUsage {
  std::optional<uint64_t> limit_bytes;  // none: unlimited
  uint64_t used_bytes = 0;              // computed only when there is a limit (else 0)
};

// The decoded text of a message for the full-text index (IMAP SEARCH
// BODY/TEXT): header fields with RFC 2047 words decoded, and the text parts
// transfer-decoded and converted to UTF-8.
struct IndexText {
  std::string header;
  std::string body;
};

// What SEARCH BODY/TEXT found through the index in one mailbox.
struct TextMatches {
  std::vector<uint32_t> uids;       // indexed messages that match
  std::vector<uint32_t> unindexed;  // messages with no index row (stored before the index)
};

// ---- Outbound queue (submission and remote delivery; docs/architecture.md) ----

// State of one recipient of a queued message.
enum class RecipientState : int { kQueued = 0, kHeld = 1, kDelivered = 2, kFailed = 3 };

// A delivery status notification owed to the sender for a recipient
// (RFC 3464); cleared in the same transaction that stores the DSN.
enum class DsnPending : int { kNone = 0, kFailure = 1, kDelay = 2, kRelayed = 3 };

struct OutboundRecipient {
  std::string address;  // as given in RCPT TO
  unsigned notify = 0;  // smtp::Notify bits; 0 = not given (failure reports only)
  std::string orcpt;    // RFC 3461 ORCPT "addr-type;address", or ""
};

// A message for remote recipients, queued in the same transaction as any
// local delivery of the same submission.
struct OutboundRequest {
  std::string content;    // as it will be sent (CRLF line ends), without Return-Path
  std::string sender;     // envelope sender, "" for the null path (DSNs)
  std::string envid;      // RFC 3461 ENVID
  bool ret_hdrs = false;  // RFC 3461 RET=HDRS: a DSN carries the headers only
  bool smtputf8 = false;
  bool eight_bit = false;  // BODY=8BITMIME
  std::vector<OutboundRecipient> recipients;
};

// What happened to one recipient in a delivery attempt.
struct RecipientOutcome {
  int64_t recipient_id = 0;
  RecipientState state = RecipientState::kQueued;  // kQueued = deferred
  std::string diagnostic;                          // remote reply or local reason
  int64_t next_attempt_at = 0;                     // when deferred
  DsnPending dsn = DsnPending::kNone;              // a report now owed to the sender
  bool counts_attempt = true;  // false: not tried (its destination is known down)
  // The recipient's QueuedRecipient::retry_requests when its attempt began;
  // a deferral keeps the attempt an admin asked for since (a retry or a
  // release while the attempt was in flight). -1: not known (the deferral's
  // next_attempt_at applies).
  int64_t retry_requests = -1;
};

// One local copy of a delivered message, as a filter decided it.
struct Filing {
  int64_t account_id = 0;
  std::string mailbox;             // "" = INBOX; a name, or "\\Junk" for the special-use box
  std::vector<std::string> flags;  // system flags and keywords set at delivery (RFC 5232)
  bool create = false;             // create the mailbox when missing (RFC 5490 section 3.2)
  // This copy's own message when it differs from the delivery's (Sieve
  // editheader, RFC 5293 section 5: the edited header is what keep and
  // fileinto store), with its mime::Serialize tree; "" = the delivery's
  // content, shared with the other copies in one blob.
  std::string content;
  std::string mime;
  // Of `content` when set, as DeliveryRequest::sort_keys and ::thread_id;
  // "" = derived by the store before queueing, like the delivery's.
  std::string sort_keys;
  std::string thread_id;
};

// A filing's flags as stored: system flags (Flag bits, "\\Seen" ... matched
// without regard to case) and the space-separated keywords; unknown
// backslash flags (\\Recent, \\Foo) are dropped (RFC 5232 section 3).
struct StoredFlags {
  uint32_t flags = 0;
  std::string keywords;
};
StoredFlags SplitFilingFlags(const std::vector<std::string>& names);

struct DeliveryRequest {
  std::string return_path;           // envelope sender, "" for the null path
  std::vector<int64_t> account_ids;  // local recipients, delivered to INBOX
  std::string content;               // the full message as stored (CRLF line ends)
  std::string mime;                  // mime::Serialize of the parsed content, or ""
  int64_t received_at = 0;           // unix seconds
  // Remote recipients: queued atomically with the local delivery.
  std::optional<OutboundRequest> outbound;
  // The submitting account, counted for its sending limits (0 = none).
  int64_t submitted_by = 0;
  // Outbound recipients whose pending DSN this message is: cleared in the
  // same transaction, so a DSN is stored exactly once.
  std::vector<int64_t> dsn_for;
  // Deliver to each account's \Junk mailbox (RFC 6154) instead of INBOX:
  // mail that failed a DMARC quarantine or reject policy (RFC 7489 section
  // 6.3). INBOX when the account has no \Junk mailbox.
  bool junk = false;
  // Queue outcomes committed with this delivery (a list post's local member:
  // the copy and its "delivered" are one transaction).
  std::vector<RecipientOutcome> outcomes;
  // Where local copies go when a filter decided (Sieve, src/sieve; the spam
  // and virus scanners, src/scan). When not empty it replaces account_ids:
  // one Filing per copy, all in the same transaction (an account may have
  // several, e.g. fileinto :copy). Empty: each account's INBOX (or \Junk).
  std::vector<Filing> filings;
  // Applied to each filing's keywords (store/keyword_limits.h FitKeywords):
  // the keywords past a limit are dropped, the copy is still delivered.
  KeywordLimits keyword_limits;
  // The SORT/THREAD keys record of the content (imap/proto/sort_record.h);
  // "" = derived by the store (StoreOptions::sort_keys) before queueing.
  std::string sort_keys;
  // The JMAP threadId of the content (RFC 8621 section 3; kept with the
  // body, counted per mailbox in MailboxInfo::threads); "" = derived by the
  // store (StoreOptions::thread_id) before queueing.
  std::string thread_id;
  // The content's blob record (SHA-256, compression) built off the writer
  // thread by Store::PrepareDelivery; null = the writer builds it. Valid only
  // for `content` as it is now: set it after the content's last change.
  std::shared_ptr<const EncodedBlob> encoded;
};

struct DeliveryReceipt {
  std::string content_id;  // hex SHA-256 of the stored content
  std::vector<int64_t> message_ids;
  int64_t queue_id = 0;  // the outbound queue entry, 0 when nothing was queued
  // Indexes into DeliveryRequest::filings of copies filed into INBOX instead
  // of their mailbox (missing without `create`, or a name that cannot be
  // created): the caller reports them to the user (src/sieve).
  std::vector<size_t> fell_back;
};

struct QueuedRecipient {
  int64_t id = 0;
  int64_t message_id = 0;
  std::string address;
  std::string domain;  // lower-cased
  unsigned notify = 0;
  std::string orcpt;
  RecipientState state = RecipientState::kQueued;
  int attempts = 0;
  int64_t next_attempt_at = 0;
  std::string last_error;  // the last remote reply or local reason
  DsnPending dsn = DsnPending::kNone;
  bool delay_warned = false;
  int64_t retry_requests = 0;  // admin retries and releases asked so far (QueueAction)
};

struct QueuedMessage {
  int64_t id = 0;
  std::string sender;
  std::string envid;
  bool ret_hdrs = false;
  bool smtputf8 = false;
  bool eight_bit = false;
  int64_t created_at = 0;
  uint64_t size = 0;
  bool verp = false;         // each recipient gets its own envelope sender (lists: VERP)
  bool bulk = false;         // a list post: behind person-to-person mail
  int64_t list_post_id = 0;  // the list post it delivers, 0 = none
  std::vector<QueuedRecipient> recipients;
};

enum class QueueAction { kRetry, kHold, kRelease, kDelete };

// The size of the outbound queue (metrics), from one cheap aggregate query.
struct QueueStats {
  uint64_t messages = 0;          // messages in the queue (recipients to try or a report owed)
  uint64_t queued = 0;            // recipients waiting for a delivery attempt
  uint64_t held = 0;              // recipients held by an admin (hato queue hold)
  int64_t oldest_created_at = 0;  // when the oldest message was queued; 0 when empty
};

struct MessageMeta {
  int64_t id = 0;
  uint32_t uid = 0;
  uint64_t size = 0;
  int64_t internal_date = 0;
  uint32_t flags = 0;
  uint64_t modseq = 0;
  std::string keywords;  // space-separated IMAP keywords ($Forwarded, ...)
  // When the message was saved in this mailbox (delivery, APPEND, COPY,
  // MOVE; IMAP SAVEDATE, RFC 8514); the internal date for messages stored
  // before save dates were kept.
  int64_t saved_date = 0;
};

// The mailboxes every new account gets (RFC 6154 special-use attributes).
struct DefaultMailbox {
  const char* name;
  const char* special_use;
};
inline constexpr DefaultMailbox kDefaultMailboxes[] = {
    {"INBOX", ""},        {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},
    {"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};
inline constexpr char kHierarchySeparator = '/';

struct MailboxInfo {
  int64_t id = 0;
  std::string name;         // "/"-separated hierarchy; "INBOX" for the inbox
  std::string special_use;  // "\\Sent", ... or empty
  bool subscribed = true;
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 1;
  uint64_t highest_modseq = 0;
  uint64_t messages = 0;
  uint64_t unseen = 0;
  uint64_t size = 0;
  uint64_t deleted = 0;       // messages flagged \Deleted (RFC 9051 STATUS DELETED)
  uint64_t deleted_size = 0;  // their octets (RFC 9208 STATUS DELETED-STORAGE)
  uint64_t recent = 0;        // messages no session has seen yet (RFC 3501 \Recent)
  // Distinct bodies among the live messages (JMAP Emails, RFC 8621 section
  // 2: a body stored twice in one mailbox is one Email).
  uint64_t emails = 0;
  // Threads with a live message here, and those of them with one without
  // \Seen (RFC 8621 section 2 totalThreads, unreadThreads): a Thread is
  // named by DeliveryRequest::thread_id.
  uint64_t threads = 0;
  uint64_t unread_threads = 0;
};

struct MailboxChanges {
  uint32_t uidnext = 1;
  uint64_t highest_modseq = 0;
  std::vector<MessageMeta> changed;  // live, modseq > since, in UID order
  std::vector<uint32_t> expunged;    // UIDs expunged with modseq > since
  // ListChangesPage: more changes follow; highest_modseq is then the last
  // modseq of this page (ask again from there), not the mailbox's.
  bool more = false;
};

struct AppendRequest {
  int64_t account_id = 0;
  std::string mailbox;
  std::string content;  // as stored (CRLF line ends)
  std::string mime;     // mime::Serialize of the parsed content ("" if not parsed)
  uint32_t flags = 0;
  std::string keywords;
  int64_t internal_date = 0;
  // Enforced by Append and AppendMany (store/keyword_limits.h): past one,
  // nothing is stored and the call fails with kTooLarge.
  KeywordLimits keyword_limits;
  std::string sort_keys;  // as DeliveryRequest::sort_keys
  std::string thread_id;  // as DeliveryRequest::thread_id
};

struct AppendResult {
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
};

struct CopyResult {
  uint32_t uidvalidity = 0;           // of the destination
  std::vector<uint32_t> source_uids;  // in the order copied
  std::vector<uint32_t> dest_uids;
  // For the copy listener (Junk training, src/scan/trainer.h): the
  // destination mailbox, and per copy its new message id and the mailbox
  // it was copied from (in the order of dest_uids).
  int64_t dest_mailbox_id = 0;
  std::vector<int64_t> dest_ids;
  std::vector<int64_t> source_mailbox_ids;
};

struct MailboxSnapshot {
  int64_t mailbox_id = 0;
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 1;
  uint64_t highest_modseq = 0;
  uint32_t recent_uid = 0;            // highest UID some session has seen (\Recent)
  std::vector<MessageMeta> messages;  // live messages in UID order
};

// How the write path is doing, for admission control: sessions refuse new
// work quickly ("try later") while commits are slow instead of letting waits
// pile up.
struct StoreHealth {
  size_t pending_writes = 0;
  int64_t commit_in_flight_ms = 0;  // age of the batch being committed; 0 when idle
  int64_t last_commit_ms = 0;       // duration of the last batch, if it ended in the last 2 s
};

// Ends Verify's line for a mailbox whose counters disagree with its
// messages ("mailbox ID (NAME) " + this): Store::RecountMailboxes repairs it.
inline constexpr std::string_view kCounterProblem = "has counters that disagree with its messages";

struct VerifyReport {
  uint64_t blobs_checked = 0;
  std::vector<std::string> problems;  // empty when the store verified clean
  std::vector<BlobRef> damaged;       // bodies that are missing or fail their checksum
};

// ---- Sieve (src/sieve; RFC 5228 scripts, RFC 5804 ManageSieve) ----

struct SieveScriptInfo {
  std::string name;
  bool active = false;  // at most one script of an account is active
  uint64_t size = 0;
  int64_t updated_at = 0;
  // Stable across renames and never reused in the account (the JMAP
  // SieveScript id, RFC 9661 section 2; RFC 8620 section 1.2).
  int64_t id = 0;
  // The account's script change counter (SieveScriptChanges::state) when the
  // script was created, and when it last changed (text, name or activation).
  uint64_t created_seq = 0;
  uint64_t changed_seq = 0;
};

// A script destroyed (Store::DeleteSieveScript), kept for JMAP
// SieveScript/changes (RFC 8620 section 5.2).
struct SieveScriptGone {
  int64_t id = 0;
  std::string name;
  uint64_t created_seq = 0;
  uint64_t gone_seq = 0;
};

// An account's scripts and what was destroyed since a state, read together
// (Store::SieveScriptsSince).
struct SieveScriptChanges {
  // The account's script change counter: every Put, SetActive that changes
  // something, Rename and Delete adds one (0: never a script).
  uint64_t state = 0;
  std::vector<SieveScriptInfo> scripts;    // all of them, by name
  std::vector<SieveScriptGone> destroyed;  // gone_seq > since, oldest first
  // Tombstones at or below this counter were forgotten (at most
  // kMaxSieveTombstones are kept): a `since` below it cannot be answered.
  uint64_t forgotten = 0;
};

// Destroyed scripts remembered per account for SieveScript/changes.
inline constexpr size_t kMaxSieveTombstones = 256;

// A script's text as delivery reads it (Store::DeliverySieveScripts).
struct SieveScriptText {
  std::string name;
  std::string content;
  bool active = false;
};

// The last failed run of an account's active script, shown to its user
// (hato sieve list, ManageSieve); empty error when the last run was clean.
struct SieveStatus {
  std::string error;
  int64_t at = 0;
};

// What a once-per-period memory is for (RFC 5230 vacation replies per
// sender, RFC 7352 duplicate tracking).
enum class SieveMemo : int { kVacation = 1, kDuplicate = 2 };

// ---- Mailing lists (issue 14; src/lists, docs/architecture.md "the life of a broadcast") ----

enum class ListMode : int { kDiscussion = 0, kAnnounce = 1 };

// Member roles, as bits: a member may receive posts, own the list, moderate it.
enum ListRole : uint32_t { kListReceives = 1, kListOwner = 2, kListModerator = 4 };

struct ListInfo {
  int64_t id = 0;
  std::string address;  // canonical, like Account::address
  ListMode mode = ListMode::kDiscussion;
  std::string name;                 // display name ("" = the local part)
  std::string confirm_text;         // per-list confirmation text ("" = the built-in one)
  std::string welcome_text;         // per-list welcome text ("" = the built-in one)
  uint64_t max_message_size = 0;    // 0 = the [lists] default
  uint32_t max_posts_per_hour = 0;  // 0 = the [lists] default
  uint32_t bounce_threshold = 0;    // 0 = the [lists] default
  std::string dmarc_rewrite;        // "auto", "always", "never"; "" = the [lists] default
  int64_t created_at = 0;
  uint64_t members = 0;  // rows in list_members (any role)
  // The system account whose INBOX is the list's archive (issue 14 item 7):
  // every post is copied there in the fan-out's transaction; members read it
  // over IMAP as the shared mailbox kListArchivePrefix + address (RFC 2342).
  // 0 until made (a list from before the archive gets one at its next post).
  int64_t archive_account_id = 0;
};

// The shared namespace of list archives (RFC 2342 section 5, "other users'
// and shared"): "#lists/LIST@DOMAIN" is the archive of LIST@DOMAIN.
inline constexpr std::string_view kListArchivePrefix = "#lists/";
// An archive account's address: LIST@DOMAIN + this + the list's id (not a
// mailbox an SMTP client can name; no password verifies).
inline constexpr std::string_view kListArchiveSuffix = "#archive-";
// An archive account's password hash: no password verifies it
// (auth::VerifyPassword wants "$..."); also how snapshots leave them out.
inline constexpr std::string_view kListArchivePasswordHash = "!list-archive";

struct ListMember {
  std::string address;  // canonical
  std::string name;
  uint32_t roles = kListReceives;
  bool delivery = true;   // the member's own setting: receive posts
  bool disabled = false;  // by the bounce score (re-enabled by a later success)
  uint32_t bounce_score = 0;
  std::string last_bounce;
  int64_t joined_at = 0;
};

// The fields of a list's settings to change (nullopt = unchanged).
struct ListSettings {
  std::optional<ListMode> mode;
  std::optional<std::string> name, confirm_text, welcome_text, dmarc_rewrite;
  std::optional<uint64_t> max_message_size;
  std::optional<uint32_t> max_posts_per_hour, bounce_threshold;
};

// What adding members did: added, and those already there (left unchanged
// unless `update` was asked).
struct ListMemberChange {
  uint64_t added = 0;
  uint64_t updated = 0;
  std::vector<std::string> existing;
};

enum class ListTokenKind : int { kJoin = 1, kLeave = 2, kModerate = 3 };

// A single-use, expiring token (confirmation of a join or leave, moderation
// of a held post). The token string is the key.
struct ListToken {
  std::string token;
  int64_t list_id = 0;
  ListTokenKind kind = ListTokenKind::kJoin;
  std::string address;  // who joins or leaves; the moderator for kModerate
  std::string source;   // the client address that asked (join floods per source)
  int64_t held_id = 0;  // kModerate: the held post
  int64_t created_at = 0;
  int64_t expires_at = 0;
};

struct HeldPost {
  int64_t id = 0;
  int64_t list_id = 0;
  std::string sender;
  std::string reason;
  int64_t created_at = 0;
  uint64_t size = 0;
};

// A post to fan out: one stored body and one queue entry whose recipients are
// the list's members that receive posts (delivery on, not disabled), in one
// transaction whatever their number.
struct ListPostRequest {
  int64_t list_id = 0;
  std::string content;         // as sent (CRLF), without Return-Path
  std::string bounce_address;  // LIST-bounces@DOMAIN: the VERP base
  std::string sender;          // the poster, for the report
  std::string subject;
  bool smtputf8 = false;
  bool eight_bit = false;
  int64_t held_id = 0;  // a held post being approved: removed in the same transaction
  std::string mime;     // mime::Serialize of the content (the archive copy's FETCH), or ""
};

struct ListPostReceipt {
  int64_t post_id = 0;
  int64_t queue_id = 0;
  uint64_t recipients = 0;
};

struct ListPostInfo {
  int64_t id = 0;
  int64_t queue_id = 0;
  std::string sender;
  std::string subject;
  uint64_t recipients = 0;
  int64_t created_at = 0;
};

// One line of a post's delivery report: recipients of one domain in one
// state with one reason (the last reply or local reason).
struct ListReportLine {
  std::string domain;
  RecipientState state = RecipientState::kQueued;
  bool attempted = false;  // kQueued: tried at least once (deferred) or not yet
  std::string reason;
  uint64_t count = 0;
  std::vector<std::string> addresses;  // failed and deferred ones, at most kReportAddresses
};
inline constexpr size_t kReportAddresses = 1000;

struct ListReport {
  ListPostInfo post;
  std::vector<ListReportLine> lines;
};

// ---- Backup, restore and undelete (issue 6) ----

// One message to put back into a live mailbox (hato restore --merge, import,
// migrate). It is skipped when the mailbox already holds a live message with
// the same body (SHA-256, which covers the Message-ID header) and internal date.
struct RestoreRequest {
  int64_t account_id = 0;
  std::string mailbox;      // created (with special_use) when missing
  std::string special_use;  // for a mailbox that has to be created
  std::string content;      // as stored (CRLF line ends)
  std::string mime;         // mime::Serialize of the parsed content, or ""
  uint32_t flags = 0;
  std::string keywords;
  std::string return_path;
  int64_t internal_date = 0;
  std::string sort_keys;  // as DeliveryRequest::sort_keys
  std::string thread_id;  // as DeliveryRequest::thread_id
};

struct RestoreResult {
  bool added = false;  // false: an identical message was already there
  uint32_t uid = 0;    // the new UID, or the existing message's
};

struct SnapshotAccount {
  int64_t id = 0;
  std::string address;
  std::string password_hash;
  int64_t removed_at = 0;    // 0: live
  std::string scram_sha256;  // "" before schema 9 or when the account has none
};

struct SnapshotMailbox {
  std::string name;
  std::string special_use;
  bool subscribed = true;
};

struct SnapshotMessage {
  std::string mailbox;
  std::string special_use;  // of the mailbox
  uint32_t uid = 0;
  BlobRef body;  // where the body was in the store the snapshot was taken of
  int64_t internal_date = 0;
  uint32_t flags = 0;
  std::string keywords;
  std::string return_path;
  int64_t expunged_at = 0;  // 0: live
};

// A Sieve script in a snapshot (restore --merge).
struct SnapshotSieveScript {
  std::string name;
  std::string content;
  bool active = false;
};

// A mailing list in a snapshot, with its members (restore --merge).
struct SnapshotList {
  ListInfo info;
  std::vector<ListMember> members;
};

// A consistent, read-only copy of the metadata (Store::SnapshotMetadata), as
// kept in a backup set. Single-threaded.
class MetadataSnapshot {
 public:
  virtual ~MetadataSnapshot() = default;
  virtual int schema_version() const = 0;
  virtual Result<std::vector<std::string>> Domains() = 0;
  virtual Result<std::vector<SnapshotAccount>> Accounts() = 0;  // live and removed
  virtual Result<std::vector<SnapshotMailbox>> Mailboxes(int64_t account_id) = 0;
  // The account's aliases (none in a snapshot older than schema 8).
  virtual Result<std::vector<std::string>> Aliases(int64_t account_id) = 0;
  // The account's Sieve scripts by name (none before the Sieve schema).
  virtual Result<std::vector<SnapshotSieveScript>> SieveScripts(int64_t account_id) = 0;
  // The live mailing lists and their members (none before the lists schema).
  virtual Result<std::vector<SnapshotList>> Lists() = 0;
  // The account's messages, mailbox by mailbox in UID order; the expunged
  // ones (retention area) only when asked.
  virtual Status ForEachMessage(int64_t account_id, bool include_expunged,
                                const std::function<Status(const SnapshotMessage&)>& fn) = 0;
  // Every stored body, in storage order.
  virtual Status ForEachBody(const std::function<Status(const BlobRef&)>& fn) = 0;
  // SQLite's integrity check plus every reference (message -> body).
  virtual Result<std::vector<std::string>> CheckIntegrity() = 0;
};

Result<std::unique_ptr<MetadataSnapshot>> OpenMetadataSnapshot(const std::string& path);

// Gets a body by its SHA-256 (raw 32 bytes); the result must be verified content.
using BodySource = std::function<Result<std::string>(const BlobRef& ref)>;

struct RebuildOptions {
  std::vector<std::string> accounts;  // addresses to keep; empty: all
  bool without_messages = false;      // domains, accounts and mailboxes only
  io::FileSystem* fs = nullptr;
  bool compress = true;
  std::function<void(uint64_t bodies, uint64_t bytes)> progress;
};

// Builds the store of an empty data dir from a snapshot: copies the metadata
// (migrating it to this version), keeps the chosen accounts, and writes every
// body they reference, got from `source`, into new segments. The server must
// not be running on data_dir.
Status RebuildStoreFromSnapshot(const std::string& snapshot_path, const std::string& data_dir,
                                const RebuildOptions& options, const BodySource& source);

// One stored message row with its body's hash, for JMAP (src/jmap): an
// Email is identified by its body (the same content in several mailboxes
// is one Email with several mailboxIds), which keeps its id stable across
// moves, restarts and backup/restore.
struct EmailRow {
  int64_t message_id = 0;
  int64_t mailbox_id = 0;
  uint32_t uid = 0;
  uint64_t size = 0;
  int64_t internal_date = 0;
  uint32_t flags = 0;
  std::string keywords;  // space-separated
  uint64_t modseq = 0;
  std::string sha256;  // raw 32 bytes of the body
  bool expunged = false;
};

// One page of a mailbox's Emails by receivedAt (Store::QueryMailboxEmails).
struct EmailPage {
  std::vector<EmailRow> rows;  // at most `limit`, in the requested order
  uint64_t total = 0;          // distinct Emails in the mailbox (when asked for)
};

// An access token of an account (http/auth.h): bearer tokens for API
// clients and the web UI's session cookies. Only the token's hash is stored.
struct AccessToken {
  int64_t id = 0;
  int64_t account_id = 0;
  std::string address;  // of the account
  std::string kind;     // "api" or "session"
  std::string label;    // what the user called it ("" for sessions)
  int64_t created_at = 0;
  int64_t expires_at = 0;    // unix seconds; 0 = never
  int64_t last_used_at = 0;  // unix seconds of the last login with it (app passwords); 0 = never
};

class Store {
 public:
  virtual ~Store() = default;

  // Domains and accounts (admin).
  virtual Status AddDomain(std::string_view domain) = 0;
  virtual Status RemoveDomain(std::string_view domain) = 0;  // only when it has no live accounts
  virtual Result<std::vector<std::string>> ListDomains() = 0;
  virtual Result<bool> IsLocalDomain(std::string_view domain) = 0;
  // `scram_sha256`: the SCRAM-SHA-256 verifier of the same password
  // (auth::NewScramVerifier), or "": SCRAM logins then fail for the account.
  virtual Status AddAccount(std::string_view address, std::string_view password_hash,
                            std::string_view scram_sha256) = 0;
  virtual Status SetPassword(std::string_view address, std::string_view password_hash,
                             std::string_view scram_sha256) = 0;
  Status AddAccount(std::string_view address, std::string_view password_hash) {
    return AddAccount(address, password_hash, {});
  }
  Status SetPassword(std::string_view address, std::string_view password_hash) {
    return SetPassword(address, password_hash, {});
  }
  // Soft removal: the account stops receiving and logging in; its mail is kept
  // for the retention period and then purged.
  virtual Status RemoveAccount(std::string_view address) = 0;
  virtual Result<std::vector<AccountSummary>> ListAccounts() = 0;
  // The live account with this address (logins); aliases are not accounts.
  virtual Result<Account> FindAccount(std::string_view address) = 0;
  // Where mail for an address goes (RCPT, MAIL FROM ownership, DSN return):
  // the live account with that address, or the live account one of whose
  // aliases it is. kNotFound otherwise (a removed account's aliases included).
  virtual Result<Account> ResolveRecipient(std::string_view address) = 0;
  // The oldest live account (the administrator, created first after `hato
  // init`): postmaster@ and abuse@ every local domain reach it unless
  // `server.postmaster` names another address (RFC 5321 4.5.1, RFC 2142).
  // kNotFound when there is no account. The default is for backends without
  // a cheaper query.
  virtual Result<Account> FirstAccount() {
    auto list = ListAccounts();
    if (!list) return list.error();
    if (list->empty()) return Err(ErrorKind::kNotFound, "no account");
    return FindAccount(list->front().address);
  }
  // Aliases (issue 5). An alias's domain must be local, and it may equal no
  // live account's address nor another alias (kExists); adding an account
  // with an alias's address fails the same way. Removing an account leaves
  // its aliases dormant: they resolve again if it is restored, and go when it
  // is purged or when they are removed.
  virtual Status AddAlias(std::string_view alias, std::string_view account) = 0;
  virtual Status RemoveAlias(std::string_view alias) = 0;
  // Every alias ordered by address, or those of one account ("" = all).
  virtual Result<std::vector<AliasInfo>> ListAliases(std::string_view account) = 0;
  // Storage quota (RFC 9208): none removes the limit. Appends and copies
  // past it fail with kTooLarge; SMTP refuses delivery temporarily.
  virtual Status SetQuota(std::string_view address, std::optional<uint64_t> limit_bytes) = 0;
  virtual Result<QuotaUsage> GetQuota(int64_t account_id) = 0;

  // Mail.
  virtual void Deliver(DeliveryRequest request, Done<DeliveryReceipt> done) = 0;
  // Does the CPU work of a Deliver that needs no database (the content's
  // SORT keys, thread id, SHA-256 and compressed record) on the calling
  // thread, so the single writer thread only writes (issue 17). Optional: a
  // request not prepared is prepared by Deliver or its writer. Costs a pass
  // of SHA-256 and zstd over the content: call it where blocking that long is
  // fine (not on an event loop for a large message). Default: nothing.
  virtual void PrepareDelivery(DeliveryRequest& request) const { (void)request; }
  virtual Result<MailboxSnapshot> ListMessages(int64_t account_id, std::string_view mailbox) = 0;
  // Returns the verified content; kCorrupt when it fails its checksum. An
  // expunged message can still be read until it is purged, so a session that
  // still references it (RFC 3501 section 7.4.1) gets its data.
  virtual Result<std::string> ReadMessage(int64_t account_id, int64_t message_id) = 0;
  // Changes the flags of messages; each message whose flags change gets a new
  // modification sequence (RFC 7162). Messages not in the account are ignored.
  virtual void SetFlags(int64_t account_id, std::vector<int64_t> message_ids, FlagChange change,
                        Done<FlagResult> done) = 0;
  // Moves messages to the retention area (recoverable until purged).
  virtual void Expunge(int64_t account_id, std::vector<int64_t> message_ids, Done<void> done) = 0;

  // Mailboxes (IMAP). Names use kHierarchySeparator; INBOX is case-insensitive.
  virtual Result<std::vector<MailboxInfo>> ListMailboxes(int64_t account_id) = 0;
  virtual void CreateMailbox(int64_t account_id, std::string name, std::string special_use,
                             Done<void> done) = 0;
  // Deleting moves the mailbox's messages to the retention area.
  virtual void DeleteMailbox(int64_t account_id, std::string name, Done<void> done) = 0;
  // Renames a mailbox and its children; renaming INBOX moves its messages
  // into a new mailbox and leaves INBOX empty (RFC 3501 section 6.3.5).
  virtual void RenameMailbox(int64_t account_id, std::string from, std::string to,
                             Done<void> done) = 0;
  // Subscriptions are names (RFC 3501 section 6.3.6): CREATE does not
  // subscribe (the default folders are subscribed when the account is made),
  // DELETE keeps the name subscribed. Subscribing needs a live mailbox;
  // unsubscribing a name that is not subscribed succeeds.
  virtual void SetSubscribed(int64_t account_id, std::string name, bool subscribed,
                             Done<void> done) = 0;
  // Subscribed names without a live mailbox, sorted (LIST (SUBSCRIBED)
  // \NonExistent, RFC 5258 section 3.1; LSUB).
  virtual Result<std::vector<std::string>> ListOrphanSubscriptions(int64_t account_id) = 0;
  virtual void Append(AppendRequest request, Done<AppendResult> done) = 0;
  // Appends several messages in one transaction: all of them or none (IMAP
  // MULTIAPPEND, RFC 3502 section 3). Results in the order of the requests.
  virtual void AppendMany(std::vector<AppendRequest> requests,
                          Done<std::vector<AppendResult>> done) = 0;
  // Copies (or moves) messages, in the given order, to another mailbox of the
  // account. A copy that would exceed the account's quota fails with kTooLarge.
  virtual void CopyMessages(int64_t account_id, std::vector<int64_t> message_ids,
                            std::string to_mailbox, bool move, Done<CopyResult> done) = 0;
  // What changed in a mailbox since a modseq (index on (mailbox, modseq)):
  // new and changed live messages, and the UIDs expunged. Sessions use it to
  // stay in step without reloading the mailbox.
  virtual Result<MailboxChanges> ListChanges(int64_t mailbox_id, uint64_t since) = 0;
  // One page of ListChanges (issue 11 item 2: a burst of a million changes
  // is read in bounded slices, not at once): the changes with the lowest
  // modseqs, until about `max_bytes` of metadata (keywords included) or
  // `max_rows` rows, never splitting one modseq. `more` says whether to ask
  // again from the page's highest_modseq. The default reads everything.
  virtual Result<MailboxChanges> ListChangesPage(int64_t mailbox_id, uint64_t since,
                                                 size_t max_rows, size_t max_bytes) {
    (void)max_rows;
    (void)max_bytes;
    return ListChanges(mailbox_id, since);
  }
  // The messages of a mailbox whose UIDs fall in the given [first, last]
  // ranges, in UID order, including expunged ones not yet purged (a session
  // may still reference them: RFC 3501 section 7.4.1).
  virtual Result<std::vector<MessageMeta>> ListMessagesByUid(
      int64_t mailbox_id, const std::vector<std::pair<uint32_t, uint32_t>>& ranges) = 0;
  // The UIDs expunged from a mailbox with a modseq above `since` (QRESYNC VANISHED).
  virtual Result<std::vector<uint32_t>> ListVanished(int64_t mailbox_id, uint64_t since) = 0;
  // \Recent (RFC 3501 section 2.3.2): marks every message of the mailbox up
  // to `up_to_uid` as seen by a session and returns the previous mark; the
  // caller's session is the one that sees messages above it as recent.
  virtual void ClaimRecent(int64_t mailbox_id, uint32_t up_to_uid, Done<uint32_t> done) = 0;
  // Full-text search (SEARCH BODY/TEXT) in a mailbox's live messages:
  // case-insensitive substring of the decoded body (and, with `with_header`,
  // of the decoded header), through the full-text index (search/text_index.h).
  // Messages the index has not read yet come back as `unindexed`: the caller
  // scans them, so the answer is always complete.
  virtual Result<TextMatches> SearchText(int64_t mailbox_id, std::string_view needle,
                                         bool with_header) = 0;
  // The stored MIME tree of a message ("" when none was stored).
  virtual Result<std::string> ReadMimeTree(int64_t account_id, int64_t message_id) = 0;
  // The SORT/THREAD key records (DeliveryRequest::sort_keys) of the live
  // messages of a mailbox, as (message id, record), in one read; messages
  // whose body has no record (stored before records were kept) are left
  // out. IMAP SORT on a cold server reads these instead of every tree.
  virtual Result<std::vector<std::pair<int64_t, std::string>>> ReadSortKeys(int64_t account_id,
                                                                            int64_t mailbox_id) {
    (void)account_id, (void)mailbox_id;
    return std::vector<std::pair<int64_t, std::string>>{};
  }
  // Stores the SORT/THREAD key record (StoreOptions::sort_keys) of up to
  // `max_bodies` bodies stored before records were kept, and returns how
  // many it filled: 0 when none is left (or the store has no
  // StoreOptions::sort_keys). `hato serve` calls it in the background after
  // start until it returns 0. A body whose record cannot be made (no tree,
  // too large) gets an empty one, so it is not read again.
  virtual Result<size_t> BackfillSortKeys(size_t max_bodies) {
    (void)max_bodies;
    return size_t{0};
  }
  // Called after each commit with the ids of the mailboxes it changed (any
  // thread). Sessions use it to push IDLE updates; one listener.
  virtual void SetChangeListener(std::function<void(const std::vector<int64_t>&)> listener) = 0;
  // Called after each committed CopyMessages (IMAP COPY/MOVE, JMAP
  // Email/set mailboxIds) with its account and result, on the writer thread:
  // it must only hand off. Set before serving; the default keeps none.
  using CopyListener = std::function<void(int64_t account_id, const CopyResult& result)>;
  virtual void SetCopyListener(CopyListener /*listener*/) {}
  // On a store shared by nodes (PostgreSQL), when another node committed a
  // pushed change (JMAP EventSource, IMAP NOTIFY) that is not a message: an
  // account's records (PutJmapDocument: EmailSubmission, Identity, METADATA),
  // mailbox names or subscriptions (account_id > 0), or outbound outcomes
  // (0), as server::ChangeFeed::PublishRecords. Any thread: only hand off.
  // This node's own changes are published by their callers, not here.
  // The default (one node) calls nothing.
  using RecordListener = std::function<void(int64_t account_id)>;
  virtual void SetRecordListener(RecordListener /*listener*/) {}

  virtual StoreHealth Health() = 0;

  // Outbound queue. Reads are synchronous (call them off the event loop).
  // Queued recipients due at or before `now` (state kQueued), grouped by
  // message, earliest first, at most `limit` recipients.
  virtual Result<std::vector<QueuedMessage>> ListDueOutbound(int64_t now, size_t limit) = 0;
  // Recipients that owe the sender a DSN, grouped by message.
  virtual Result<std::vector<QueuedMessage>> ListPendingDsn(size_t limit) = 0;
  // Every queued message with all its recipients (admin), oldest first.
  virtual Result<std::vector<QueuedMessage>> ListQueue() = 0;
  virtual Result<QueuedMessage> GetQueued(int64_t message_id) = 0;
  // The verified content of a queued message.
  virtual Result<std::string> ReadQueuedContent(int64_t message_id) = 0;
  // Records attempt outcomes; a message whose recipients are all final and
  // owe no DSN leaves the queue (its body reference is dropped).
  virtual void RecordOutcomes(std::vector<RecipientOutcome> outcomes, Done<void> done) = 0;
  // Admin actions (synchronous): retry now, hold, release, delete (no DSN).
  virtual Status ApplyQueueAction(int64_t message_id, QueueAction action) = 0;
  // How many messages and recipients are queued, and since when (metrics).
  virtual Result<QueueStats> GetQueueStats() = 0;
  // Messages submitted by an account since `since` (unix seconds).
  virtual Result<uint64_t> CountSubmissions(int64_t account_id, int64_t since) = 0;
  // The recipients of a message that has left the queue with every
  // recipient final (delivered or failed, with the last reply in
  // last_error), kept until PurgeExpired passes them: what JMAP's
  // EmailSubmission deliveryStatus reports (RFC 8621 section 7). Empty when
  // the message is unknown, still queued, or was deleted by an admin. The
  // default serves backends that keep none.
  virtual Result<std::vector<QueuedRecipient>> ListFinishedRecipients(int64_t queue_id) {
    (void)queue_id;
    return std::vector<QueuedRecipient>{};
  }

  // Mailing lists (issue 14). Addresses are canonical. A list's address is
  // in a local domain and is no account's or alias's address.
  virtual Status CreateList(std::string_view /*address*/, ListMode /*mode*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // Removes the list: its members and tokens go, its queued deliveries are
  // cancelled (failed, "list removed": they stay in the reports).
  virtual Status RemoveList(std::string_view /*address*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // (A backend without lists has none: lookups find nothing, so mail to an
  // unknown address is refused as usual.)
  virtual Result<std::vector<ListInfo>> ListLists() { return std::vector<ListInfo>{}; }
  // The live lists `address` is a member of, any role (the archives it may read).
  virtual Result<std::vector<ListInfo>> ListsOfMember(std::string_view /*address*/) {
    return std::vector<ListInfo>{};
  }
  // Per-member \Seen in a list archive (issue 14): the UIDs of the archive
  // mailbox `mailbox_id` (an archive account's INBOX) that the member account
  // `account_id` has seen. The member's own rows: the archive's shared flags
  // never change, another member's view is untouched. Ascending.
  virtual Result<std::vector<uint32_t>> ArchiveSeen(int64_t /*account_id*/,
                                                    int64_t /*mailbox_id*/) {
    return std::vector<uint32_t>{};
  }
  // Marks `uids` seen (or not) for the member, in one transaction.
  virtual Status SetArchiveSeen(int64_t /*account_id*/, int64_t /*mailbox_id*/,
                                std::vector<uint32_t> /*uids*/, bool /*seen*/) {
    return Err(ErrorKind::kInvalid, "archive \\Seen is not supported by this store backend");
  }
  virtual Result<ListInfo> FindList(std::string_view address) {
    return Err(ErrorKind::kNotFound, "no such list: " + std::string(address));
  }
  virtual Status UpdateList(std::string_view /*address*/, const ListSettings& /*settings*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // Adds members, all in one transaction (nothing half-done). Existing ones
  // are reported, and updated (name, roles) when `update`.
  virtual Result<ListMemberChange> AddListMembers(int64_t /*list_id*/,
                                                  std::vector<ListMember> /*members*/,
                                                  bool /*update*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  virtual Status RemoveListMember(int64_t /*list_id*/, std::string_view /*address*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  virtual Result<std::vector<ListMember>> ListListMembers(int64_t /*list_id*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  virtual Result<ListMember> FindListMember(int64_t /*list_id*/, std::string_view /*address*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // Sets one member's delivery and/or enables it again (clears the bounce score).
  virtual Status SetListMemberDelivery(int64_t /*list_id*/, std::string_view /*address*/,
                                       std::optional<bool> /*delivery*/, bool /*reenable*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // A bounce for a member (a DSN to its VERP address): the score grows by
  // one; at `threshold` the member is disabled. Returns the member after.
  virtual Result<ListMember> RecordListBounce(int64_t /*list_id*/, std::string_view /*address*/,
                                              std::string_view /*reason*/, uint32_t /*threshold*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  virtual Status CreateListToken(const ListToken& /*token*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // Uses a token once: kNotFound when unknown, used or expired at `now`.
  virtual Result<ListToken> ConsumeListToken(std::string_view /*token*/, int64_t /*now*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // Tokens of one kind created for an address (or from a source) since `since` (join floods).
  virtual Result<uint64_t> CountListTokens(int64_t /*list_id*/, std::string_view /*address*/,
                                           std::string_view /*source*/, int64_t /*since*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  virtual Result<int64_t> HoldListPost(int64_t /*list_id*/, std::string_view /*content*/,
                                       std::string_view /*sender*/, std::string_view /*reason*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  virtual Result<std::vector<HeldPost>> ListHeldPosts(int64_t /*list_id*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  virtual Result<std::string> ReadHeldPost(int64_t /*held_id*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  virtual Status DropHeldPost(int64_t /*held_id*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // The fan-out commit (see ListPostRequest).
  virtual void PostToList(ListPostRequest /*request*/, Done<ListPostReceipt> done) {
    done(Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet"));
  }
  virtual Result<std::vector<ListPostInfo>> ListPosts(int64_t /*list_id*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  virtual Result<uint64_t> CountListPostsSince(int64_t /*list_id*/, int64_t /*since*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // The delivery report of a post (0 = the latest).
  virtual Result<ListReport> ListPostReport(int64_t /*list_id*/, int64_t /*post_id*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // Failed recipients of a post learned from a later DSN (RFC 3464) to the
  // member's VERP address: a delivered recipient becomes failed with `reason`.
  virtual Status RecordListPostFailure(int64_t /*post_id*/, std::string_view /*address*/,
                                       std::string_view /*reason*/) {
    return Err(ErrorKind::kInvalid, "mailing lists are not supported by this store backend yet");
  }
  // Marks queued recipients as handed to a connection (list posts: see
  // ResolveInFlight). Asynchronous, group-committed. Only recipients still
  // queued (state 0: not cancelled, held or finished since the caller read
  // them) are marked; `done` gets their ids, the ones that may be sent.
  virtual void MarkInFlight(std::vector<int64_t> recipient_ids, Done<std::vector<int64_t>> done) {
    done(std::move(recipient_ids));
  }
  // At start: list-post recipients that were in flight when the server
  // stopped are failed ("outcome unknown"), never sent twice. Returns how many.
  virtual Result<uint64_t> ResolveInFlight() { return uint64_t{0}; }

  // Maintenance.
  // Destroys expunged messages and removed accounts older than `cutoff` (unix seconds).
  virtual Result<uint64_t> PurgeExpired(int64_t cutoff) = 0;
  // Brings the full-text index up to date now (`hato reindex`; a serving
  // store does it in the background): reads each body not indexed yet, asks
  // `extract` for its text (given the content and the stored MIME tree) and
  // indexes it. Returns how many bodies it read.
  using TextExtractor = std::function<IndexText(std::string_view content, std::string_view mime)>;
  virtual Result<uint64_t> IndexMissingText(const TextExtractor& extract) = 0;
  // Reads every referenced body and checks it against its checksum, and
  // checks every reference (message -> body, reference counts).
  virtual Result<VerifyReport> Verify() = 0;
  // Rewrites every mailbox's counters (MailboxInfo counts, the Thread
  // counts) from a recount of its live messages, in one transaction that
  // holds off writers; returns how many mailboxes disagreed before (the
  // ones Verify reports). `hato fsck --repair`.
  virtual Result<uint64_t> RecountMailboxes() {
    return Err(ErrorKind::kInternal, "this store keeps no mailbox counters");
  }

  // Backup and restore (issue 6).
  // Writes a consistent copy of the metadata to `path` (one read transaction,
  // writers keep going). Every body it references is durable and stays readable.
  virtual Status SnapshotMetadata(const std::string& path) = 0;
  // A backup's snapshot (backup/backup.h CreateBackup): SnapshotMetadata,
  // then `each` once per body the snapshot references, with `read` giving
  // its content (verified against its SHA-256) as of the same instant as the
  // metadata, so a body freed after the snapshot (its message purged, its
  // queue entry sent) is still there. The embedded store reads it after the
  // snapshot (segments are append-only); PostgreSQL inside the snapshot's
  // REPEATABLE READ transaction, one database (shard) at a time.
  using BackupBody =
      std::function<Status(const BlobRef& ref, const std::function<Result<std::string>()>& read)>;
  virtual Status SnapshotForBackup(const std::string& path, const BackupBody& each);
  // Reads and verifies a body named by a snapshot.
  virtual Result<std::string> ReadBlob(const BlobRef& ref) = 0;
  // Puts a message back into a live mailbox (see RestoreRequest).
  virtual void RestoreMessage(RestoreRequest request, Done<RestoreResult> done) = 0;
  // Writes a good copy of a damaged body (same SHA-256) and points every
  // reference at it.
  virtual Status RepairBlob(std::string_view content) = 0;
  // Brings expunged messages still in retention back into their mailboxes
  // (with new UIDs), those expunged at or after `since`; mailbox "" = all.
  // Messages of deleted mailboxes come back to a mailbox of the same name.
  virtual Result<uint64_t> Undelete(int64_t account_id, std::string_view mailbox,
                                    int64_t since) = 0;
  // JMAP (src/jmap): the account's live message rows (mailbox_id 0: of
  // every mailbox); or, with since_modseq > 0, the rows of one mailbox
  // changed after since_modseq, expunged ones included (Email/changes).
  virtual Result<std::vector<EmailRow>> ListEmailRows(int64_t account_id, int64_t mailbox_id,
                                                      uint64_t since_modseq) {
    (void)account_id, (void)mailbox_id, (void)since_modseq;
    return Err(ErrorKind::kInternal, "JMAP is not supported by this store");
  }

  // JMAP's indexed reads (issue 12: no request lists every row). The
  // defaults serve backends without them: the caller then falls back to
  // ListEmailRows.
  //
  // Email/query's common case (RFC 8621 section 4.4: inMailbox, sort
  // receivedAt): the live rows of one mailbox of the account ordered by
  // (internal date, message id), ascending or descending, one row per body
  // (a body stored twice in the mailbox counts once: its first row in this
  // order), `position` of them skipped, at most `limit`. `total` (the
  // number of distinct bodies) only when `count`. Served by an index on
  // (mailbox, internal date) of the live rows: a page costs its position
  // plus its length, not the mailbox's size. An unknown or deleted mailbox,
  // or one of another account, is an empty page.
  virtual Result<EmailPage> QueryMailboxEmails(int64_t account_id, int64_t mailbox_id,
                                               bool ascending, uint64_t position, uint64_t limit,
                                               bool count) {
    (void)account_id, (void)mailbox_id, (void)ascending, (void)position, (void)limit, (void)count;
    return Err(ErrorKind::kInternal, "indexed Email/query is not supported by this store");
  }
  // Email/get by ids: the live rows (of live mailboxes of the account) whose
  // body's SHA-256 begins with one of `sha_prefixes` (raw bytes, each 1 to
  // 32 of them), by message id. Through the unique index on the body hash.
  virtual Result<std::vector<EmailRow>> FindEmailRows(
      int64_t account_id, const std::vector<std::string>& sha_prefixes) {
    (void)account_id, (void)sha_prefixes;
    return Err(ErrorKind::kInternal, "indexed Email/get is not supported by this store");
  }
  // The account's live mailboxes as ListMailboxes gives them but without
  // the counts (messages, unseen, size, ... are 0): what a JMAP state
  // string needs (jmap/state.h), read from the mailbox rows alone.
  virtual Result<std::vector<MailboxInfo>> ListMailboxHeads(int64_t account_id) {
    return ListMailboxes(account_id);
  }

  // JMAP's per-account records that are not mail (issue 12): a JSON
  // document per (account, kind): "identities" (Identity/set choices) and
  // "submissions" (EmailSubmission records). In the store, so they are in
  // backups and shared by the nodes of one PostgreSQL database. Get:
  // kNotFound when none was put. Put creates or replaces, synchronously.
  // Purging the account drops them.
  virtual Result<std::string> GetJmapDocument(int64_t account_id, std::string_view kind) {
    (void)account_id, (void)kind;
    return Err(ErrorKind::kInternal, "JMAP records are not supported by this store");
  }
  virtual Status PutJmapDocument(int64_t account_id, std::string_view kind, std::string_view body) {
    (void)account_id, (void)kind, (void)body;
    return Err(ErrorKind::kInternal, "JMAP records are not supported by this store");
  }

  // Access tokens (http/auth.h). The default bodies serve backends that do
  // not have them yet: HTTP then knows no tokens.
  // Stores a token's hash; expired tokens of the account are dropped in the
  // same transaction. kTooLarge past `max_per_account` live tokens.
  virtual Result<int64_t> AddToken(int64_t account_id, std::string_view hash, std::string_view kind,
                                   std::string_view label, int64_t expires_at,
                                   size_t max_per_account) {
    (void)account_id, (void)hash, (void)kind, (void)label, (void)expires_at, (void)max_per_account;
    return Err(ErrorKind::kInternal, "access tokens are not supported by this store");
  }
  // The live token with this hash of a live account; kNotFound when unknown,
  // expired (at `now`), revoked or its account removed.
  virtual Result<AccessToken> FindToken(std::string_view hash, int64_t now) {
    (void)hash, (void)now;
    return Err(ErrorKind::kNotFound, "no such token");
  }
  // The account's unexpired tokens, newest first.
  virtual Result<std::vector<AccessToken>> ListTokens(int64_t account_id, int64_t now) {
    (void)account_id, (void)now;
    return std::vector<AccessToken>{};
  }
  // kNotFound when the account has no such token.
  virtual Status RevokeToken(int64_t account_id, int64_t token_id) {
    (void)account_id, (void)token_id;
    return Err(ErrorKind::kNotFound, "no such token");
  }

  // Sieve scripts (src/sieve). Names are stored as given (the caller checks
  // them, sieve::CheckScriptName). Put creates or replaces; Delete of the
  // active script is kInUse (RFC 5804 section 2.10); SetActive("") leaves
  // none active. ActiveSieveScript: {name, content}, kNotFound when none.
  virtual Result<std::vector<SieveScriptInfo>> ListSieveScripts(int64_t account_id) = 0;
  virtual Result<std::string> GetSieveScript(int64_t account_id, std::string_view name) = 0;
  virtual Result<std::pair<std::string, std::string>> ActiveSieveScript(int64_t account_id) = 0;
  virtual Status PutSieveScript(int64_t account_id, std::string_view name,
                                std::string_view content) = 0;
  virtual Status SetActiveSieveScript(int64_t account_id, std::string_view name) = 0;
  virtual Status DeleteSieveScript(int64_t account_id, std::string_view name) = 0;
  virtual Status RenameSieveScript(int64_t account_id, std::string_view from,
                                   std::string_view to) = 0;
  // Every write above that changes something adds one to the account's
  // script counter in its transaction and stamps the scripts it changed;
  // Delete keeps a tombstone. These read the counter alone (cheap: JMAP push
  // compares it), or with the scripts and the tombstones after `since`.
  virtual Result<uint64_t> SieveScriptsState(int64_t account_id) = 0;
  virtual Result<SieveScriptChanges> SieveScriptsSince(int64_t account_id, uint64_t since) = 0;
  // What delivery runs for an account, in one read (sieve::Filter; three
  // reads per recipient before): its active script, if any, and every script
  // whose name starts with `prefix` (the server's own, sieve::kForwardScript
  // and kVacationScript). Empty when there is none of them.
  virtual Result<std::vector<SieveScriptText>> DeliverySieveScripts(int64_t account_id,
                                                                    std::string_view prefix) = 0;
  // The last run's error ("" = it ran clean); written only when it changes.
  virtual Status SetSieveStatus(int64_t account_id, std::string_view error) = 0;
  virtual Result<SieveStatus> GetSieveStatus(int64_t account_id) = 0;
  // Once-per-period memories: Seen is true while a recorded key's period
  // (until, unix seconds) has not ended at `now`; Record sets its end.
  virtual Result<bool> SieveMemoSeen(int64_t account_id, SieveMemo kind, std::string_view key,
                                     int64_t now) = 0;
  virtual Status SieveMemoRecord(int64_t account_id, SieveMemo kind, std::string_view key,
                                 int64_t until) = 0;

  // Un-removes an account still in retention (hato user restore).
  virtual Status RestoreAccount(std::string_view address) = 0;
  // Destroys a live or removed account and all its mail now.
  virtual Status PurgeAccount(std::string_view address) = 0;
  // Session epochs (issue 11, server/account_sessions.h). SetPassword,
  // RemoveAccount, PurgeAccount and EndSessions ("sign out everywhere") give
  // the account a new epoch, greater than every earlier one of any account,
  // in the same transaction as the change. SessionEndsSince returns those
  // above `since`, in epoch order, at most `limit` of them.
  virtual Status EndSessions(std::string_view address) = 0;
  virtual Result<std::vector<SessionEnd>> SessionEndsSince(int64_t since, size_t limit) = 0;
  // The live (or, when none, the most recently removed) account, with its hash.
  virtual Result<SnapshotAccount> FindAccountAny(std::string_view address) = 0;
  // Removed accounts still in retention (hato user list --removed), by
  // address then removal time. An address may have a live account and
  // removed ones at once. Defaults: for backends that do not have them yet.
  virtual Result<std::vector<RemovedAccount>> ListRemovedAccounts() {
    return Err(ErrorKind::kInternal, "this store cannot list removed accounts");
  }
  // Destroys exactly this account (live or removed) and its mail now; other
  // accounts with the same address are untouched.
  virtual Status PurgeAccountById(int64_t /*id*/) {
    return Err(ErrorKind::kInternal, "this store cannot purge one account by id");
  }

  // The admin role (issue 13: the web admin console; `hato admin grant`).
  // Defaults: for backends that do not have it yet (nobody is an admin).
  virtual Status SetAdmin(std::string_view address, bool admin) {
    (void)address, (void)admin;
    return Err(ErrorKind::kInternal, "this store has no admin role");
  }
  // False for an unknown or removed account.
  virtual Result<bool> IsAdmin(int64_t account_id) {
    (void)account_id;
    return false;
  }
  // Records that a token was used to log in at `now` (app passwords).
  virtual Status TouchToken(int64_t token_id, int64_t now) {
    (void)token_id, (void)now;
    return Ok();
  }
  // The account's language (issue 13): "" (none chosen: the browser's),
  // "en" or "ja"; the caller checks the value. "" for an unknown account.
  // Defaults: for backends that do not have it yet.
  virtual Result<std::string> GetAccountLanguage(int64_t account_id) {
    (void)account_id;
    return std::string();
  }
  virtual Status SetAccountLanguage(int64_t account_id, std::string_view language) {
    (void)account_id, (void)language;
    return Err(ErrorKind::kInternal, "this store has no account language");
  }
};

struct StoreOptions {
  io::FileSystem* fs = nullptr;  // null: the real file system (tests inject faults here)
  bool compress = true;
  size_t max_pending_writes = 10000;  // queued writes past this fail fast (kTemporary)
  size_t max_batch = 512;             // writes group-committed in one transaction at most
  // Called on the writer thread after each group commit with its duration (metrics).
  std::function<void(int64_t ms)> on_commit;
  // Set: a background thread keeps the full-text index (DATA/index) up to
  // date with this extractor (`hato serve`); unset: no index is opened.
  Store::TextExtractor index_text;
  // Set: Deliver, Append, AppendMany and Restore fill an empty `sort_keys`
  // with this function of the content and its MIME tree (on the caller's
  // thread, before queueing), and the record is kept with the body (issue 16:
  // SORT reads no tree). `hato serve` sets imap::SortRecordOf.
  std::function<std::string(std::string_view content, std::string_view mime)> sort_keys;
  // Set: the same calls fill an empty `thread_id` with this function of the
  // content, kept with the body (MailboxInfo::threads counts by it; bodies
  // stored before get theirs from BackfillSortKeys). `hato serve` sets
  // imap::ThreadObjectId, the JMAP threadId.
  std::function<std::string(std::string_view content)> thread_id;
};

// Opens (creating and migrating as needed) the embedded store under data_dir.
Result<std::unique_ptr<Store>> OpenEmbeddedStore(const std::string& data_dir,
                                                 const StoreOptions& options);

// Blocks until an async write completes; for the CLI and tests.
template <typename T, typename Op>
Result<T> Wait(Op&& op);

}  // namespace hato::store

#include "store/wait.h"
