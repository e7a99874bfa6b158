// FETCH BODY, BODYSTRUCTURE and ENVELOPE rendering (RFC 3501 section 7.4.2,
// RFC 9051 section 7.5.2) from a stored mime::Part tree: no message bytes are
// needed, so FETCH BODYSTRUCTURE never reads or re-parses the message.
//
// Conventions (the RFC 3501 examples' style, as Cyrus does): media type and
// subtype, body-fld-enc, disposition type and parameter names are upper-cased
// ("TEXT" "PLAIN" ("CHARSET" "us-ascii") ... "7BIT"); parameter values and
// all other strings are sent as stored. Strings with CR, LF, NUL or 8-bit
// bytes are sent as literals (imap/proto/strings.h).
//
// A composite part that was not expanded (a multipart with no parts, or
// deeper than mime::kMaxDepth, a message/rfc822 with a non-identity
// encoding or past mime::kMaxParts) is rendered as a basic
// "APPLICATION" "OCTET-STREAM" body with its real size, so the grammar stays
// valid and BODY[n] still returns its bytes. message/global is rendered with
// body-type-msg (RFC 9051 section 7.5.2 media-message).
//
// Pure; thread-safe.
#pragma once

#include <string>

#include "mime/message.h"

namespace hato::imap {

// The body (extended = false: FETCH BODY) or body structure (extended = true:
// FETCH BODYSTRUCTURE, with body-ext-1part / body-ext-mpart) of `root`.
std::string BodyStructure(const mime::Part& root, bool extended);

// The envelope (RFC 3501 section 7.4.2 "envelope").
std::string Envelope(const mime::Envelope& env);

}  // namespace hato::imap
