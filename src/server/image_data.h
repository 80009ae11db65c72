#pragma once
// Images in JSON request bodies: "data:image/png;base64,AAAA" data URLs or bare base64 (shared by
// CLIP's endpoints and /v1/tags).
#include <cstdint>
#include <string>
#include <vector>

namespace eight::server {

// The image's bytes. Throws ApiError 400 naming `param` for URLs (never fetched), non-base64
// data URLs, invalid base64 and empty images.
std::vector<uint8_t> decode_image_string(const std::string& s, const std::string& param);

}  // namespace eight::server
