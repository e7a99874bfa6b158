#include "lists/engine.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <ctime>
#include <random>

#include "base/strings.h"
#include "lists/proto.h"
#include "mime/header.h"
#include "mime/message.h"

namespace hato::lists {
namespace {

using store::ListInfo;
using store::ListMember;

std::string Rfc5322Date(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

// RFC 2047 encoded-word (B) for a UTF-8 header text, when it is not ASCII.
std::string EncodeHeaderText(std::string_view text) {
  bool ascii = true;
  for (unsigned char c : text) ascii = ascii && c < 0x80;
  if (ascii) return std::string(text);
  // Each encoded-word at most 75 characters (RFC 2047 section 2): 45 input bytes,
  // split on UTF-8 character boundaries.
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + 45);
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64Encode(text.substr(pos, end - pos)) + "?=";
    pos = end;
  }
  return out;
}

std::string Base64Lines(std::string_view in) {
  std::string b = Base64Encode(in);
  std::string out;
  for (size_t i = 0; i < b.size(); i += 76) out += b.substr(i, 76) + "\r\n";
  return out;
}

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
  return s;
}

std::string Fill(std::string text, const ListInfo& list, const std::string& address) {
  text = ReplaceAll(std::move(text), "{list}", list.address);
  return ReplaceAll(std::move(text), "{address}", address);
}

Reply Temporary(const Error& e) {
  spdlog::error("lists: {}", e.message);
  return Reply{451, "4.3.0 List storage is busy, try again later"};
}

// Whether the top Authentication-Results of ours says DMARC passed for the
// From domain (RFC 8601; forged ones with our id were removed on arrival).
bool DmarcPass(std::string_view message, const std::string& authserv_id,
               const std::string& from_domain) {
  if (authserv_id.empty() || from_domain.empty()) return false;
  auto scan = mime::internal::ScanHeader(message);
  for (const auto& f : scan.fields) {
    if (!EqualsIgnoreCase(f.name, "Authentication-Results")) continue;
    std::string v = AsciiLower(mime::internal::Unfold(f.value));
    size_t semi = v.find(';');
    if (semi == std::string::npos || TrimSpaces(v.substr(0, semi)) != AsciiLower(authserv_id))
      continue;
    size_t d = v.find("dmarc=pass");
    if (d == std::string::npos) return false;
    size_t hf = v.find("header.from=", d);
    if (hf == std::string::npos) return false;
    std::string_view rest = std::string_view(v).substr(hf + 12);
    size_t end = rest.find_first_of(" ;\t");
    return rest.substr(0, end) == AsciiLower(from_domain);
  }
  return false;
}

}  // namespace

namespace {

// One text in the chosen language; both: English, a blank line, Japanese.
std::string InLanguage(MailLanguage lang, const std::string& en, const std::string& ja) {
  switch (lang) {
    case MailLanguage::kEnglish:
      return en;
    case MailLanguage::kJapanese:
      return ja;
    case MailLanguage::kBoth:
      break;
  }
  return en + "\r\n" + ja;
}

std::string SubjectIn(MailLanguage lang, const std::string& en, const std::string& ja) {
  if (lang == MailLanguage::kEnglish) return en;
  if (lang == MailLanguage::kJapanese) return ja;
  return en + " / " + ja;
}

}  // namespace

ListMail ConfirmMail(const ListInfo& list, const std::string& address, bool join,
                     MailLanguage lang) {
  ListMail m;
  if (join) {
    m.subject = SubjectIn(lang, "Confirm: join " + list.address, "登録の確認: " + list.address);
    if (!list.confirm_text.empty()) {
      m.body = Fill(list.confirm_text, list, address);
      return m;
    }
    m.body = Fill(InLanguage(lang,
                             "Someone (hopefully you) asked to add {address} to the mailing list "
                             "{list}.\r\n"
                             "To confirm, reply to this message (the reply's text does not "
                             "matter).\r\n"
                             "If you did not ask for this, ignore this message: nothing "
                             "happens.\r\n",
                             "メーリングリスト {list} への {address} の登録を受け付けました。\r\n"
                             "登録を確定するには、このメールにそのまま返信してください"
                             "（本文は何でも構いません）。\r\n"
                             "お心当たりのない場合は、このメールを無視してください。"
                             "登録は行われません。\r\n"),
                  list, address);
    return m;
  }
  m.subject = SubjectIn(lang, "Confirm: leave " + list.address, "退会の確認: " + list.address);
  m.body = Fill(InLanguage(lang,
                           "Someone asked to remove {address} from the mailing list {list}.\r\n"
                           "To confirm, reply to this message.\r\n",
                           "メーリングリスト {list} からの {address} の退会を受け付けました。\r\n"
                           "退会を確定するには、このメールに返信してください。\r\n"),
                list, address);
  return m;
}

