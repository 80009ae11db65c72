#include "server/web_ui.h"

#include <cstdint>
#include <cstdio>
#include <vector>

namespace eight::detail {
struct WebAsset {
  const char* name;
  const unsigned char* data;
  size_t size;
};
extern const WebAsset web_assets[];
extern const size_t web_asset_count;
}  // namespace eight::detail

namespace eight::server {
namespace {

std::string content_type_of(std::string_view name) {
  const auto ends = [&](std::string_view ext) { return name.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

// FNV-1a 64: the ETag only has to change when the bytes do.
std::string etag_of(std::string_view body) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : body) h = (h ^ c) * 1099511628211ull;
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

const std::vector<WebFile>& files() {
  static const std::vector<WebFile> table = [] {
    std::vector<WebFile> t;
    for (size_t i = 0; i < detail::web_asset_count; ++i) {
      const auto& a = detail::web_assets[i];
      const std::string_view body(reinterpret_cast<const char*>(a.data), a.size);
      t.push_back({a.name, body, content_type_of(a.name), etag_of(body)});
    }
    return t;
  }();
  return table;
}

}  // namespace

const WebFile* find_web_file(std::string_view url_path) {
  std::string_view name;
  if (url_path == "/")
    name = "index.html";
  else if (url_path.starts_with("/ui/"))
    name = url_path.substr(4);
  else
    return nullptr;
  for (const WebFile& f : files())
    if (f.name == name) return &f;
  return nullptr;
}

}  // namespace eight::server
