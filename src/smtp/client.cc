#include "smtp/client.h"

#include "base/strings.h"
#include "io/net.h"
#include "smtp/command.h"

namespace hato::smtp {
namespace {

// Reads one reply; a reply with code 0 means the connection failed or the
// server spoke garbage.
awaitable<Reply> ReadReply(io::Connection& conn, std::chrono::seconds timeout) {
  ReplyReader reader;
  while (true) {
    io::LineResult line = co_await conn.ReadLine(kMaxReplyLine, timeout);
    if (line.status != io::ReadStatus::kOk) {
      Reply r;
      r.lines.push_back(line.status == io::ReadStatus::kTimeout ? "timeout waiting for the server"
                                                                : "connection lost");
      co_return r;
    }
    Result<bool> done = reader.Feed(line.line);
    if (!done) {
      Reply r;
      r.lines.push_back("bad reply from the server: " + done.error().message);
      co_return r;
    }
    if (*done) co_return reader.Take();
  }
}

// g++ 12: callers pass a named string (no temporaries inside co_await).
awaitable<Reply> Exchange(io::Connection& conn, const std::string& text,
                          std::chrono::seconds timeout) {
  std::string line = text + "\r\n";
  bool sent = co_await conn.Write(line);
  if (!sent) {
    Reply r;
    r.lines.push_back("connection lost");
    co_return r;
  }
  Reply reply = co_await ReadReply(conn, timeout);
  co_return reply;
}

// The reply to a pipelined DATA whose transaction has no recipient: a 354
// (a server may give it, RFC 2920 section 3.1) is answered with the lone
// "." that ends an empty message, and that reply is read too. False when the
// connection failed.
awaitable<bool> EndRefusedData(io::Connection& conn, std::chrono::seconds timeout) {
  Reply data = co_await ReadReply(conn, timeout);
  if (data.code == 0) co_return false;
  if (data.code != 354) co_return true;
  const std::string dot = ".\r\n";
  if (!co_await conn.Write(dot)) co_return false;
  Reply end = co_await ReadReply(conn, timeout);
  co_return end.code != 0;
}

std::string MailCommand(const ClientEnvelope& env, const Extensions& ext, size_t size) {
  std::string cmd = "MAIL FROM:<" + env.sender + ">";
  if (ext.size) cmd += " SIZE=" + std::to_string(size);
  if (env.eight_bit && ext.eight_bit_mime) cmd += " BODY=8BITMIME";
  if (env.smtputf8 && ext.smtputf8) cmd += " SMTPUTF8";
  if (ext.dsn) {
    cmd += env.ret_hdrs ? " RET=HDRS" : " RET=FULL";
    if (!env.envid.empty()) cmd += " ENVID=" + EncodeXtext(env.envid);
  }
  return cmd;
}

std::string RcptCommand(const ClientRecipient& r, const Extensions& ext) {
  std::string cmd = "RCPT TO:<" + r.address + ">";
  if (ext.dsn) {
    if (r.notify) {
      std::string list;
      for (auto [bit, name] : {std::pair{kNotifyNever, "NEVER"},
                               {kNotifySuccess, "SUCCESS"},
                               {kNotifyFailure, "FAILURE"},
                               {kNotifyDelay, "DELAY"}}) {
        if (r.notify & bit) list += std::string(list.empty() ? "" : ",") + name;
      }
      cmd += " NOTIFY=" + list;
    }
    if (!r.orcpt.empty()) {
      size_t semi = r.orcpt.find(';');
      cmd += " ORCPT=" + r.orcpt.substr(0, semi + 1) + EncodeXtext(r.orcpt.substr(semi + 1));
    }
  }
  return cmd;
}

// RFC 4954 section 4: AUTH PLAIN with an initial response, else AUTH LOGIN
// (user name and password each answering a 334). The reply to the last step,
// or a failure without a code when the server offers neither mechanism.
awaitable<Reply> Authenticate(io::Connection& conn, const ClientOptions& o, const Extensions& ext,
                              std::chrono::seconds t) {
  if (ext.auth_plain) {
    std::string plain;
    plain += '\0';
    plain += o.auth_user;
    plain += '\0';
    plain += o.auth_password;
    const std::string cmd = "AUTH PLAIN " + Base64Encode(plain);
    Reply r = co_await Exchange(conn, cmd, t);
    co_return r;
  }
  if (ext.auth_login) {
    const std::string cmd = "AUTH LOGIN";
    Reply r = co_await Exchange(conn, cmd, t);
    if (r.code != 334) co_return r;
    const std::string user = Base64Encode(o.auth_user);
    r = co_await Exchange(conn, user, t);
    if (r.code != 334) co_return r;
    const std::string pass = Base64Encode(o.auth_password);
    r = co_await Exchange(conn, pass, t);
    co_return r;
  }
  Reply r;
  r.lines.push_back("4.7.0 the relay host offers no AUTH mechanism we speak (PLAIN, LOGIN)");
  co_return r;
}

// Runs options.after_tls once TLS is up; false (with the reason in
// result.failure) when it refuses the session.
bool AfterTls(const ClientOptions& options, ClientResult& result) {
  if (!options.after_tls) return true;
  std::string reason = options.after_tls();
  if (reason.empty()) return true;
  result.after_tls_failed = true;
  result.failure.lines.push_back(std::move(reason));
  return false;
}

// An address that only SMTPUTF8 can carry (RFC 6531).
bool NeedsUtf8(const ClientEnvelope& env) {
  bool needs = false;
  for (unsigned char ch : env.sender) needs = needs || ch >= 0x80;
  for (const auto& r : env.recipients) {
    for (unsigned char ch : r.address) needs = needs || ch >= 0x80;
  }
  return needs;
}

// A transaction's PIPELINING group (RFC 2920 section 3.1): MAIL, every
// RCPT, and DATA last.
std::string Group(const ClientEnvelope& env, const Extensions& ext, const std::string& mail_cmd) {
  std::string group = mail_cmd + "\r\n";
  for (const auto& r : env.recipients) group += RcptCommand(r, ext) + "\r\n";
  return group + "DATA\r\n";
}

}  // namespace

ClientSession::ClientSession(tcp::socket socket, ClientOptions options)
    : conn_(std::make_unique<io::Connection>(std::move(socket), options.tls)),
      options_(std::move(options)) {}

ClientSession::~ClientSession() = default;

void ClientSession::Close() {
  open_ = false;
  group_sent_ = false;
  conn_->Close();
}

bool ClientSession::usable() const {
  // Unread input between transactions is a reply to nothing (a 421 before
  // the server hangs up): the session is not trusted with another one;
  // unless the next transaction's group went with the last body, whose
  // replies it then is.
  return open_ && (group_sent_ || conn_->buffer().empty()) && !conn_->PeerGone();
}

// RSET after a transaction that ended before its final reply (RFC 5321
// section 4.1.1.5), so the next one starts clean; a session whose RSET
// fails is closed, never reused.
awaitable<void> ClientSession::Reset() {
  const std::string rset = "RSET";
  Reply r = co_await Exchange(*conn_, rset, options_.command_timeout);
  if (r.code != 250) Close();
}

awaitable<void> ClientSession::Quit() {
  if (!open_) co_return;
  const std::string quit = "QUIT";
  co_await Exchange(*conn_, quit, options_.command_timeout);
  Close();
}

awaitable<bool> ClientSession::Open(ClientResult& result) {
  io::Connection& conn = *conn_;
  const ClientOptions& options = options_;
  auto t = options.command_timeout;
  if (options.implicit_tls && options.tls) {
    std::string sni = options.server;
    if (!co_await conn.StartTlsClient(std::move(sni), t, options.verify_tls)) {
      result.failure.lines.push_back(options.verify_tls
                                         ? "4.7.5 TLS handshake or certificate verification failed"
                                         : "TLS handshake failed");
      Close();
      co_return false;
    }
    result.tls = tls_ = true;
    if (!AfterTls(options, result)) {
      Close();
      co_return false;
    }
  }
  Reply greeting = co_await ReadReply(conn, t);
  if (greeting.code != 220) {
    result.failure = std::move(greeting);
    Close();
    co_return false;
  }
  open_ = true;
  const std::string ehlo_cmd = "EHLO " + options.helo;
  const std::string helo_cmd = "HELO " + options.helo;
  Reply ehlo = co_await Exchange(conn, ehlo_cmd, t);
  if (ehlo.code != 250) {
    // RFC 5321 section 3.2: fall back to HELO for a server without ESMTP.
    ehlo = co_await Exchange(conn, helo_cmd, t);
    if (ehlo.code != 250) {
      result.failure = std::move(ehlo);
      Close();
      co_return false;
    }
    ehlo.lines.resize(1);
  }
  ext_ = ParseEhlo(ehlo);
  if (ext_.starttls && options.tls && !tls_) {
    const std::string starttls = "STARTTLS";
    Reply ready = co_await Exchange(conn, starttls, t);
    if (ready.code == 220) {
      std::string sni = options.server;
      bool secured = co_await conn.StartTlsClient(std::move(sni), t, options.verify_tls);
      if (!secured) {
        result.failure.lines.push_back(
            options.verify_tls ? "4.7.5 TLS handshake or certificate verification failed"
                               : "TLS handshake failed");
        Close();
        co_return false;
      }
      result.tls = tls_ = true;
      if (!AfterTls(options, result)) {
        co_await Quit();
        co_return false;
      }
      ehlo = co_await Exchange(conn, ehlo_cmd, t);
      if (ehlo.code != 250) {
        result.failure = std::move(ehlo);
        Close();
        co_return false;
      }
      ext_ = ParseEhlo(ehlo);
    }
  }
  if (options.require_tls && !tls_) {
    // RFC 3207 section 4.1 / RFC 8461 section 5: a destination whose policy
    // requires TLS gets no mail in the clear; the queue tries again later.
    result.failure.lines.push_back(
        "4.7.5 TLS is required for this destination but " +
        std::string(ext_.starttls ? "STARTTLS was refused" : "the server does not offer STARTTLS"));
    co_await Quit();
    co_return false;
  }
  if (!options.auth_user.empty()) {
    // Credentials never travel in the clear (RFC 4954 section 4; RFC 4616
    // section 5): a relay without TLS gets no mail until it has TLS.
    Reply auth;
    if (!tls_) {
      auth.lines.push_back("4.7.5 refusing to send the relay credentials without TLS");
    } else {
      auth = co_await Authenticate(conn, options, ext_, t);
    }
    if (auth.code != 235) {
      // A refusal defers the mail (transaction stays false): a wrong
      // password is the operator's to fix, not the senders' to be told.
      result.failure = std::move(auth);
      if (result.failure.code) {
        co_await Quit();
      } else {
        Close();
      }
      co_return false;
    }
  }
  co_return true;
}

awaitable<ClientResult> ClientSession::Send(const ClientEnvelope& env, const std::string& content,
                                            const ClientEnvelope* next, size_t next_size) {
  ClientResult result;
  result.tls = tls_;
  if (!open_) {
    result.failure.lines.push_back("connection lost");
    co_return result;
  }
  io::Connection& conn = *conn_;
  auto t = options_.command_timeout;
  bool reused = transactions_ > 0;
  if (!group_sent_ && NeedsUtf8(env) && !ext_.smtputf8) {
    // RFC 6531 section 3.2: a message that needs SMTPUTF8 cannot be downgraded
    // here. Nothing was sent: the session stays usable.
    Reply r;
    r.code = 553;
    r.lines.push_back("5.6.7 the server does not support SMTPUTF8");
    result.transaction = true;
    result.failure = r;
    result.rcpt.assign(env.recipients.size(), r);
    co_return result;
  }
  ++transactions_;
  const std::string mail_cmd = MailCommand(env, ext_, content.size());
  // PIPELINING (RFC 2920 section 3.1): MAIL, every RCPT and DATA go in one
  // write, DATA last in the group; the replies are then read in order, and
  // the body goes only after DATA's 354. Without it, one command a reply.
  const bool pipe = ext_.pipelining;
  Reply mail;
  if (pipe && group_sent_) {
    // Sent with the last transaction's body: its replies come now.
    group_sent_ = false;
    mail = co_await ReadReply(conn, t);
  } else if (pipe) {
    if (co_await conn.Write(Group(env, ext_, mail_cmd))) {
      mail = co_await ReadReply(conn, t);
    } else {
      mail.lines.push_back("connection lost");
    }
  } else {
    mail = co_await Exchange(conn, mail_cmd, t);
  }
  if (reused && (mail.code == 0 || mail.code == 421)) {
    // The server closed the idle session (its timeout, RFC 5321 section
    // 4.5.3.2.7): this transaction never began.
    result.stale = true;
    result.failure = std::move(mail);
    Close();
    co_return result;
  }
  if (mail.code != 250) {
    // A 5xx to MAIL fails every recipient; a 4xx defers them.
    result.transaction = mail.code >= 400;
    result.rcpt.assign(env.recipients.size(), mail);
    result.failure = std::move(mail);
    // Pipelined: the group's RCPT and DATA replies come first.
    bool drained = true;
    for (size_t i = 0; pipe && drained && i < env.recipients.size(); ++i) {
      Reply skipped = co_await ReadReply(conn, t);
      drained = skipped.code != 0;
    }
    if (pipe && drained) drained = co_await EndRefusedData(conn, t);
    if (!result.transaction || result.failure.code == 421 || !drained) {
      Close();
    } else {
      co_await Reset();
    }
    co_return result;
  }
  result.remote_dsn = ext_.dsn;
  std::vector<size_t> accepted;
  for (size_t i = 0; i < env.recipients.size(); ++i) {
    const std::string rcpt_cmd = RcptCommand(env.recipients[i], ext_);
    Reply r;
    if (pipe) {
      r = co_await ReadReply(conn, t);
    } else {
      r = co_await Exchange(conn, rcpt_cmd, t);
    }
    if (r.code == 0) {
      result.rcpt.clear();
      result.failure = std::move(r);
      Close();
      co_return result;
    }
    if (r.code == 421) {
      // The server is closing (RFC 5321 section 3.8): this and the
      // recipients not yet sent are deferred.
      result.transaction = true;
      result.rcpt.resize(env.recipients.size(), r);
      result.failure = std::move(r);
      Close();
      co_return result;
    }
    if (r.code == 250 || r.code == 251) accepted.push_back(i);
    result.rcpt.push_back(std::move(r));
  }
  if (accepted.empty()) {
    result.transaction = true;
    result.failure = result.rcpt.front();
    // Pipelined: DATA was sent too; its reply (a refusal, or a 354 that the
    // lone "." ends) comes before RSET's.
    if (pipe && !co_await EndRefusedData(conn, t)) {
      Close();
      co_return result;
    }
    co_await Reset();
    co_return result;
  }
  const std::string data_cmd = "DATA";
  Reply data;
  if (pipe) {
    data = co_await ReadReply(conn, t);
  } else {
    data = co_await Exchange(conn, data_cmd, t);
  }
  if (data.code != 354) {
    result.transaction = data.code >= 400;
    for (size_t i : accepted) result.rcpt[i] = data;
    result.failure = std::move(data);
    if (result.transaction && result.failure.code != 421) {
      co_await Reset();
    } else {
      Close();
    }
    co_return result;
  }
  std::string stuffed = DotStuff(content);
  // RFC 2920 section 3.1: the message content may begin a group, so the
  // next transaction's MAIL, RCPT and DATA go with this one's final dot.
  if (pipe && next && (!NeedsUtf8(*next) || ext_.smtputf8)) {
    stuffed += Group(*next, ext_, MailCommand(*next, ext_, next_size));
    group_sent_ = true;
  }
  bool sent = co_await conn.Write(stuffed);
  Reply final_reply;
  if (sent) {
    final_reply = co_await ReadReply(conn, options_.data_timeout);
  } else {
    final_reply.lines.push_back("connection lost");
  }
  if (final_reply.code == 0) {
    // RFC 5321 section 6.1: no reply to the final dot: the message may or may
    // not have been taken. Treat it as not delivered (at-least-once).
    result.failure = std::move(final_reply);
    Close();
    co_return result;
  }
  // After the final reply the server is ready for the next MAIL (RFC 5321
  // section 4.1.1.4); a 421 there still closes (section 3.8).
  result.transaction = true;
  for (size_t i : accepted) result.rcpt[i] = final_reply;
  if (!final_reply.positive()) result.failure = final_reply;
  if (final_reply.code == 421) Close();
  co_return result;
}

}  // namespace hato::smtp