ListMail WelcomeMail(const ListInfo& list, const std::string& address, MailLanguage lang) {
  ListMail m;
  m.subject = SubjectIn(lang, "Welcome to " + list.address, "登録完了: " + list.address);
  if (!list.welcome_text.empty()) {
    m.body = Fill(list.welcome_text, list, address);
    return m;
  }
  auto [local, domain] = SplitAddress(list.address);
  std::string leave = local + "+leave@" + domain;
  m.body = Fill(InLanguage(lang,
                           "Welcome: {address} is now a member of {list}.\r\n"
                           "To leave, send an empty message to " +
                               leave + ".\r\n",
                           "{address} は {list} に登録されました。\r\n"
                           "退会するには " +
                               leave + " へ空のメールを送ってください。\r\n"),
                list, address);
  return m;
}

ListMail LeftMail(const ListInfo& list, const std::string& address, MailLanguage lang) {
  auto [local, domain] = SplitAddress(list.address);
  std::string join = local + "+join@" + domain;
  ListMail m;
  m.subject = SubjectIn(lang, "You left " + list.address, "退会しました: " + list.address);
  m.body = Fill(InLanguage(lang,
                           "{address} no longer receives {list}.\r\n"
                           "To join again, send an empty message to " +
                               join + ".\r\n",
                           "{address} は {list} から退会しました。\r\n"
                           "再登録は " +
                               join + " へ空のメールを送ってください。\r\n"),
                list, address);
  return m;
}

ListMail HelpMail(const ListInfo& list, MailLanguage lang) {
  auto [local, domain] = SplitAddress(list.address);
  bool announce = list.mode == store::ListMode::kAnnounce;
  ListMail m;
  m.subject = SubjectIn(lang, "Help: " + list.address, "ヘルプ: " + list.address);
  m.body = Fill(
      InLanguage(lang,
                 "The mailing list {list}:\r\n  join:  send an empty message to " + local +
                     "+join@" + domain + "\r\n  leave: send an empty message to " + local +
                     "+leave@" + domain + "\r\n  post:  " +
                     (announce ? std::string("owners only") : "write to " + list.address) + "\r\n",
                 "メーリングリスト {list}\r\n  登録: " + local + "+join@" + domain +
                     " へ空のメール\r\n  退会: " + local + "+leave@" + domain +
                     " へ空のメール\r\n  投稿: " +
                     (announce ? std::string("管理者のみ") : list.address + " へ送信") + "\r\n"),
      list, "");
  return m;
}

ListMail ModerationMail(const ListInfo& list, const std::string& poster, const std::string& subject,
                        const std::string& reason, int64_t held_id, MailLanguage lang) {
  ListMail m;
  m.subject = SubjectIn(lang, "Held for moderation: " + subject, "承認待ち: " + subject);
  std::string id = std::to_string(held_id);
  m.body = InLanguage(
      lang,
      "A post to " + list.address + " is held for moderation.\r\nFrom: " + poster +
          "\r\nSubject: " + subject + "\r\nReason: " + reason +
          "\r\n\r\nReply to this message with \"approve\" or \"reject\" as the first "
          "line,\r\nor run: hato list moderate " +
          list.address + " --approve " + id + "\r\n",
      "メーリングリスト " + list.address + " への投稿が承認待ちです。\r\n差出人: " + poster +
          "\r\n件名: " + subject + "\r\n理由: " + reason +
          "\r\n\r\nこのメールに返信し、最初の行に approve（承認）または reject（却下）と"
          "書いてください。\r\nまたは: hato list moderate " +
          list.address + " --approve " + id + "\r\n");
  return m;
}

