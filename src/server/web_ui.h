#pragma once
// The browser UI `eight serve` answers at "/" and "/ui/*": the files of web/, compiled into the
// binary at build time (cmake/embed_web.cmake), so the page works offline and needs no files.
#include <string>
#include <string_view>

namespace eight::server {

struct WebFile {
  std::string_view name;  // "index.html", "app.js"
  std::string_view body;
  std::string content_type;  // from the extension, with charset for text
  std::string etag;          // a strong validator: a hash of the body, quoted
};

// The file served at a URL path ("/" is index.html, "/ui/NAME" is NAME); null for any other path.
const WebFile* find_web_file(std::string_view url_path);

}  // namespace eight::server
