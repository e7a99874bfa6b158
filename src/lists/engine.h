// Mailing lists and broadcast groups (issue 14): what happens to mail sent
// to a list's addresses (docs/architecture.md, "the life of a broadcast").
//
//   LIST@D               a post: checked (loops, size, posting rights, rate),
//                        then fanned out in one commit (Store::PostToList) or
//                        held for moderation (a mail to owners/moderators)
//   LIST+join@D          double opt-in: a confirmation mail to the requester
//                        (From, else the envelope sender; never Reply-To)
//   LIST+confirm-TOKEN@D a reply to a confirmation: the join (or leave) happens
//   LIST+leave@D         the sender leaves at once (RFC 2369 mailto
//                        unsubscribe) and gets a notice
//   LIST+moderate-TOKEN@ a moderator's reply: approve or reject a held post
//   LIST-bounces+M=D@D   VERP: a DSN (RFC 3464) for member M raises its bounce
//                        score (auto-disable at the list's threshold)
//   LIST+help@, +owner@  a help text; a copy to the owners
//
// Thread-safety: every method may be called from any thread; the calls block
// (store reads and waits for commits) and run on the blocking pool.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "config/config.h"
#include "io/fs.h"
#include "lists/proto.h"
#include "store/store.h"

namespace hato::lists {

// What the SMTP session answers for a list recipient.
struct Reply {
  int code = 250;
  std::string text;  // "2.0.0 ..." without the code
};

struct Inbound {
  std::string rcpt;           // canonical list address form (local@domain)
  std::string mail_from;      // envelope sender, "" = null reverse-path
  std::string authenticated;  // the submission account's address, "" on port 25
  std::string peer_ip;
  std::string content;  // as received, our trace fields (Received, Authentication-Results) on top
  std::string authserv_id;  // our Authentication-Results id (the host name)
  bool smtputf8 = false;
  bool eight_bit = false;
};

struct EngineOptions {
  store::Store* store = nullptr;
  std::function<std::shared_ptr<const config::Config>()> config;
  // DKIM-Signature field for `message` signed as `domain` ("" = no key).
  std::function<Result<std::string>(const std::string& domain, std::string_view message)> sign;
  // The DMARC policy ("none", "quarantine", "reject") a domain publishes,
  // "" when none or unknown (a DNS failure never rewrites).
  std::function<std::string(const std::string& domain)> dmarc_policy;
  std::function<void()> queued;  // something was queued for delivery: kick the runner
  std::function<int64_t()> now;  // unix seconds (tests may fix it)
};

class Engine {
 public:
  explicit Engine(EngineOptions options);
  // Whether `address` (canonical, in a local domain, no account) is a list address.
  Result<bool> Handles(std::string_view address);
  // Processes one message for one list address; blocks until what it
  // stored is durable. A storage failure answers 451 (the client retries).
  Reply Receive(const Inbound& in);

  // Admin (hato list moderate): approve (fan out) or reject a held post.
  Status Moderate(const store::ListInfo& list, int64_t held_id, bool approve);
  // Fans a message out to the list's members (the post path once allowed).
  Result<store::ListPostReceipt> Fanout(const store::ListInfo& list, std::string_view content,
                                        const std::string& poster, int64_t held_id, bool smtputf8,
                                        bool eight_bit);

 private:
  Reply Post(const store::ListInfo& list, const Inbound& in);
  Reply Join(const store::ListInfo& list, const Inbound& in);
  Reply Confirm(const store::ListInfo& list, const Inbound& in, const std::string& token);
  Reply Leave(const store::ListInfo& list, const Inbound& in);
  Reply ModerateByMail(const store::ListInfo& list, const Inbound& in, const std::string& token);
  Reply Bounce(const store::ListInfo& list, const Inbound& in, const std::string& member);
  Reply Help(const store::ListInfo& list, const Inbound& in);
  Reply Owner(const store::ListInfo& list, const Inbound& in);
  // A mail from the list (confirmation, welcome, moderation request, ...) to
  // one address: local accounts get it in their INBOX, others through the queue.
  Status Send(const store::ListInfo& list, const std::string& to, const std::string& from,
              const std::string& subject, const std::string& body);
  Status SendRaw(const store::ListInfo& list, const std::string& to, std::string message);
  std::string NewToken();
  // The language of a mail to `address` answering `request` ("" = none):
  // the local account's choice, else the request's (ChooseMailLanguage).
  // A store failure only loses the choice (both languages).
  MailLanguage LanguageFor(const std::string& address, std::string_view request);

  EngineOptions o_;
};

// The subject and text of one of the list's own mails, in the recipient's
// language (MailLanguage: English, Japanese, or both, English first).
// Per-list texts (`hato list set --confirm-text-file/--welcome-text-file`)
// replace the confirmation and welcome bodies whatever the language; {list}
// and {address} are replaced. Pure.
struct ListMail {
  std::string subject;
  std::string body;
};
ListMail ConfirmMail(const store::ListInfo& list, const std::string& address, bool join,
                     MailLanguage lang);
ListMail WelcomeMail(const store::ListInfo& list, const std::string& address, MailLanguage lang);
ListMail LeftMail(const store::ListInfo& list, const std::string& address, MailLanguage lang);
ListMail HelpMail(const store::ListInfo& list, MailLanguage lang);
ListMail ModerationMail(const store::ListInfo& list, const std::string& poster,
                        const std::string& subject, const std::string& reason, int64_t held_id,
                        MailLanguage lang);

// ---- One-click unsubscribe (RFC 8058) ----

// The secret of the unsubscribe tokens: DATA/list-unsubscribe.key (64 hex
// digits, made at the first start; carried by backups, docs/operations.md).
inline constexpr std::string_view kUnsubscribeKeyFile = "list-unsubscribe.key";
Result<std::string> LoadUnsubscribeKey(io::FileSystem& fs, const std::string& data_dir);

struct MemberCopyOptions {
  std::string unsubscribe_url;  // [lists] unsubscribe_url ("" = mailto only)
  std::string key;              // LoadUnsubscribeKey
  // DKIM-Signature field for `message` signed as `domain` ("" = no key).
  std::function<Result<std::string>(const std::string& domain, std::string_view message)> sign;
};

// The copy of a stored list post one member receives (the queue asks for it
// per VERP recipient, off the event loop): the member's own List-Unsubscribe
// (URL with its token, then the mailto) and List-Unsubscribe-Post on top,
// DKIM-signed as the list domain so the signature covers them. A post that
// already has a List-Unsubscribe (signed once at fan-out) is returned as is.
Result<std::string> MemberCopy(const MemberCopyOptions& o, std::string_view bounce_address,
                               std::string_view member, std::string_view content);

}  // namespace hato::lists