Engine::Engine(EngineOptions options) : o_(std::move(options)) {
  if (!o_.now) o_.now = [] { return static_cast<int64_t>(std::time(nullptr)); };
}

std::string Engine::NewToken() {
  thread_local std::random_device rd;
  std::string raw(kTokenHexChars / 2, '\0');
  for (auto& c : raw) c = static_cast<char>(rd() & 0xff);
  return HexEncode(raw);
}

MailLanguage Engine::LanguageFor(const std::string& address, std::string_view request) {
  std::string account_language;
  auto [local, domain] = SplitAddress(address);
  auto is_local = o_.store->IsLocalDomain(domain);
  if (is_local && *is_local) {
    auto account = o_.store->ResolveRecipient(address);
    if (account) {
      auto language = o_.store->GetAccountLanguage(account->id);
      if (language) account_language = *language;
    }
  }
  return ChooseMailLanguage(account_language, request);
}

Result<bool> Engine::Handles(std::string_view address) {
  auto [local, domain] = SplitAddress(AsciiLower(address));
  ListAddress a = ParseListLocal(local);
  auto list = o_.store->FindList(a.list_local + "@" + domain);
  if (!list) {
    if (list.error().kind == ErrorKind::kNotFound) return false;
    return list.error();
  }
  return true;
}

Reply Engine::Receive(const Inbound& in) {
  auto [local, domain] = SplitAddress(AsciiLower(in.rcpt));
  ListAddress a = ParseListLocal(local);
  auto list = o_.store->FindList(a.list_local + "@" + domain);
  if (!list) {
    if (list.error().kind == ErrorKind::kNotFound) {
      return Reply{550, "5.1.1 <" + in.rcpt + ">: no such list"};
    }
    return Temporary(list.error());
  }
  switch (a.kind) {
    case AddressKind::kPost:
      return Post(*list, in);
    case AddressKind::kJoin:
      return Join(*list, in);
    case AddressKind::kLeave:
      return Leave(*list, in);
    case AddressKind::kConfirm:
      return Confirm(*list, in, a.arg);
    case AddressKind::kModerate:
      return ModerateByMail(*list, in, a.arg);
    case AddressKind::kBounces:
      return Bounce(*list, in, a.arg);
    case AddressKind::kHelp:
      return Help(*list, in);
    case AddressKind::kOwner:
      return Owner(*list, in);
  }
  return Reply{550, "5.1.1 unknown list address"};
}

