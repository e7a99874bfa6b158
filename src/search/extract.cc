#include "search/extract.h"

#include <optional>

#include "mime/message.h"

namespace hato::search {

store::IndexText ExtractIndexText(std::string_view content, std::string_view mime_tree) {
  std::optional<mime::Part> tree;
  if (!mime_tree.empty()) {
    auto t = mime::Deserialize(mime_tree);
    if (t) tree = std::move(*t);
  }
  if (!tree) {
    auto parsed = mime::Parse(content);
    if (!parsed) return {};
    tree = std::move(*parsed);
  }
  mime::SearchText t = mime::ExtractSearchText(content, *tree);
  return store::IndexText{std::move(t.header), std::move(t.body)};
}

}  // namespace hato::search
