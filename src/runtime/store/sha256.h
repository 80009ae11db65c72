#pragma once
// SHA-256 (FIPS 180-4), used to name store blobs by content and to verify downloads against the
// hash their source states (Hugging Face's LFS oid, --sha256).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace eight {

class Sha256 {
 public:
  Sha256() { reset(); }
  void reset();
  void update(const void* data, size_t n);
  void update(const std::string& s) { update(s.data(), s.size()); }
  // Finishes the hash; the object must be reset() before further use.
  std::array<uint8_t, 32> digest();
  // Finishes the hash and returns it as 64 lowercase hex digits.
  std::string hex_digest();
  uint64_t bytes_hashed() const { return total_; }

 private:
  void compress(const uint8_t* block);                    // one 64-byte block, portable code
  void compress_blocks(const uint8_t* p, size_t blocks);  // SHA extensions when present
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Hex SHA-256 of a string / of a file's contents (streamed; throws Error when unreadable).
std::string sha256_hex(const std::string& data);
std::string sha256_file(const std::string& path);

// Whether the x86 SHA extensions are used; tests force the portable code to compare the two.
bool sha256_hardware_available();
void sha256_force_portable(bool portable);

// True for exactly 64 lowercase hex digits.
bool is_sha256_hex(const std::string& s);

}  // namespace eight