Reply Engine::Post(const ListInfo& list, const Inbound& in) {
  auto cfg = o_.config();
  if (IsOwnPost(in.content, list.address)) {
    // Loop detection: our own List-Id or X-Loop came back (RFC 2919 section 4 allows this use).
    return Reply{550, "5.4.6 Mail loop: this message already went through " + list.address};
  }
  uint64_t max_size = list.max_message_size ? list.max_message_size : cfg->lists.max_message_size;
  if (in.content.size() > max_size) {
    return Reply{552, "5.3.4 Message too big for the list " + list.address + " (limit " +
                          std::to_string(max_size) + " bytes)"};
  }
  auto scan = mime::internal::ScanHeader(in.content);
  const auto* from_field = mime::internal::FindField(scan.fields, "From");
  std::string from = from_field ? FirstAddress(from_field->value) : "";
  // Who is posting, and how sure we are: the authenticated submission
  // identity, or a From whose domain passed DMARC here; the From header
  // alone only counts for discussion lists.
  std::string poster = !in.authenticated.empty() ? in.authenticated : from;
  if (poster.empty()) poster = AsciiLower(in.mail_from);
  bool verified =
      !in.authenticated.empty() ||
      (!from.empty() && DmarcPass(in.content, in.authserv_id, SplitAddress(from).second));
  auto member = o_.store->FindListMember(list.id, poster);
  if (!member && member.error().kind != ErrorKind::kNotFound) return Temporary(member.error());
  uint32_t roles = member ? member->roles : 0;
  std::string hold;
  if (list.mode == store::ListMode::kAnnounce) {
    if (!verified) {
      hold =
          "announce list: the sender is not authenticated (submission login or DMARC-aligned From)";
    } else if (!(roles & (store::kListOwner | store::kListModerator))) {
      hold = "announce list: " + poster + " is not an owner or authorized sender";
    }
  } else if (roles == 0) {
    hold = "discussion list: " + poster + " is not a member";
  }
  if (hold.empty()) {
    size_t per_hour =
        list.max_posts_per_hour ? list.max_posts_per_hour : cfg->lists.max_posts_per_hour;
    if (per_hour > 0) {
      auto n = o_.store->CountListPostsSince(list.id, o_.now() - 3600);
      if (!n) return Temporary(n.error());
      if (*n >= per_hour)
        hold = "the list's rate limit (" + std::to_string(per_hour) + " posts/hour)";
    }
  }
  if (IsAutomatic(in.content) && hold.empty() && list.mode == store::ListMode::kDiscussion &&
      in.authenticated.empty()) {
    hold = "an automatic message (Auto-Submitted or Precedence)";
  }
  if (!hold.empty()) {
    auto held = o_.store->HoldListPost(list.id, in.content, poster, hold);
    if (!held) return Temporary(held.error());
    spdlog::info("lists: {} post from <{}> held ({}): {}", list.address, poster, *held, hold);
    auto members = o_.store->ListListMembers(list.id);
    if (!members) return Temporary(members.error());
    auto [local, domain] = SplitAddress(list.address);
    std::string subject = SubjectOf(in.content);
    for (const auto& m : *members) {
      if (!(m.roles & (store::kListOwner | store::kListModerator))) continue;
      store::ListToken t;
      t.token = NewToken();
      t.list_id = list.id;
      t.kind = store::ListTokenKind::kModerate;
      t.address = m.address;
      t.held_id = *held;
      t.created_at = o_.now();
      t.expires_at = t.created_at + int64_t{cfg->lists.confirm_ttl_hours} * 3600;
      if (auto st = o_.store->CreateListToken(t); !st) return Temporary(st.error());
      ListMail mail =
          ModerationMail(list, poster, subject, hold, *held, LanguageFor(m.address, ""));
      auto st = Send(list, m.address, local + "+moderate-" + t.token + "@" + domain, mail.subject,
                     mail.body);
      if (!st) return Temporary(st.error());
    }
    return Reply{250, "2.0.0 Held for moderation by the list owners"};
  }
  auto receipt = Fanout(list, in.content, poster, 0, in.smtputf8, in.eight_bit);
  if (!receipt) return Temporary(receipt.error());
  return Reply{250, "2.0.0 Posted to " + std::to_string(receipt->recipients) + " members as post " +
                        std::to_string(receipt->post_id)};
}

Result<store::ListPostReceipt> Engine::Fanout(const ListInfo& list, std::string_view content,
                                              const std::string& poster, int64_t held_id,
                                              bool smtputf8, bool eight_bit) {
  auto cfg = o_.config();
  auto [local, domain] = SplitAddress(list.address);
  PostHeaders h;
  h.list_address = list.address;
  h.list_name = list.name;
  h.announce = list.mode == store::ListMode::kAnnounce;
  h.per_member_unsubscribe = !cfg->lists.unsubscribe_url.empty();
  h.archive_url = cfg->lists.archive_url;
  std::string rewrite = list.dmarc_rewrite.empty() ? cfg->lists.dmarc_rewrite : list.dmarc_rewrite;
  auto scan = mime::internal::ScanHeader(content);
  const auto* from_field = mime::internal::FindField(scan.fields, "From");
  std::string from = from_field ? FirstAddress(from_field->value) : "";
  std::string from_domain = SplitAddress(from).second;
  if (rewrite == "always") {
    h.rewrite_from = true;
  } else if (rewrite == "auto" && !from_domain.empty() && from_domain != domain &&
             o_.dmarc_policy) {
    // RFC 7489 section 6.6 / RFC 7960: a p=quarantine/reject From would fail
    // DMARC at members' providers once the list changed the message.
    std::string p = o_.dmarc_policy(from_domain);
    h.rewrite_from = p == "quarantine" || p == "reject";
  }
  std::string post = BuildPost(content, h);
  // With one-click unsubscribe each copy is signed at delivery, with its own
  // List-Unsubscribe (MemberCopy); otherwise the post is signed once here.
  if (o_.sign && !h.per_member_unsubscribe) {
    auto sig = o_.sign(domain, post);
    if (!sig) return sig.error();
    post = *sig + post;
  }
  store::ListPostRequest req;
  req.list_id = list.id;
  req.content = std::move(post);
  req.bounce_address = local + "-bounces@" + domain;
  req.sender = poster;
  req.subject = SubjectOf(content);
  req.smtputf8 = smtputf8;
  req.eight_bit = eight_bit;
  req.held_id = held_id;
  // The archive copy's MIME tree, so IMAP FETCH never parses it (issue 14 item 7).
  if (auto tree = mime::Parse(req.content)) req.mime = mime::Serialize(*tree);
  store::Store* store = o_.store;
  auto receipt = store::Wait<store::ListPostReceipt>(
      [&](store::Done<store::ListPostReceipt> done) { store->PostToList(std::move(req), done); });
  if (!receipt) return receipt;
  spdlog::info("lists: {} post {} from <{}> queued for {} members (queue {})", list.address,
               receipt->post_id, poster, receipt->recipients, receipt->queue_id);
  if (o_.queued) o_.queued();
  return receipt;
}

