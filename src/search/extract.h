// The decoded text of a stored message for the full-text index: what
// mime::ExtractSearchText gives, from the stored MIME tree when there is one
// (so no re-parse), else from parsing the content.
#pragma once

#include <string_view>

#include "store/store.h"

namespace hato::search {

store::IndexText ExtractIndexText(std::string_view content, std::string_view mime_tree);

}  // namespace hato::search
