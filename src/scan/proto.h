// The wire formats of the content scanners Hato asks before it accepts a
// message on port 25 (issue 19): rspamd's HTTP protocol (POST /checkv2 and
// the controller's /learnspam, /learnham) and clamd's INSTREAM command.
// Pure: bytes in, values out; the sockets are in scan/client.h. Fuzzed by
// fuzz/fuzz_scan_reply.cc.
//
// rspamd: https://rspamd.com/doc/developers/protocol.html (request header
// fields From, Rcpt, IP, Helo, User, Queue-Id; JSON reply with score,
// required_score and action). clamd: clamd(8), "INSTREAM": the command
// "zINSTREAM\0", then chunks each prefixed by its length as 4 bytes in
// network order, ended by a zero length; the reply is one NUL-terminated
// line "stream: OK", "stream: NAME FOUND" or "... ERROR".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::scan {

// What rspamd is told about a message besides its content.
struct Envelope {
  std::string peer_ip;
  std::string helo;
  std::string mail_from;  // "" = null reverse-path
  std::vector<std::string> rcpts;
  std::string queue_id;  // the SMTP transaction id (rspamd logs it)
  std::string user;      // the authenticated account, "" on port 25
};

// The head of "POST /checkv2" for a body of `body_size` bytes, to
// `host_port` (the Host field). Field values are stripped of control
// characters so that no envelope value can add a field.
std::string CheckRequestHead(std::string_view host_port, const Envelope& env, size_t body_size);

// The head of "POST /learnspam" (spam) or "/learnham" to the controller.
// `password`: the controller's Password field, "" = none sent.
std::string LearnRequestHead(std::string_view host_port, bool spam, std::string_view password,
                             size_t body_size);

// rspamd's reply to /checkv2.
struct RspamdReply {
  double score = 0;
  double required_score = 0;
  std::string action;  // "no action", "greylist", "add header", "rewrite subject",
                       // "soft reject", "reject"
  bool skipped = false;
  double time_real = 0;              // rspamd's own seconds for the message, when given
  std::vector<std::string> symbols;  // the names of the symbols that matched
};
// kInvalid when the body is not rspamd's JSON.
Result<RspamdReply> ParseCheckReply(std::string_view json);

// Whether the controller accepted a learn request: HTTP 200 with
// {"success": true}, or 208 (already learned: as good). Otherwise the error
// text, kTemporary.
Result<bool> ParseLearnReply(int status, std::string_view json);

// The bytes of an INSTREAM request for `content`: the command, chunks of at
// most `chunk_bytes`, and the zero-length end.
std::string InstreamRequest(std::string_view content, size_t chunk_bytes = 65536);

struct ClamdReply {
  enum class Kind { kClean, kFound, kError };
  Kind kind = Kind::kError;
  std::string name;  // the signature, for kFound
  std::string text;  // the reply line, without its terminator
};
// One reply line ("stream: OK\0"); NUL or LF terminated, or unterminated.
ClamdReply ParseClamdReply(std::string_view reply);

}  // namespace hato::scan