Reply Engine::Join(const ListInfo& list, const Inbound& in) {
  auto cfg = o_.config();
  if (in.mail_from.empty() || IsAutomatic(in.content)) {
    return Reply{250, "2.0.0 Ignored: automatic messages cannot join"};
  }
  // The confirmation goes to the From address (else the envelope sender),
  // never to Reply-To: a forged request only reaches the real owner.
  auto scan = mime::internal::ScanHeader(in.content);
  const auto* from_field = mime::internal::FindField(scan.fields, "From");
  std::string address = from_field ? FirstAddress(from_field->value) : "";
  if (address.empty()) address = AsciiLower(in.mail_from);
  int64_t now = o_.now();
  auto per_address = o_.store->CountListTokens(list.id, address, "", now - 3600);
  if (!per_address) return Temporary(per_address.error());
  if (*per_address >= cfg->lists.max_join_requests_per_hour) {
    return Reply{450, "4.7.1 Too many join requests for " + address + ", try again later"};
  }
  if (!in.peer_ip.empty()) {
    auto per_source = o_.store->CountListTokens(list.id, "", in.peer_ip, now - 3600);
    if (!per_source) return Temporary(per_source.error());
    if (*per_source >= cfg->lists.max_join_requests_per_source) {
      return Reply{450, "4.7.1 Too many join requests from " + in.peer_ip + ", try again later"};
    }
  }
  store::ListToken t;
  t.token = NewToken();
  t.list_id = list.id;
  t.kind = store::ListTokenKind::kJoin;
  t.address = address;
  t.source = in.peer_ip;
  t.created_at = now;
  t.expires_at = now + int64_t{cfg->lists.confirm_ttl_hours} * 3600;
  if (auto st = o_.store->CreateListToken(t); !st) return Temporary(st.error());
  auto [local, domain] = SplitAddress(list.address);
  ListMail mail = ConfirmMail(list, address, true, LanguageFor(address, in.content));
  auto st =
      Send(list, address, local + "+confirm-" + t.token + "@" + domain, mail.subject, mail.body);
  if (!st) return Temporary(st.error());
  spdlog::info("lists: {} join requested for <{}> from {}", list.address, address, in.peer_ip);
  return Reply{250, "2.0.0 A confirmation was sent to " + address};
}

