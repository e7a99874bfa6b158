// Resolving IMAP URLs against the store; see url_fetch.h.
#include "imap/server/url_fetch.h"

#include <algorithm>

#include "base/strings.h"
#include "mime/message.h"

namespace hato::imap {
namespace {

Error NotFound(std::string what) { return Err(ErrorKind::kNotFound, std::move(what)); }

}  // namespace

std::vector<std::string> ThisServerNames(std::string_view hostname) {
  return {AsciiLower(hostname), "localhost", "127.0.0.1", "[::1]"};
}

Status CheckUrlTarget(const ImapUrl& url, const UrlContext& ctx) {
  switch (url.form) {
    case ImapUrl::Form::kAbsolute: {
      // RFC 4469 section 3: a server may refuse URLs naming another server;
      // this one reads only from itself, so those are BADURL.
      bool ours = std::any_of(ctx.servers.begin(), ctx.servers.end(),
                              [&](const std::string& s) { return s == url.host; });
      if (!ours) return NotFound("the URL names another server");
      if (!url.user.empty() && !EqualsIgnoreCase(url.user, ctx.user)) {
        return NotFound("the URL names another user");
      }
      return Ok();
    }
    case ImapUrl::Form::kAbsolutePath:
      return Ok();
    case ImapUrl::Form::kRelative:
      if (ctx.selected_mailbox.empty()) return NotFound("a relative URL needs a selected mailbox");
      return Ok();
  }
  return NotFound("bad URL form");
}

Result<std::string> FetchUrl(store::Store& store, const ImapUrl& url, const UrlContext& ctx) {
  if (auto st = CheckUrlTarget(url, ctx); !st) return st.error();
  std::string name = ctx.selected_mailbox;
  if (url.form != ImapUrl::Form::kRelative) {
    auto canonical = store::CanonicalMailboxName(url.mailbox);
    if (!canonical) return NotFound("bad mailbox name");
    name = std::move(*canonical);
  }
  auto boxes = store.ListMailboxHeads(ctx.account_id);
  if (!boxes) return boxes.error();
  auto box = std::find_if(boxes->begin(), boxes->end(),
                          [&](const store::MailboxInfo& b) { return b.name == name; });
  if (box == boxes->end()) return NotFound("no such mailbox");
  if (url.uidvalidity && *url.uidvalidity != box->uidvalidity) {
    return NotFound("UIDVALIDITY changed");
  }
  auto metas = store.ListMessagesByUid(box->id, {{url.uid, url.uid}});
  if (!metas) return metas.error();
  if (metas->empty()) return NotFound("no such message");
  const store::MessageMeta& meta = metas->front();
  // ListMessagesByUid keeps expunged messages until they are purged; an
  // expunge gives the message a new modseq, so it is expunged exactly when
  // its UID is among those vanished since just below its modseq.
  auto vanished = store.ListVanished(box->id, meta.modseq > 0 ? meta.modseq - 1 : 0);
  if (!vanished) return vanished.error();
  if (std::find(vanished->begin(), vanished->end(), url.uid) != vanished->end()) {
    return NotFound("message expunged");
  }
  auto raw = store.ReadMessage(ctx.account_id, meta.id);
  if (!raw) return raw.error();
  std::string out;
  if (url.section.empty()) {
    out = std::move(*raw);
  } else {
    auto tree = mime::Parse(*raw);
    if (!tree) return tree.error();
    auto section = mime::Section(*raw, *tree, url.section);
    if (!section) {
      if (section.error().kind == ErrorKind::kCorrupt) return section.error();
      return NotFound("no such section");
    }
    out = std::move(*section);
  }
  if (url.partial) {
    // RFC 5092 section 5: the octets from the offset on, at most length.
    if (url.partial->offset >= out.size()) return std::string();
    out = out.substr(url.partial->offset, url.partial->length.value_or(std::string::npos));
  }
  return out;
}

}  // namespace hato::imap
