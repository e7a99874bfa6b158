// Static files for a prefix route (the web UI's built files, the site's
// pages): GET and HEAD of files below one directory.
//  - Paths are checked by SafeRelativePath and then resolved: a symlink that
//    leads out of the directory is refused (404), so are directories (no
//    listing); "dir/" serves "dir/index.html".
//  - ETag is a hash of the content; If-None-Match gets 304.
//  - A precompressed "file.br" / "file.gz" next to the file is sent instead
//    when the client accepts it (Content-Encoding, Vary: Accept-Encoding).
//  - Content-Type comes from the extension (ContentTypeFor).
// Files are read on the blocking pool, at most kMaxStaticFileBytes each
// (a larger one is 404, logged), with a small cache keyed by path and mtime.
#pragma once

#include <string>

#include "http/server.h"

namespace hato::http {

inline constexpr uint64_t kMaxStaticFileBytes = 32ull << 20;

// `cache_control` is sent with every file ("" = none).
Handler StaticFiles(std::string root, asio::thread_pool* blocking,
                    std::string cache_control = "no-cache");

}  // namespace hato::http