Reply Engine::Confirm(const ListInfo& list, const Inbound& in, const std::string& token) {
  if (in.mail_from.empty()) return Reply{250, "2.0.0 Ignored: a report is no confirmation"};
  auto t = o_.store->ConsumeListToken(token, o_.now());
  if (!t) {
    if (t.error().kind == ErrorKind::kNotFound) {
      return Reply{550,
                   "5.7.1 This confirmation is unknown, already used or expired; "
                   "send a new request"};
    }
    return Temporary(t.error());
  }
  if (t->list_id != list.id ||
      (t->kind != store::ListTokenKind::kJoin && t->kind != store::ListTokenKind::kLeave)) {
    return Reply{550, "5.7.1 This confirmation is not for " + list.address};
  }
  if (t->kind == store::ListTokenKind::kLeave) {
    auto st = o_.store->RemoveListMember(list.id, t->address);
    if (!st && st.error().kind != ErrorKind::kNotFound) return Temporary(st.error());
    spdlog::info("lists: {} <{}> left (confirmed)", list.address, t->address);
    return Reply{250, "2.0.0 " + t->address + " left " + list.address};
  }
  store::ListMember m;
  m.address = t->address;
  m.roles = store::kListReceives;
  auto change = o_.store->AddListMembers(list.id, {m}, true);
  if (!change) return Temporary(change.error());
  spdlog::info("lists: {} <{}> joined (confirmed)", list.address, t->address);
  auto [local, domain] = SplitAddress(list.address);
  ListMail mail = WelcomeMail(list, t->address, LanguageFor(t->address, in.content));
  auto st = Send(list, t->address, local + "+owner@" + domain, mail.subject, mail.body);
  if (!st) spdlog::warn("lists: welcome to <{}> not sent: {}", t->address, st.error().message);
  return Reply{250, "2.0.0 " + t->address + " joined " + list.address};
}

Reply Engine::Leave(const ListInfo& list, const Inbound& in) {
  if (in.mail_from.empty() || IsAutomatic(in.content)) {
    return Reply{250, "2.0.0 Ignored: automatic messages cannot leave"};
  }
  auto scan = mime::internal::ScanHeader(in.content);
  const auto* from_field = mime::internal::FindField(scan.fields, "From");
  std::string address = from_field ? FirstAddress(from_field->value) : "";
  if (address.empty()) address = AsciiLower(in.mail_from);
  auto member = o_.store->FindListMember(list.id, address);
  if (!member) {
    std::string sender = AsciiLower(in.mail_from);
    if (member.error().kind == ErrorKind::kNotFound && sender != address) {
      address = sender;
      member = o_.store->FindListMember(list.id, address);
    }
  }
  if (!member) {
    if (member.error().kind == ErrorKind::kNotFound) {
      return Reply{250, "2.0.0 " + address + " is not a member of " + list.address};
    }
    return Temporary(member.error());
  }
  // RFC 2369 mailto unsubscribe: one message, no second step (RFC 8058's
  // intent); the member is told, so a forged request is noticed.
  if (auto st = o_.store->RemoveListMember(list.id, address); !st) {
    if (st.error().kind != ErrorKind::kNotFound) return Temporary(st.error());
  }
  spdlog::info("lists: {} <{}> left", list.address, address);
  auto [local, domain] = SplitAddress(list.address);
  ListMail mail = LeftMail(list, address, LanguageFor(address, in.content));
  auto st = Send(list, address, local + "+owner@" + domain, mail.subject, mail.body);
  if (!st) spdlog::warn("lists: leave notice to <{}> not sent: {}", address, st.error().message);
  return Reply{250, "2.0.0 " + address + " left " + list.address};
}

Reply Engine::ModerateByMail(const ListInfo& list, const Inbound& in, const std::string& token) {
  if (in.mail_from.empty()) return Reply{250, "2.0.0 Ignored: a report is no decision"};
  std::optional<bool> decision = ModerationDecision(in.content);
  if (!decision) {
    return Reply{550, "5.7.1 Say \"approve\" or \"reject\" on the first line of your reply"};
  }
  auto t = o_.store->ConsumeListToken(token, o_.now());
  if (!t) {
    if (t.error().kind == ErrorKind::kNotFound) {
      return Reply{550, "5.7.1 This moderation request is unknown, already answered or expired"};
    }
    return Temporary(t.error());
  }
  if (t->list_id != list.id || t->kind != store::ListTokenKind::kModerate) {
    return Reply{550, "5.7.1 This moderation request is not for " + list.address};
  }
  auto st = Moderate(list, t->held_id, *decision);
  if (!st) {
    if (st.error().kind == ErrorKind::kNotFound) {
      return Reply{550, "5.7.1 The post was already approved or rejected"};
    }
    return Temporary(st.error());
  }
  spdlog::info("lists: {} held post {} {} by <{}>", list.address, t->held_id,
               *decision ? "approved" : "rejected", t->address);
  return Reply{250, std::string("2.0.0 Post ") + (*decision ? "approved" : "rejected")};
}

