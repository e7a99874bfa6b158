// NOTIFY (RFC 5465): untagged responses about mailboxes other than the
// selected one, sent while no command is in progress and during IDLE.
//
// The cheap form: the session keeps the account's mailboxes as it last told
// the client of them (NotifyState::known). The Hub calls NotifyChanged with
// a mailbox id after a commit changed it (the store's change feed, which on
// PostgreSQL also carries other nodes' commits), or with 0 after a CREATE,
// DELETE, RENAME, (UN)SUBSCRIBE or METADATA write (server::ChangeFeed::
// PublishRecords; on PostgreSQL other nodes' arrive by the store's record
// channel, Store::SetRecordListener). At the next moment allowed, the
// session re-reads the mailbox list once and sends STATUS for the counters
// that differ (sections 5.1 to 5.3), LIST for names and subscriptions that
// differ (sections 5.4 and 5.5) and, after a name event, METADATA for the
// entries that differ (sections 5.6 and 5.7, RFC 5464 section 4.4.2).
//
// The selected mailbox: only a SELECTED or SELECTED-DELAYED filter with
// events has its changes pushed (Session::SelectedPushes). Without one the
// client hears of them only in the responses to its own commands (NOOP,
// FETCH, ...), as RFC 3501 section 7 allows any server; nothing while no
// command is in progress, nothing during IDLE (section 4: NOTIFY decides
// what IDLE sends).
//
// INBOXES (section 6.2): INBOX and the mailboxes the account's active Sieve
// script files into (sieve::FileintoTargets; names holding variables and
// scripts reached by include are not followed).
//
// Not offered: AnnotationChange (Hato has no per-message annotations,
// RFC 5257); asking for it is answered NO [BADEVENT] (section 3).
#include <algorithm>

#include "imap/proto/strings.h"
#include "imap/server/render.h"
#include "imap/server/session.h"
#include "sieve/interpret.h"

