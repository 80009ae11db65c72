#include "server/image_data.h"

#include <string_view>

#include "server/api_error.h"
#include "server/base64.h"

namespace eight::server {

std::vector<uint8_t> decode_image_string(const std::string& s, const std::string& param) {
  std::string_view payload = s;
  if (payload.rfind("data:", 0) == 0) {
    const size_t comma = payload.find(',');
    if (comma == std::string_view::npos ||
        payload.substr(0, comma).find(";base64") == std::string_view::npos)
      bad_request(param, "a data URL image must be base64: data:image/...;base64,...",
                  "invalid_image");
    payload.remove_prefix(comma + 1);
  } else if (payload.rfind("http://", 0) == 0 || payload.rfind("https://", 0) == 0) {
    bad_request(param, "image URLs are not fetched: send the image as base64 or a data URL",
                "invalid_image");
  }
  auto bytes = base64_decode(payload);
  if (!bytes) bad_request(param, "the image is not valid base64", "invalid_base64");
  if (bytes->empty()) bad_request(param, "the image is empty", "invalid_image");
  return std::move(*bytes);
}

}  // namespace eight::server