Status Engine::Moderate(const ListInfo& list, int64_t held_id, bool approve) {
  if (!approve) return o_.store->DropHeldPost(held_id);
  auto held = o_.store->ListHeldPosts(list.id);
  if (!held) return held.error();
  std::string sender;
  bool found = false;
  for (const auto& h : *held) {
    if (h.id == held_id) {
      sender = h.sender;
      found = true;
    }
  }
  if (!found) return Err(ErrorKind::kNotFound, "no held post " + std::to_string(held_id));
  auto content = o_.store->ReadHeldPost(held_id);
  if (!content) return content.error();
  bool eight_bit = false;
  for (unsigned char c : *content) eight_bit = eight_bit || c >= 0x80;
  auto receipt = Fanout(list, *content, sender, held_id, false, eight_bit);
  if (!receipt) return receipt.error();
  return Ok();
}

Reply Engine::Bounce(const ListInfo& list, const Inbound& in, const std::string& member) {
  // A bounce is never answered (RFC 3464 section 2, RFC 5321 section 4.5.5).
  DsnReport dsn = ParseDsn(in.content);
  std::string reason;
  bool failed = false;
  int64_t post_id = 0;
  if (dsn.is_dsn) {
    if (dsn.envid.rfind("post-", 0) == 0) post_id = std::atoll(dsn.envid.c_str() + 5);
    for (const auto& r : dsn.recipients) {
      if (r.action == "failed") {
        failed = true;
        reason = r.status + (r.diagnostic.empty() ? "" : " " + r.diagnostic);
      }
    }
  }
  if (member.empty() || !failed) {
    spdlog::info("lists: {} bounce ignored (member <{}>, dsn={}, failed={})", list.address, member,
                 dsn.is_dsn, failed);
    return Reply{250, "2.0.0 Ok"};
  }
  auto after = o_.store->RecordListBounce(list.id, member, reason, list.bounce_threshold);
  if (!after) {
    if (after.error().kind == ErrorKind::kNotFound) return Reply{250, "2.0.0 Ok"};
    return Temporary(after.error());
  }
  if (post_id > 0) {
    auto st = o_.store->RecordListPostFailure(post_id, member, "bounced later: " + reason);
    if (!st) return Temporary(st.error());
  }
  spdlog::info("lists: {} bounce for <{}>: score {}{}: {}", list.address, member,
               after->bounce_score, after->disabled ? " (disabled)" : "", reason);
  return Reply{250, "2.0.0 Ok"};
}

Reply Engine::Help(const ListInfo& list, const Inbound& in) {
  if (in.mail_from.empty() || IsAutomatic(in.content)) return Reply{250, "2.0.0 Ok"};
  auto [local, domain] = SplitAddress(list.address);
  std::string to = AsciiLower(in.mail_from);
  ListMail mail = HelpMail(list, LanguageFor(to, in.content));
  auto st = Send(list, to, local + "+owner@" + domain, mail.subject, mail.body);
  if (!st) return Temporary(st.error());
  return Reply{250, "2.0.0 Help sent"};
}

Reply Engine::Owner(const ListInfo& list, const Inbound& in) {
  auto members = o_.store->ListListMembers(list.id);
  if (!members) return Temporary(members.error());
  size_t sent = 0;
  for (const auto& m : *members) {
    if (!(m.roles & store::kListOwner)) continue;
    if (auto st = SendRaw(list, m.address, in.content); !st) return Temporary(st.error());
    ++sent;
  }
  return Reply{250, "2.0.0 Sent to " + std::to_string(sent) + " owners"};
}

Status Engine::Send(const ListInfo& list, const std::string& to, const std::string& from,
                    const std::string& subject, const std::string& body) {
  auto [local, domain] = SplitAddress(list.address);
  std::string name = list.name.empty() ? local : list.name;
  std::string id = NewToken();
  std::string m;
  m += "From: \"" + name + "\" <" + from + ">\r\n";
  m += "Reply-To: <" + from + ">\r\n";
  m += "To: <" + to + ">\r\n";
  m += "Subject: " + EncodeHeaderText(subject) + "\r\n";
  m += "Date: " + Rfc5322Date(o_.now()) + "\r\n";
  m += "Message-ID: <" + id + "@" + domain + ">\r\n";
  // RFC 3834 section 5: generated, not a reply a responder should answer.
  m += "Auto-Submitted: auto-generated\r\n";
  m += "Precedence: list\r\n";
  m += "X-Loop: " + list.address + "\r\n";
  m += "List-Id: " + name + " <" + local + "." + domain + ">\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=UTF-8\r\n";
  m += "Content-Transfer-Encoding: base64\r\n\r\n";
  m += Base64Lines(body);
  if (o_.sign) {
    auto sig = o_.sign(domain, m);
    if (!sig) return sig.error();
    m = *sig + m;
  }
  return SendRaw(list, to, std::move(m));
}

