#pragma once
// A read-only view of a ZIP archive in memory (PKWARE APPNOTE 6.3: end of central directory,
// ZIP64 end record and locator, central directory entries with the ZIP64 extra field, local
// headers). Entries that are stored are views of the input; deflated ones are inflated (zlib) into
// tracked memory on request. Every offset and size is checked against the input; a failure is an
// Error naming the archive, the entry and the numbers.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/storage.h"

namespace eight::zip {

struct Entry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0, size = 0;
  uint64_t data_offset = 0;  // of the (compressed) bytes in the input, past the local header
};

class Archive {
 public:
  // Reads the central directory. Throws Error when `bytes` is not a well-formed ZIP.
  static Archive parse(std::shared_ptr<Storage> bytes, const std::string& name);
  // True when the bytes end with (or contain in their last 64 KiB) an end-of-central-directory
  // record and start with a local header.
  static bool looks_like_zip(const uint8_t* data, size_t size);

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& name) const;
  // The entry's bytes: a view of the input when stored, else inflated into a new host buffer
  // (at most `max_inflated` bytes). `verify_crc` checks the CRC-32 (costly for large entries).
  struct Bytes {
    std::shared_ptr<Storage> holder;
    size_t offset = 0, size = 0;
    const uint8_t* data() const { return static_cast<const uint8_t*>(holder->data()) + offset; }
  };
  Bytes read(const Entry& e, bool verify_crc, uint64_t max_inflated = 1ull << 36) const;

 private:
  std::string name_;
  std::shared_ptr<Storage> bytes_;
  std::vector<Entry> entries_;
};

}  // namespace eight::zip
