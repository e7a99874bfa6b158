// The mailing lists of the PostgreSQL backend (issue 14): the same
// operations and semantics as store/sqlite/list_ops.h, in PostgreSQL's SQL.
// Writes run in the writer's transaction (Txn); a post's fan-out is one
// INSERT ... SELECT over the members, in the transaction of its queue entry
// and its one stored body.
#pragma once

#include <string>
#include <vector>

#include "store/postgres/pg_ops.h"
#include "store/store.h"

namespace hato::store::pg {

// A list's bounce threshold when its own setting is 0.
inline constexpr uint32_t kDefaultListBounceThreshold = 3;

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
// The in-flight recipients of `node` (and of no live lease) become failed.
Status ApplyResolveInFlight(Txn& t, const std::string& node, int64_t now, uint64_t& failed);
// Queue outcomes of list-post recipients move their members' bounce scores.
Status ApplyListOutcomeScores(Txn& t, const std::vector<RecipientOutcome>& outcomes);

Result<std::vector<ListInfo>> QueryLists(Conn& c);
Result<ListInfo> QueryList(Conn& c, const std::string& address);
// The live lists `address` is a member of (any role): the list archives it may read.
Result<std::vector<ListInfo>> QueryMemberLists(Conn& c, const std::string& address);
Result<std::vector<ListMember>> QueryListMembers(Conn& c, int64_t list_id);
Result<ListMember> QueryListMember(Conn& c, int64_t list_id, const std::string& address);
Result<uint64_t> QueryCountListTokens(Conn& c, int64_t list_id, const std::string& address,
                                      const std::string& source, int64_t since);
Result<std::vector<HeldPost>> QueryHeldPosts(Conn& c, int64_t list_id);
Result<std::string> QueryHeldContent(Conn& c, int64_t held_id);
Result<std::vector<ListPostInfo>> QueryListPosts(Conn& c, int64_t list_id);
Result<uint64_t> QueryCountListPosts(Conn& c, int64_t list_id, int64_t since);
Result<ListReport> QueryListReport(Conn& c, int64_t list_id, int64_t post_id);

}  // namespace hato::store::pg