Status Engine::SendRaw(const ListInfo& list, const std::string& to, std::string message) {
  auto [local, domain] = SplitAddress(list.address);
  std::string bounces = local + "-bounces@" + domain;
  auto [to_local, to_domain] = SplitAddress(to);
  auto is_local = o_.store->IsLocalDomain(to_domain);
  if (!is_local) return is_local.error();
  store::DeliveryRequest req;
  req.received_at = o_.now();
  req.return_path = bounces;
  if (*is_local) {
    auto account = o_.store->ResolveRecipient(to);
    if (!account) {
      if (account.error().kind == ErrorKind::kNotFound) return Ok();  // nobody to tell
      return account.error();
    }
    req.account_ids.push_back(account->id);
    req.content = "Return-Path: <" + bounces + ">\r\n" + message;
    auto tree = mime::Parse(req.content);
    if (tree) req.mime = mime::Serialize(*tree);
  } else {
    store::OutboundRequest out;
    out.content = std::move(message);
    out.sender = bounces;
    out.recipients.push_back(store::OutboundRecipient{to, 0, ""});
    req.outbound = std::move(out);
  }
  store::Store* store = o_.store;
  auto receipt = store::Wait<store::DeliveryReceipt>(
      [&](store::Done<store::DeliveryReceipt> done) { store->Deliver(std::move(req), done); });
  if (!receipt) return receipt.error();
  if (receipt->queue_id != 0 && o_.queued) o_.queued();
  return Ok();
}

Result<std::string> MemberCopy(const MemberCopyOptions& o, std::string_view bounce_address,
                               std::string_view member, std::string_view content) {
  auto scan = mime::internal::ScanHeader(content);
  // Signed once at fan-out (one-click was off then): sent as stored.
  if (mime::internal::FindField(scan.fields, "List-Unsubscribe")) return std::string(content);
  auto [blocal, domain] = SplitAddress(bounce_address);
  constexpr std::string_view kBounces = "-bounces";
  if (blocal.size() <= kBounces.size() ||
      blocal.compare(blocal.size() - kBounces.size(), kBounces.size(), kBounces) != 0) {
    return std::string(content);  // not a list post
  }
  std::string list = blocal.substr(0, blocal.size() - kBounces.size()) + "@" + domain;
  std::string url;
  if (!o.unsubscribe_url.empty() && !o.key.empty()) {
    url = UnsubscribeUrl(o.unsubscribe_url, UnsubscribeToken(o.key, list, member));
  }
  std::string copy = MemberUnsubscribeFields(list, url);
  copy += content;
  if (o.sign) {
    auto sig = o.sign(domain, copy);
    if (!sig) return sig.error();
    copy.insert(0, *sig);
  }
  return copy;
}

Result<std::string> LoadUnsubscribeKey(io::FileSystem& fs, const std::string& data_dir) {
  std::string path = data_dir + "/" + std::string(kUnsubscribeKeyFile);
  if (fs.Exists(path)) {
    auto text = fs.ReadFile(path);
    if (!text) return text.error();
    // The hex digits only (the file ends with a newline; TrimSpaces keeps it).
    std::string key;
    for (char c : *text) {
      if (std::isxdigit(static_cast<unsigned char>(c))) key += c;
    }
    if (key.size() < 32) return Err(ErrorKind::kInvalid, path + ": the key is too short");
    return key;
  }
  thread_local std::random_device rd;
  std::string raw(32, '\0');
  for (auto& c : raw) c = static_cast<char>(rd() & 0xff);
  std::string key = HexEncode(raw);
  if (auto st = fs.WriteFileAtomic(path, key + "\n"); !st) return st.error();
  return key;
}

}  // namespace hato::lists
