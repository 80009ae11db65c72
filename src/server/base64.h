#pragma once
// Base64 (RFC 4648) for the HTTP edge: images arrive as base64 or data URLs, and OpenAI's
// embeddings API returns float32 vectors as base64 when asked (encoding_format "base64").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eight::server {

std::string base64_encode(const void* data, size_t size);
// Standard or URL-safe alphabet, padding optional, whitespace ignored. nullopt on any other
// character, misplaced padding or a dangling sextet.
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);

}  // namespace eight::server
