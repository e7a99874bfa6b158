// One IMAP connection: the state machine of RFC 3501 section 3 (not
// authenticated, authenticated, selected, logout), one handler per command,
// and the untagged updates that keep the client's view of the selected
// mailbox in step with the store (RFC 3501 section 7.4.1, RFC 7162 VANISHED).
// session.cc has the loop, login and mailbox commands; messages.cc the
// commands on messages of the selected mailbox (FETCH, STORE, SEARCH, COPY,
// MOVE, EXPUNGE, APPEND) and IDLE.
//
// Threading: runs on the event loop; store reads and message rendering run on
// the blocking pool (io::Offload), store writes through io::AwaitCallback.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "imap/proto/command.h"
#include "imap/proto/reader.h"
#include "imap/proto/sort.h"
#include "imap/server/server.h"
#include "imap/server/sort_keys.h"
#include "imap/server/tree_cache.h"
#include "imap/server/view.h"
#include "io/await.h"
#include "io/net.h"
#include "server/login.h"

namespace hato::imap {

// metadata.cc: the account's METADATA entries (RFC 5464), by owner ("" for
// the server, else the mailbox id), each from entry name to value. Blocking.
using MetadataByOwner = std::map<std::string, std::map<std::string, std::string>>;
Result<MetadataByOwner> ReadMetadata(store::Store& store, int64_t account);

class Session final : public server::SessionRegistry::Member,
                      public server::AccountSessions::Member,
                      public Hub::Listener {
 public:
  Session(server::Services& services, Hub& hub, TreeCache& trees, SortKeyCache& sort_keys,
          tcp::socket socket, bool implicit_tls);
  ~Session() override;

  awaitable<void> Run();

  void RequestStop() override;
  void EndSession() override;  // the account changed: "* BYE" and close
  void MailboxChanged() override;
  void NotifyChanged(int64_t mailbox_id) override;  // notify.cc

 private:
  enum class State { kNotAuthenticated, kAuthenticated, kSelected, kLogout };

  // A SEARCH with RETURN (UPDATE) (CONTEXT=SEARCH, RFC 5267 section 4.3):
  // while the mailbox stays selected, the client hears ESEARCH ADDTO and
  // REMOVEFROM as messages come, go and change. Only searches on metadata
  // (flags, sizes, dates, UIDs, modseqs) are kept: they are re-evaluated
  // against the view after each update, without store access.
  struct UpdateContext {
    std::string tag;
    bool uid = false;                 // UIDs, else sequence numbers (section 4.3.2)
    SearchKey key;                    // "$" resolved
    std::vector<SortCriterion> sort;  // SORT (CONTEXT=SORT); empty for SEARCH
    // The result as the client knows it, as UIDs: ascending for SEARCH, in
    // sort order for SORT.
    std::vector<uint32_t> uids;
  };
  struct Selected {
    int64_t id = 0;
    std::string name;  // UTF-8, canonical
    // The account whose mailbox this is: the session's own, or a list's
    // archive account (imap/server/archives.h: read-only but for the
    // member's own \Seen, kept apart by Store::SetArchiveSeen).
    int64_t account = 0;
    bool archive = false;
    bool read_only = false;
    uint32_t uidvalidity = 0;
    uint32_t uidnext = 1;
    uint64_t highest_modseq = 0;
    MessageView view;  // sequence number n is view[n - 1]
    // Expunged in the store, not yet announced (RFC 3501 7.4.1 forbids it
    // during FETCH, STORE and SEARCH); still present in `view`.
    std::set<uint32_t> pending_expunged;
    // Keywords in use in the mailbox as the client was told (FLAGS, RFC 3501 7.2.6).
    std::set<std::string, std::less<>> keywords;
    // The searches whose results are kept up to date (RFC 5267 section 4.3);
    // they end with the selection.
    std::vector<UpdateContext> contexts;
  };
  // Updating searches per selected mailbox; past it the search is answered
  // with "* NO [NOUPDATE tag]" and no updates (section 4.3.1: at least one).
  static constexpr size_t kMaxUpdateContexts = 8;
  // REMOVEFROM for the results among the UIDs about to be expunged: sent
  // before the EXPUNGE (or VANISHED), while their numbers are valid (section
  // 4.3.4). SEARCH results use position 0, SORT results their positions.
  void SendContextExpunges(const std::set<uint32_t>& expunged);
  // Re-evaluates each updating search against the view and sends the
  // REMOVEFROM and ADDTO that bring the client's result up to date (after
  // EXISTS, section 4.3.3).
  awaitable<void> SendContextUpdates();
  // The number the client knows a message of a context by (UID or sequence number).
  uint32_t ContextNumber(const UpdateContext& ctx, uint32_t uid) const;
  void SendContextLine(const UpdateContext& ctx, std::string_view kind, const std::string& pairs);
  // Starts updates for a SEARCH or SORT with RETURN (UPDATE) whose result is
  // the messages at sequence numbers `seqs` (in the result's order), or
  // answers "* NO [NOUPDATE tag]" for one it does not follow (section 4.3.1).
  void StartUpdates(const Command& c, const std::vector<uint32_t>& seqs);
  // UPDATE with the tag of a live updating search: answered BAD (section 4.3).
  bool UpdateTagInUse(const Command& c);
  void HandleCancelUpdate(const Command& c);  // RFC 5267 section 4.3.5
  // "* FLAGS" and "* OK [PERMANENTFLAGS]" with the mailbox's keywords.
  void SendFlags(const Selected& sel);

  // The BYE for a stopping session: shutdown, or EndSession.
  std::string StopReason() const;
  // Output: buffered, flushed before waiting for input.
  void Reply(std::string_view line) { conn_.QueueLine(line); }
  void Tagged(const Command& c, std::string_view status, std::string_view text) {
    Reply(c.tag + " " + std::string(status) + " " + std::string(text));
  }
  awaitable<bool> Flush() { return conn_.Flush(); }
  // Untagged responses about many messages (a STORE on 5,000 messages, the
  // updates an IDLE session hears) are written in slices: once the queued
  // output reaches kReplySliceBytes it is flushed before more is rendered, so
  // a session never buffers more than about one slice (issue 11 item 8: one
  // STORE pushed 224 MB of FETCH into 10 idle sessions' buffers). False when
  // the client is gone.
  static constexpr size_t kReplySliceBytes = 256 * 1024;
  // The change list a session reads (SendUpdates) comes in pages of about
  // this much metadata (or this many rows), one page in memory at a time.
  static constexpr size_t kChangePageBytes = 256 * 1024;
  static constexpr size_t kChangePageRows = 4096;
  awaitable<bool> FlushSlice() {
    if (conn_.output().size() < kReplySliceBytes) co_return true;
    co_return co_await conn_.Flush();
  }
  std::string Capabilities() const;
  bool PlaintextAllowed() const;

  // Dispatch.
  awaitable<bool> Handle(Command& c);
  static bool Allowed(Verb v, State s);

  // session.cc
  awaitable<bool> HandleStartTls(const Command& c);
  awaitable<bool> HandleLogin(const Command& c);
  awaitable<bool> HandleAuthenticate(const Command& c);
  awaitable<bool> HandleAuthenticateScram(const Command& c);
  // Sends the continuation "+ <challenge>" and reads the client's response
  // line; nullopt when the command is answered (too long: BAD) or the
  // session must close (`closed` is then set).
  awaitable<std::optional<std::string>> ReadSaslResponse(const Command& c,
                                                         const std::string& challenge,
                                                         bool& closed);
  awaitable<bool> Authenticated(const Command& c, const std::string& user,
                                const std::string& password);
  // Answers a checked login: the tagged reply and, on success, the state change.
  bool LoginDone(const Command& c, const server::LoginResult& r, const std::string& mechanism);
  awaitable<bool> HandleSelect(const Command& c);
  awaitable<bool> HandleMailboxWrite(const Command& c);  // CREATE DELETE RENAME (UN)SUBSCRIBE
  awaitable<bool> HandleList(const Command& c);
  // The untagged LIST with an OLDNAME extended data item (RFC 9051 sections
  // 6.3.4, 6.3.6 and 7.3.1) for each (new name, old name) pair, UTF-8, that
  // still exists: after a RENAME and a CREATE whose name was normalized.
  awaitable<void> SendOldNames(std::vector<std::pair<std::string, std::string>> renamed);
  awaitable<bool> HandleStatus(const Command& c);
  // Store::ListMailboxes with RECENT counts that reflect this process's
  // \Recent claims at once.
  awaitable<std::optional<Result<std::vector<store::MailboxInfo>>>> ListMailboxesWithClaims();
  void HandleEnable(const Command& c);
  // Switches CONDSTORE on (ENABLE, or a command that uses it: RFC 7162 3.1).
  void EnableCondstore();
  awaitable<bool> HandleQuota(const Command& c);     // GETQUOTA GETQUOTAROOT SETQUOTA
  awaitable<bool> HandleCompress(const Command& c);  // RFC 4978
  awaitable<bool> HandleMetadata(const Command& c);  // metadata.cc: RFC 5464
  awaitable<bool> HandleUrlAuth(const Command& c);   // urlauth.cc: RFC 4467
  // Claims \Recent for the messages from index `first_new` on (RFC 3501 2.3.2).
  // Claims \Recent for the messages of a mailbox up to a UID (through the
  // hub; `stored` is the store's claim as of SELECT, 0 if unknown) and
  // returns the UID up to which messages were claimed before.
  uint32_t ClaimRecent(int64_t mailbox_id, uint32_t stored, uint32_t up_to);
  void HandleId(const Command& c);
  void Deselect();
  // Brings the selected mailbox up to date and queues the untagged responses.
  // `expunge_ok` is false while answering FETCH, STORE and SEARCH by sequence
  // number (RFC 3501 section 7.4.1): expunges then wait for a later command.
  awaitable<void> SendUpdates(bool expunge_ok, const std::vector<uint32_t>& quiet_uids = {});
  // Reloads the metadata of a view put to sleep during IDLE; false when the
  // store cannot be read.
  awaitable<bool> WakeView();

  // notify.cc: NOTIFY (RFC 5465).
  awaitable<bool> HandleNotify(const Command& c);
  // Sends the notifications the changes heard since the last call call for:
  // STATUS for mailboxes other than the selected one, LIST for names and
  // subscriptions (sections 5.2 to 5.6), and, with a SELECTED filter, the
  // selected mailbox's updates. Only while no command is in progress.
  awaitable<bool> SendNotifications();
  // Whether an event in mailbox `m` is one the client asked for (section 6:
  // the first filter that names the mailbox decides).
  bool NotifyWanted(const store::MailboxInfo& m, NotifyEvent e) const;
  // The selected-mailbox filter (SELECTED or SELECTED-DELAYED), if any.
  const NotifyGroup* NotifySelected() const;
  // "* STATUS" with the items section 5.2 names (and UNSEEN, HIGHESTMODSEQ).
  std::string NotifyStatusLine(const store::MailboxInfo& m) const;
  // After this session's CREATE, DELETE, RENAME, (UN)SUBSCRIBE, SETMETADATA:
  // tells the account's NOTIFY sessions (server::ChangeFeed::PublishRecords).
  void AnnounceMailboxList();
  // Whether changes to the selected mailbox made elsewhere are pushed (while
  // no command is in progress and during IDLE): always without NOTIFY; with
  // it, only when a SELECTED or SELECTED-DELAYED filter asks for events
  // (RFC 5465 sections 3, 6.1).
  bool SelectedPushes() const { return !notify_ || NotifySelected() != nullptr; }
  // Reads what NOTIFY compares beyond the mailbox list: METADATA entries and
  // the INBOXES set, each only when `spec` needs it, off the event loop.
  struct NotifyExtras {
    bool ok = true;
    std::set<std::string> inboxes;
    MetadataByOwner metadata;
  };
  awaitable<NotifyExtras> ReadNotifyExtras(const NotifyArgs& spec);
  // Untagged notifications heard and not yet sent, per session; past it the
  // session sends "* OK [NOTIFICATIONOVERFLOW]" and no more (section 5.8).
  static constexpr size_t kMaxNotifyBacklog = 256;
  struct NotifyState {
    NotifyArgs spec;  // mailbox names in UTF-8
    // The account's mailboxes as the client was last told of them.
    std::map<int64_t, store::MailboxInfo> known;
    std::set<int64_t> changed;  // mailboxes changed since
    bool names_changed = false;
    // INBOXES (section 6.2): INBOX and the mailboxes the account's active
    // Sieve script files into (sieve::FileintoTargets), read at NOTIFY SET
    // and after each name event (ManageSieve and JMAP announce script
    // changes on the same channel).
    std::set<std::string> inboxes;
    // METADATA entries as the client was last told of them (sections 5.6,
    // 5.7), read only when a filter asks for metadata events.
    MetadataByOwner metadata;
    size_t backlog = 0;  // events heard since the last SendNotifications
  };
  std::optional<NotifyState> notify_;

  // messages.cc
  awaitable<bool> HandleFetch(const Command& c);
  awaitable<bool> HandleStore(const Command& c);
  struct StoreNamed {
    std::vector<size_t> targets;  // indexes into the view
    store::FlagChange change;
  };
  std::optional<StoreNamed> StoreTargets(const Command& c);  // BAD sent when nullopt
  awaitable<bool> HandleArchiveStore(const Command& c);      // STORE \Seen in a list archive
  awaitable<bool> HandleSearch(const Command& c);
  // The search part of SEARCH, SORT and THREAD: the matching sequence numbers
  // and their highest modseq; nullopt when the command is answered already
  // (a NO) or, with `ok` false, when the session must close.
  struct SearchFound {
    std::vector<uint32_t> seqs;
    uint64_t modseq = 0;
  };
  awaitable<std::optional<SearchFound>> RunSearch(const Command& c, bool& ok);
  // sorting.cc: SORT (RFC 5256, RFC 5957, ESORT RFC 5267) and THREAD (RFC 5256).
  awaitable<bool> HandleSort(const Command& c);
  awaitable<bool> HandleThread(const Command& c);
  // The sort keys of the messages at sequence numbers `seqs` (numbered by
  // UID when `uid`), with References when `references`; nullopt when the
  // store cannot be read.
  awaitable<std::optional<std::vector<SortInput>>> LoadSortInputs(const std::vector<uint32_t>& seqs,
                                                                  bool uid, bool references);
  awaitable<bool> HandleCopy(const Command& c);
  awaitable<bool> HandleExpunge(const Command& c, bool silent);
  awaitable<bool> HandleAppend(const Command& c);
  // The contents of an APPEND's CATENATE messages (RFC 4469), in message
  // order ("" for a message sent as one literal); nullopt when the command is
  // answered (NO [BADURL], NO [TOOBIG]).
  awaitable<std::optional<std::vector<std::string>>> BuildCatenated(const Command& c);
  awaitable<bool> HandleIdle(const Command& c);
  // Resolves a sequence or UID set against the selected mailbox into indexes
  // of selected_->messages. kInvalid for sequence numbers past the end.
  Result<std::vector<size_t>> Resolve(const SeqSet& set, bool uid) const;
  // Replaces each "$" of a search key with the UIDs of the saved result.
  void ResolveSaved(SearchKey& key) const;

  // Store writes, bounded in time (a plain function returning the awaitable:
  // see io/await.h).
  template <typename T, typename Start>
  awaitable<Result<T>> Write(Start start) {
    return io::AwaitCallback<T>(std::move(start), std::chrono::milliseconds(kWriteTimeoutMs));
  }
  static constexpr int kWriteTimeoutMs = 60000;

  // Mailbox names: IMAP's modified UTF-7 on the wire, UTF-8 in the store.
  Result<std::string> FromWire(const std::string& name) const;
  std::string ToWire(const std::string& name) const;

  awaitable<io::ReadStatus> ReadMore(std::chrono::seconds timeout);
  // Charges what the reader buffers (at least `reserve`) to the memory
  // budget; false (and over_budget_ set) past it.
  bool ChargeBuffered(uint64_t reserve = 0);

  server::Services& svc_;
  Hub& hub_;
  TreeCache& trees_;
  SortKeyCache& sort_keys_;
  io::Connection conn_;
  std::shared_ptr<const config::Config> cfg_;
  CommandReader reader_;
  server::MemoryBudget::Charge charge_;  // reader_'s input (server/budget.h)
  bool over_budget_ = false;
  uint64_t literal_reserve_ = 0;  // a synchronizing literal invited with "+", until read
  State state_ = State::kNotAuthenticated;
  int bad_commands_ = 0;
  // When the command being received must be complete (imap.command_timeout_seconds).
  std::optional<std::chrono::steady_clock::time_point> command_deadline_;
  bool stopping_ = false;
  bool ended_ = false;         // EndSession: the account's password changed or it was removed
  bool implicit_tls_ = false;  // handshake before the greeting (RFC 8314)
  bool idle_ = false;          // waiting for a command (or in IDLE)
  bool changed_ = false;       // the store changed the selected mailbox
  asio::steady_timer wake_;    // cancelled by MailboxChanged() to wake IDLE

  int64_t account_id_ = 0;
  std::string address_;
  server::AccountSlots::Slot account_slot_;  // in Hub::account_sessions
  bool condstore_ = false;  // RFC 7162: enabled by ENABLE or a CONDSTORE-aware command
  bool qresync_ = false;
  // ENABLE IMAP4rev2 (RFC 9051 appendix E): no \Recent, ESEARCH answers to
  // SEARCH, UTF-8 mailbox names instead of modified UTF-7.
  bool rev2_ = false;
  // The saved search result "$" (RFC 5182 SEARCHRES), as UIDs; reset by
  // SELECT, EXAMINE, CLOSE and UNSELECT (section 2.1).
  std::vector<uint32_t> saved_uids_;
  std::optional<Selected> selected_;
  server::AccountSessions::Registration account_session_;  // after login
};

}  // namespace hato::imap
