// The mailing lists of the embedded backend (issue 14): SQL for lists,
// members, tokens, held posts, posts and their delivery reports. Writes run
// inside the writer's batch transaction (Txn); a post's fan-out is one
// INSERT ... SELECT over the members, in the same transaction as its queue
// entry and its one stored body.
#pragma once

#include <string>
#include <vector>

#include "store/sqlite/mail_ops.h"
#include "store/store.h"

namespace hato::store::sqlite {

// A list's bounce threshold when its own setting is 0.
inline constexpr uint32_t kDefaultBounceThreshold = 3;

// The list's archive account (made, with its INBOX, when the list has none).
Result<int64_t> EnsureListArchive(Txn& t, int64_t list_id);
Status ApplyCreateList(Txn& t, const std::string& address, ListMode mode);
Status ApplyRemoveList(Txn& t, const std::string& address);
Status ApplyUpdateList(Txn& t, const std::string& address, const ListSettings& s);
Status ApplyAddListMembers(Txn& t, int64_t list_id, const std::vector<ListMember>& members,
                           bool update, ListMemberChange& change);
Status ApplyRemoveListMember(Txn& t, int64_t list_id, const std::string& address);
Status ApplySetMemberDelivery(Txn& t, int64_t list_id, const std::string& address,
                              std::optional<bool> delivery, bool reenable);
Status ApplyListBounce(Txn& t, int64_t list_id, const std::string& address,
                       const std::string& reason, uint32_t threshold, ListMember& after);
Status ApplyCreateListToken(Txn& t, const ListToken& token);
Status ApplyConsumeListToken(Txn& t, const std::string& token, int64_t now, ListToken& out);
Status ApplyHoldListPost(Txn& t, int64_t list_id, const std::string& content,
                         const std::string& sender, const std::string& reason, int64_t& id);
Status ApplyDropHeldPost(Txn& t, int64_t held_id);
Status ApplyPostToList(Txn& t, const ListPostRequest& req, ListPostReceipt& receipt);
Status ApplyListPostFailure(Txn& t, int64_t post_id, const std::string& address,
                            const std::string& reason);
// Marks the recipients of `ids` still queued (state 0) in flight; `marked`
// gets their ids.
Status ApplyMarkInFlight(Txn& t, const std::vector<int64_t>& ids, std::vector<int64_t>& marked);
Status ApplyResolveInFlight(Txn& t, uint64_t& failed);
// Queue outcomes of list-post recipients move their members' bounce scores
// (a permanent failure adds one, a delivery clears the score and re-enables).
Status ApplyListOutcomeScores(Txn& t, const std::vector<RecipientOutcome>& outcomes);

Result<std::vector<ListInfo>> QueryLists(Db& db);
Result<ListInfo> QueryList(Db& db, const std::string& address);
// The live lists `address` is a member of (any role): the list archives it may read.
Result<std::vector<ListInfo>> QueryMemberLists(Db& db, const std::string& address);
Result<std::vector<ListMember>> QueryListMembers(Db& db, int64_t list_id);
Result<ListMember> QueryListMember(Db& db, int64_t list_id, const std::string& address);
Result<uint64_t> QueryCountListTokens(Db& db, int64_t list_id, const std::string& address,
                                      const std::string& source, int64_t since);
Result<std::vector<HeldPost>> QueryHeldPosts(Db& db, int64_t list_id);
Result<BlobRef> QueryHeldBlob(Db& db, int64_t held_id);
Result<std::vector<ListPostInfo>> QueryListPosts(Db& db, int64_t list_id);
Result<uint64_t> QueryCountListPosts(Db& db, int64_t list_id, int64_t since);
Result<ListReport> QueryListReport(Db& db, int64_t list_id, int64_t post_id);

}  // namespace hato::store::sqlite
