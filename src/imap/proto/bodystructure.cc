// BODY / BODYSTRUCTURE / ENVELOPE writers (RFC 3501 section 7.4.2 grammar:
// body, body-type-1part, body-type-mpart, body-ext-1part, body-ext-mpart,
// body-fld-dsp, body-fld-lang, body-fld-loc, envelope, address).
#include "imap/proto/bodystructure.h"

#include "base/strings.h"
#include "imap/proto/strings.h"

namespace hato::imap {
namespace {

void NString(std::string& out, const std::optional<std::string>& s) {
  if (s) {
    AppendString(out, *s);
  } else {
    out += "NIL";
  }
}

// body-fld-param = "(" string SP string *(SP string SP string) ")" / nil
void Params(std::string& out, const std::vector<mime::Param>& ps) {
  if (ps.empty()) {
    out += "NIL";
    return;
  }
  out += '(';
  for (size_t i = 0; i < ps.size(); ++i) {
    if (i > 0) out += ' ';
    AppendString(out, AsciiUpper(ps[i].name));
    out += ' ';
    AppendString(out, ps[i].value);
  }
  out += ')';
}

// body-fld-dsp SP body-fld-lang SP body-fld-loc (the tail both extension forms share).
void Extensions(std::string& out, const mime::Part& p) {
  out += ' ';
  if (p.disposition) {  // body-fld-dsp = "(" string SP body-fld-param ")" / nil
    out += '(';
    AppendString(out, AsciiUpper(*p.disposition));
    out += ' ';
    Params(out, p.disposition_params);
    out += ')';
  } else {
    out += "NIL";
  }
  out += ' ';
  if (p.language.empty()) {  // body-fld-lang = nstring / "(" string *(SP string) ")"
    out += "NIL";
  } else if (p.language.size() == 1) {
    AppendString(out, p.language[0]);
  } else {
    out += '(';
    for (size_t i = 0; i < p.language.size(); ++i) {
      if (i > 0) out += ' ';
      AppendString(out, p.language[i]);
    }
    out += ')';
  }
  out += ' ';
  NString(out, p.location);  // body-fld-loc = nstring
}

void Addresses(std::string& out, const std::vector<mime::Address>& as) {
  if (as.empty()) {
    out += "NIL";
    return;
  }
  out += '(';
  for (const mime::Address& a : as) {
    out += '(';
    NString(out, a.name);
    out += ' ';
    NString(out, a.adl);
    out += ' ';
    NString(out, a.mailbox);
    out += ' ';
    NString(out, a.host);
    out += ')';
  }
  out += ')';
}

void AppendEnvelope(std::string& out, const mime::Envelope& e) {
  out += '(';
  NString(out, e.date);
  out += ' ';
  NString(out, e.subject);
  for (const auto* list : {&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc}) {
    out += ' ';
    Addresses(out, *list);
  }
  out += ' ';
  NString(out, e.in_reply_to);
  out += ' ';
  NString(out, e.message_id);
  out += ')';
}

void Body(std::string& out, const mime::Part& p, bool ext) {
  if (p.IsMultipart() && !p.children.empty()) {
    // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
    out += '(';
    for (const mime::Part& c : p.children) Body(out, c, ext);
    out += ' ';
    AppendString(out, AsciiUpper(p.subtype));
    if (ext) {  // body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP loc]]]
      out += ' ';
      Params(out, p.params);
      Extensions(out, p);
    }
    out += ')';
    return;
  }
  const bool message = p.IsMessage() && !p.children.empty();
  const bool opaque = p.IsMultipart() || (p.IsMessage() && p.children.empty());
  out += '(';
  AppendString(out, opaque ? "APPLICATION" : AsciiUpper(p.type));
  out += ' ';
  AppendString(out, opaque ? "OCTET-STREAM" : AsciiUpper(p.subtype));
  // body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets
  out += ' ';
  Params(out, p.params);
  out += ' ';
  NString(out, p.id);
  out += ' ';
  NString(out, p.description);
  out += ' ';
  AppendString(out, AsciiUpper(p.encoding));
  out += ' ';
  out += std::to_string(p.size);
  if (message) {  // body-type-msg = media-message SP body-fields SP envelope SP body SP
                  // body-fld-lines
    const mime::Part& inner = p.children[0];
    out += ' ';
    AppendEnvelope(out, inner.envelope.value_or(mime::Envelope{}));
    out += ' ';
    Body(out, inner, ext);
    out += ' ';
    out += std::to_string(p.lines);
  } else if (!opaque && p.type == "text") {  // body-type-text = ... SP body-fld-lines
    out += ' ';
    out += std::to_string(p.lines);
  }
  if (ext) {  // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP loc]]]
    out += ' ';
    NString(out, p.md5);
    Extensions(out, p);
  }
  out += ')';
}

}  // namespace

std::string BodyStructure(const mime::Part& root, bool extended) {
  std::string out;
  Body(out, root, extended);
  return out;
}

std::string Envelope(const mime::Envelope& env) {
  std::string out;
  AppendEnvelope(out, env);
  return out;
}

}  // namespace hato::imap
