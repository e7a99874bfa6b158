// Escaping for the text the web side writes: HTML/XML text and attribute
// values, and JSON strings. Pure.
#pragma once

#include <string>
#include <string_view>

namespace hato::web {

// & < > " ' as character references (HTML text and quoted attributes; XML).
std::string HtmlEscape(std::string_view s);

// A JSON string literal with its quotes (RFC 8259 section 7); bytes that are
// not valid UTF-8 become U+FFFD.
std::string JsonString(std::string_view s);

}  // namespace hato::web