namespace hato::imap {
namespace {

// Section 3: the BADEVENT response code lists the events the server offers.
constexpr const char* kBadEvent =
    "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange "
    "MailboxMetadataChange ServerMetadataChange)]";

bool Offered(NotifyEvent e) { return e != NotifyEvent::kAnnotationChange; }

bool AnyGroupHas(const NotifyArgs& spec, NotifyEvent e) {
  return std::any_of(spec.groups.begin(), spec.groups.end(),
                     [e](const NotifyGroup& g) { return g.Has(e); });
}

bool WantsMetadata(const NotifyArgs& spec) {
  return AnyGroupHas(spec, NotifyEvent::kMailboxMetadataChange) ||
         AnyGroupHas(spec, NotifyEvent::kServerMetadataChange);
}

bool WantsInboxes(const NotifyArgs& spec) {
  return std::any_of(spec.groups.begin(), spec.groups.end(), [](const NotifyGroup& g) {
    return g.filter == NotifyFilter::kInboxes && !g.events.empty();
  });
}

// Section 6.2: "all selectable mailboxes in the personal namespace(s) to
// which messages may be delivered by an MDA": INBOX, and what the active
// Sieve script files into (delivery keeps in INBOX when the script does not
// compile). `ok` turns false when the store could not be read.
std::set<std::string> DeliveryMailboxes(store::Store& store, int64_t account, bool& ok) {
  std::set<std::string> out{"INBOX"};
  auto active = store.ActiveSieveScript(account);
  if (!active) {
    if (active.error().kind != ErrorKind::kNotFound) ok = false;
    return out;
  }
  auto script = sieve::Compile(active->second);
  if (!script) return out;
  for (const std::string& name : sieve::FileintoTargets(*script)) {
    if (auto canonical = store::CanonicalMailboxName(name)) out.insert(*canonical);
  }
  return out;
}

// The entry names whose values differ between `a` and `b`, sorted.
std::vector<std::string> ChangedEntries(const std::map<std::string, std::string>& a,
                                        const std::map<std::string, std::string>& b) {
  std::vector<std::string> out;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second != v) out.push_back(k);
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) out.push_back(k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsSelectedFilter(NotifyFilter f) {
  return f == NotifyFilter::kSelected || f == NotifyFilter::kSelectedDelayed;
}

bool IsMessageEvent(NotifyEvent e) {
  return e == NotifyEvent::kMessageNew || e == NotifyEvent::kMessageExpunge ||
         e == NotifyEvent::kFlagChange || e == NotifyEvent::kAnnotationChange;
}

// Whether `g` (not a selected filter) names mailbox `m` (section 6);
// `inboxes`: the INBOXES set (NotifyState::inboxes).
bool Names(const NotifyGroup& g, const store::MailboxInfo& m,
           const std::set<std::string>& inboxes) {
  switch (g.filter) {
    case NotifyFilter::kSelected:
    case NotifyFilter::kSelectedDelayed:
      return false;
    case NotifyFilter::kInboxes:
      return m.name == "INBOX" || inboxes.count(m.name) > 0;
    case NotifyFilter::kPersonal:
      return true;  // the personal namespace is the account's mailboxes
    case NotifyFilter::kSubscribed:
      return m.subscribed;
    case NotifyFilter::kSubtree:
      return std::any_of(g.mailboxes.begin(), g.mailboxes.end(), [&m](const std::string& n) {
        return m.name == n || (m.name.size() > n.size() && m.name.starts_with(n) &&
                               m.name[n.size()] == store::kHierarchySeparator);
      });
    case NotifyFilter::kMailboxes:
      return std::find(g.mailboxes.begin(), g.mailboxes.end(), m.name) != g.mailboxes.end();
  }
  return false;
}

}  // namespace

const NotifyGroup* Session::NotifySelected() const {
  if (!notify_) return nullptr;
  for (const NotifyGroup& g : notify_->spec.groups) {
    // "SELECTED NONE" asks for nothing, as no selected filter does.
    if (IsSelectedFilter(g.filter)) return g.events.empty() ? nullptr : &g;
  }
  return nullptr;
}

bool Session::NotifyWanted(const store::MailboxInfo& m, NotifyEvent e) const {
  if (!notify_) return false;
  // Message events of the selected mailbox come through its own filter (and
  // SendUpdates), never as STATUS (section 5.2).
  if (selected_ && !selected_->archive && selected_->id == m.id && IsMessageEvent(e)) return false;
  for (const NotifyGroup& g : notify_->spec.groups) {
    if (!Names(g, m, notify_->inboxes)) continue;
    if (g.events.empty()) return false;  // "NONE": nothing about these mailboxes
    if (g.Has(e)) return true;
  }
  return false;
}

std::string Session::NotifyStatusLine(const store::MailboxInfo& m) const {
  // Section 5.2: MESSAGES, UIDNEXT and UIDVALIDITY (and HIGHESTMODSEQ with
  // CONDSTORE); UNSEEN too, which FlagChange changes (section 5.4).
  std::string line = "* STATUS ";
  AppendString(line, ToWire(m.name), rev2_);
  line += " (MESSAGES " + std::to_string(m.messages) + " UIDNEXT " + std::to_string(m.uidnext) +
          " UIDVALIDITY " + std::to_string(m.uidvalidity) + " UNSEEN " + std::to_string(m.unseen);
  if (condstore_) line += " HIGHESTMODSEQ " + std::to_string(m.highest_modseq);
  return line + ")";
}

awaitable<Session::NotifyExtras> Session::ReadNotifyExtras(const NotifyArgs& spec) {
  const bool inboxes = WantsInboxes(spec), metadata = WantsMetadata(spec);
  if (!inboxes && !metadata) co_return NotifyExtras{};
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  auto read = [store, account, inboxes, metadata] {
    NotifyExtras x;
    if (inboxes) x.inboxes = DeliveryMailboxes(*store, account, x.ok);
    if (metadata) {
      auto m = ReadMetadata(*store, account);
      if (m) {
        x.metadata = std::move(*m);
      } else {
        x.ok = false;
      }
    }
    return x;
  };
  NotifyExtras x = co_await io::Offload(*svc_.blocking, std::move(read));
  co_return x;
}

void Session::AnnounceMailboxList() {
  if (svc_.changes) {
    svc_.changes->PublishRecords(account_id_);
  } else {
    hub_.NotifyAccount(account_id_);
  }
}

void Session::NotifyChanged(int64_t mailbox_id) {
  if (!notify_) return;
  // The selected mailbox's changes reach the client through SendUpdates
  // (never as STATUS): not counted, so a client pipelining STOREs on it
  // does not overflow.
  if (selected_ && !selected_->archive && mailbox_id == selected_->id) return;
  if (mailbox_id == 0) {
    notify_->names_changed = true;
  } else {
    notify_->changed.insert(mailbox_id);
  }
  ++notify_->backlog;
  wake_.cancel();
}

awaitable<bool> Session::HandleNotify(const Command& c) {
  NotifyArgs a = c.As<NotifyArgs>();
  if (a.none) {
    // Section 3: no more notifications (of any kind this extension adds).
    if (notify_) hub_.UnwatchNotify(this);
    notify_.reset();
    Tagged(c, "OK", "NOTIFY completed");
    co_return true;
  }
  for (NotifyGroup& g : a.groups) {
    if (!g.unknown.empty() || !std::all_of(g.events.begin(), g.events.end(), Offered)) {
      Tagged(c, "NO", std::string(kBadEvent) + " event not supported");
      co_return true;
    }
    for (std::string& name : g.mailboxes) {
      auto utf8 = FromWire(name);
      if (!utf8) {
        Tagged(c, "NO", "invalid mailbox name: " + utf8.error().message);
        co_return true;
      }
      name = *utf8;
    }
  }
  auto mailboxes = co_await ListMailboxesWithClaims();
  NotifyExtras extras = co_await ReadNotifyExtras(a);
  if (!mailboxes->ok() || !extras.ok) {
    Tagged(c, "NO", "[UNAVAILABLE] try again later");
    co_return true;
  }
  // Section 3: a new NOTIFY replaces the previous one.
  NotifyState state;
  state.spec = std::move(a);
  state.inboxes = std::move(extras.inboxes);
  state.metadata = std::move(extras.metadata);
  std::set<int64_t> ids;
  for (const auto& m : **mailboxes) {
    state.known[m.id] = m;
    ids.insert(m.id);
  }
  notify_ = std::move(state);
  hub_.WatchNotify(account_id_, std::move(ids), this);
  if (notify_->spec.status) {
    // Section 3: STATUS for each mailbox named by a filter with message
    // events, the selected one excepted, before the tagged OK.
    for (const auto& [id, m] : notify_->known) {
      if (NotifyWanted(m, NotifyEvent::kMessageNew)) Reply(NotifyStatusLine(m));
      bool ok = co_await FlushSlice();
      if (!ok) co_return false;
    }
  }
  if (state_ == State::kSelected) co_await SendUpdates(true);
  Tagged(c, "OK", "NOTIFY completed");
  co_return true;
}

awaitable<bool> Session::SendNotifications() {
  if (!notify_) co_return true;
  if (notify_->backlog > kMaxNotifyBacklog) {
    // Section 5.8: the client has missed events; it is told so, and hears
    // nothing more until it issues NOTIFY again.
    Reply("* OK [NOTIFICATIONOVERFLOW] too many changes, notifications stopped");
    hub_.UnwatchNotify(this);
    notify_.reset();
    bool flushed = co_await Flush();
    co_return flushed;
  }
  if (const NotifyGroup* sel = NotifySelected(); sel && changed_ && state_ == State::kSelected) {
    // Section 5.1/6.1: SELECTED sends expunges as they happen, SELECTED-DELAYED
    // only when a command allows them (RFC 3501 section 7.4.1).
    uint32_t uidnext = selected_->uidnext;
    co_await SendUpdates(sel->filter == NotifyFilter::kSelected);
    if (!sel->fetch.empty() && sel->Has(NotifyEvent::kMessageNew) && selected_) {
      // Section 5.2: MessageNew's fetch-att list, for each new message.
      std::vector<FetchItem> items = sel->fetch;
      bool content = NeedsContent(items), tree = NeedsTree(items);
      bool with_modseq =
          condstore_ && std::any_of(items.begin(), items.end(),
                                    [](const FetchItem& f) { return f.att == FetchAtt::kModSeq; });
      std::vector<std::pair<uint32_t, store::MessageMeta>> fresh;
      for (size_t i = 0; i < selected_->view.size(); ++i) {
        if (selected_->view[i].uid >= uidnext) {
          fresh.emplace_back(static_cast<uint32_t>(i + 1), selected_->view[i]);
        }
      }
      store::Store* store = svc_.store;
      TreeCache* cache = &trees_;
      int64_t account = selected_->account;
      auto render = [store, cache, account, fresh, items, content, tree, with_modseq] {
        std::string out;
        for (const auto& [seq, meta] : fresh) {
          Loaded l = Load(store, cache, account, meta, content, tree);
          if (l.error) continue;  // the client can FETCH it; nothing to say here
          MessageData m{&meta, seq, l.raw, l.tree.get()};
          RenderFetch(out, m, items, /*uid_fetch=*/false, with_modseq);
        }
        return out;
      };
      if (!fresh.empty()) {
        std::string rendered = co_await io::Offload(*svc_.blocking, std::move(render));
        conn_.output() += rendered;
      }
    }
  }
  if (!notify_ || (notify_->changed.empty() && !notify_->names_changed)) {
    if (notify_) notify_->backlog = 0;
    bool flushed = co_await Flush();
    co_return flushed;
  }
  // Taken before the read: a change heard during it is kept for the next round.
  std::set<int64_t> changed = std::move(notify_->changed);
  const bool names_changed = notify_->names_changed;
  notify_->changed.clear();
  notify_->names_changed = false;
  notify_->backlog = 0;
  auto mailboxes = co_await ListMailboxesWithClaims();
  if (!notify_) co_return true;
  std::optional<NotifyExtras> extras;
  if (names_changed) {
    // Metadata and Sieve scripts travel on the channel names do.
    NotifyArgs spec = notify_->spec;
    extras = co_await ReadNotifyExtras(spec);
    if (!notify_) co_return true;
  }
  if (!mailboxes->ok() || (extras && !extras->ok)) {
    notify_->changed.insert(changed.begin(), changed.end());
    notify_->names_changed = true;
    bool flushed = co_await Flush();  // tried again at the next change
    co_return flushed;
  }
  std::map<int64_t, store::MailboxInfo> now;
  for (const auto& m : **mailboxes) now[m.id] = m;
  if (extras) notify_->inboxes = std::move(extras->inboxes);
  auto& known = notify_->known;
  auto list_line = [this](const store::MailboxInfo& m, bool exists, const std::string* old) {
    // Sections 5.4 and 5.5: LIST with \NonExistent for a deleted mailbox,
    // OLDNAME (RFC 5465 section 5.4, RFC 9051 section 7.3.1) for a renamed one.
    std::string line = exists ? (m.subscribed ? "* LIST (\\Subscribed) \"/\" " : "* LIST () \"/\" ")
                              : "* LIST (\\NonExistent) \"/\" ";
    AppendString(line, ToWire(m.name), rev2_);
    if (old) {
      line += " (\"OLDNAME\" (";
      AppendString(line, ToWire(*old), rev2_);
      line += "))";
    }
    Reply(line);
  };
  // Names and subscriptions are compared on every read of the list, not
  // only after a name event: which of a RENAME's two signals (its
  // mailbox's modseq, the record channel) comes first is not fixed.
  for (const auto& [id, m] : known) {
    if (!now.count(id) && NotifyWanted(m, NotifyEvent::kMailboxName)) list_line(m, false, nullptr);
  }
  for (const auto& [id, m] : now) {
    auto was = known.find(id);
    if (was == known.end()) {
      if (NotifyWanted(m, NotifyEvent::kMailboxName)) list_line(m, true, nullptr);
    } else if (was->second.name != m.name) {
      if (NotifyWanted(m, NotifyEvent::kMailboxName) ||
          NotifyWanted(was->second, NotifyEvent::kMailboxName)) {
        list_line(m, true, &was->second.name);
      }
    } else if (was->second.subscribed != m.subscribed &&
               NotifyWanted(m, NotifyEvent::kSubscriptionChange)) {
      list_line(m, true, nullptr);
    }
  }
  if (extras && WantsMetadata(notify_->spec)) {
    // Sections 5.6 and 5.7: the names of the entries that changed, without
    // their values (RFC 5464 section 4.4.2's unsolicited form).
    const MetadataByOwner& was = notify_->metadata;
    const MetadataByOwner& is = extras->metadata;
    std::set<std::string> owners;
    for (const auto& [o, e] : was) owners.insert(o);
    for (const auto& [o, e] : is) owners.insert(o);
    static const std::map<std::string, std::string> kNone;
    for (const std::string& owner : owners) {
      auto a = was.find(owner), b = is.find(owner);
      std::vector<std::string> entries =
          ChangedEntries(a == was.end() ? kNone : a->second, b == is.end() ? kNone : b->second);
      if (entries.empty()) continue;
      std::string line = "* METADATA ";
      if (owner.empty()) {
        if (!AnyGroupHas(notify_->spec, NotifyEvent::kServerMetadataChange)) continue;
        line += "\"\"";
      } else {
        auto m = now.find(std::strtoll(owner.c_str(), nullptr, 10));
        if (m == now.end() || !NotifyWanted(m->second, NotifyEvent::kMailboxMetadataChange)) {
          continue;  // a deleted mailbox's entries go with it (RFC 5464 section 3.3)
        }
        AppendString(line, ToWire(m->second.name), rev2_);
      }
      for (const std::string& e : entries) {
        line += ' ';
        AppendString(line, e, /*utf8=*/false);
      }
      Reply(line);
    }
    notify_->metadata = std::move(extras->metadata);
  }
  // What the client is told becomes the picture the next round compares
  // with: names and subscriptions as read, counters only for the mailboxes
  // whose STATUS was sent.
  std::map<int64_t, store::MailboxInfo> next = now;
  for (auto& [id, m] : next) {
    auto was = known.find(id);
    if (was == known.end()) continue;
    const store::MailboxInfo& a = was->second;
    m.messages = a.messages, m.uidnext = a.uidnext, m.uidvalidity = a.uidvalidity;
    m.unseen = a.unseen, m.highest_modseq = a.highest_modseq;
  }
  for (int64_t id : changed) {
    auto was = known.find(id), is = now.find(id);
    if (was == known.end() || is == now.end() || !next.count(id)) continue;
    const store::MailboxInfo &a = was->second, &b = is->second;
    bool counts =
        a.messages != b.messages || a.uidnext != b.uidnext || a.uidvalidity != b.uidvalidity;
    bool flags = a.unseen != b.unseen || (condstore_ && a.highest_modseq != b.highest_modseq);
    if ((counts && NotifyWanted(b, NotifyEvent::kMessageNew)) ||
        (flags && NotifyWanted(b, NotifyEvent::kFlagChange))) {
      store::MailboxInfo told = next[id];  // the name the client knows
      told.messages = b.messages, told.uidnext = b.uidnext, told.uidvalidity = b.uidvalidity;
      told.unseen = b.unseen, told.highest_modseq = b.highest_modseq;
      Reply(NotifyStatusLine(told));
      next[id] = told;
      bool ok = co_await FlushSlice();
      if (!ok) co_return false;
      if (!notify_) co_return true;
    }
  }
  notify_->known = std::move(next);
  {
    std::set<int64_t> ids;
    for (const auto& [id, m] : notify_->known) ids.insert(id);
    hub_.WatchNotify(account_id_, std::move(ids), this);
  }
  bool flushed = co_await Flush();
  co_return flushed;
}

}  // namespace hato::imap
