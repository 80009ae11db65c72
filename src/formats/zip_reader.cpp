// ZIP central directory reader (APPNOTE.TXT 6.3.x, sections 4.3.6 to 4.3.16 and 4.5.3).
#include "formats/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace eight::zip {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                   kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;
constexpr size_t kEndSize = 22, kLocator64Size = 20, kEnd64Size = 56, kCentralSize = 46,
                 kLocalSize = 30;

// Little-endian reads at a checked position.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n, const std::string& name) : p_(p), n_(n), name_(name) {}
  void need(uint64_t at, uint64_t len, const char* what) const {
    check(at <= n_ && len <= n_ - at, "[zip] ", name_, ": ", what, " at byte ", at, " (", len,
          " bytes) lies beyond the end of the file (", n_, " bytes)");
  }
  uint64_t u(uint64_t at, int bytes) const {
    need(at, bytes, "field");
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = v << 8 | p_[at + k];
    return v;
  }
  const uint8_t* at(uint64_t off) const { return p_ + off; }

 private:
  const uint8_t* p_;
  size_t n_;
  const std::string& name_;
};

// The ZIP64 extra field (id 1) replaces, in this order, each 32-bit field that is 0xFFFFFFFF.
void apply_zip64(const Reader& r, uint64_t extra, uint64_t extra_len, Entry& e, uint64_t& local,
                 const std::string& name) {
  uint64_t k = extra;
  const uint64_t end = extra + extra_len;
  while (k + 4 <= end) {
    const uint64_t id = r.u(k, 2), len = r.u(k + 2, 2);
    check(k + 4 + len <= end, "[zip] ", name, ": entry '", e.name, "' has a malformed extra field");
    if (id == 1) {
      uint64_t q = k + 4;
      auto next = [&](uint64_t& field) {
        check(q + 8 <= k + 4 + len, "[zip] ", name, ": entry '", e.name,
              "' has a short ZIP64 extra field");
        field = r.u(q, 8);
        q += 8;
      };
      if (e.size == 0xffffffffu) next(e.size);
      if (e.compressed_size == 0xffffffffu) next(e.compressed_size);
      if (local == 0xffffffffu) next(local);
    }
    k += 4 + len;
  }
}

}  // namespace

bool Archive::looks_like_zip(const uint8_t* data, size_t size) {
  return size >= kEndSize && std::memcmp(data, "PK\x03\x04", 4) == 0;
}

Archive Archive::parse(std::shared_ptr<Storage> bytes, const std::string& name) {
  Archive a;
  a.name_ = name;
  a.bytes_ = std::move(bytes);
  const auto* p = static_cast<const uint8_t*>(a.bytes_->data());
  const size_t n = a.bytes_->size();
  const Reader r(p, n, name);
  check(n >= kEndSize, "[zip] ", name, ": ", n, " bytes is too short for a ZIP archive");
  // The end record sits at the very end, followed only by a comment of up to 65535 bytes.
  uint64_t end = UINT64_MAX;
  for (uint64_t k = n - kEndSize + 1; k-- > 0 && n - k <= kEndSize + 0xffff;)
    if (r.u(k, 4) == kEndSig && k + kEndSize + r.u(k + 20, 2) == n) {
      end = k;
      break;
    }
  check(end != UINT64_MAX, "[zip] ", name,
        ": no end-of-central-directory record (truncated, or not a ZIP archive)");
  uint64_t count = r.u(end + 10, 2), cd_size = r.u(end + 12, 4), cd_off = r.u(end + 16, 4);
  if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
    check(end >= kLocator64Size && r.u(end - kLocator64Size, 4) == kLocator64Sig, "[zip] ", name,
          ": ZIP64 fields without a ZIP64 locator");
    const uint64_t e64 = r.u(end - kLocator64Size + 8, 8);
    r.need(e64, kEnd64Size, "ZIP64 end record");
    check(r.u(e64, 4) == kEnd64Sig, "[zip] ", name, ": bad ZIP64 end record signature at ", e64);
    count = r.u(e64 + 32, 8);
    cd_size = r.u(e64 + 40, 8);
    cd_off = r.u(e64 + 48, 8);
  }
  r.need(cd_off, cd_size, "central directory");
  check(count <= cd_size / kCentralSize, "[zip] ", name, ": ", count, " entries cannot fit in a ",
        cd_size, "-byte central directory");
  a.entries_.reserve(static_cast<size_t>(count));
  uint64_t k = cd_off;
  for (uint64_t i = 0; i < count; ++i) {
    r.need(k, kCentralSize, "central directory entry");
    check(r.u(k, 4) == kCentralSig, "[zip] ", name, ": bad central directory entry ", i,
          " at byte ", k);
    Entry e;
    const uint64_t flags = r.u(k + 8, 2);
    e.method = static_cast<uint16_t>(r.u(k + 10, 2));
    e.crc32 = static_cast<uint32_t>(r.u(k + 16, 4));
    e.compressed_size = r.u(k + 20, 4);
    e.size = r.u(k + 24, 4);
    const uint64_t name_len = r.u(k + 28, 2), extra_len = r.u(k + 30, 2),
                   comment_len = r.u(k + 32, 2);
    uint64_t local = r.u(k + 42, 4);
    r.need(k + kCentralSize, name_len + extra_len + comment_len, "entry name");
    e.name.assign(reinterpret_cast<const char*>(r.at(k + kCentralSize)), name_len);
    apply_zip64(r, k + kCentralSize + name_len, extra_len, e, local, name);
    check(!(flags & 1), "[zip] ", name, ": entry '", e.name, "' is encrypted");
    check(e.method == 0 || e.method == 8, "[zip] ", name, ": entry '", e.name,
          "' uses compression method ", e.method, " (only stored and deflated are supported)");
    check(e.method != 0 || e.size == e.compressed_size, "[zip] ", name, ": stored entry '", e.name,
          "' has size ", e.size, " but ", e.compressed_size, " bytes");
    r.need(local, kLocalSize, "local header");
    check(r.u(local, 4) == kLocalSig, "[zip] ", name, ": entry '", e.name,
          "' has no local header at byte ", local);
    e.data_offset = local + kLocalSize + r.u(local + 26, 2) + r.u(local + 28, 2);
    r.need(e.data_offset, e.compressed_size, cat("data of entry '", e.name, "'").c_str());
    a.entries_.push_back(std::move(e));
    k += kCentralSize + name_len + extra_len + comment_len;
  }
  return a;
}

const Entry* Archive::find(const std::string& entry) const {
  for (const auto& e : entries_)
    if (e.name == entry) return &e;
  return nullptr;
}

Archive::Bytes Archive::read(const Entry& e, bool verify_crc, uint64_t max_inflated) const {
  Bytes b;
  const auto* src = static_cast<const uint8_t*>(bytes_->data()) + e.data_offset;
  if (e.method == 0) {
    b.holder = bytes_;
    b.offset = static_cast<size_t>(e.data_offset);
    b.size = static_cast<size_t>(e.size);
  } else {
    // Deflate expands at most ~1032:1, so a declared size beyond that is a lie.
    check(e.size <= max_inflated && e.size / 1032 <= e.compressed_size + 1, "[zip] ", name_,
          ": entry '", e.name, "' claims ", e.size, " bytes from ", e.compressed_size,
          " compressed");
    auto out = std::make_shared<HostStorage>(static_cast<size_t>(e.size));
    z_stream z{};
    check(inflateInit2(&z, -MAX_WBITS) == Z_OK, "[zip] inflateInit failed");
    uint64_t in_left = e.compressed_size, out_done = 0;
    const uint8_t* in = src;
    int rc = Z_OK;
    while (rc == Z_OK) {
      const uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      const uInt out_chunk = static_cast<uInt>(std::min<uint64_t>(e.size - out_done, 1u << 30));
      z.next_in = const_cast<Bytef*>(in);
      z.avail_in = in_chunk;
      z.next_out = static_cast<Bytef*>(out->data()) + out_done;
      z.avail_out = out_chunk;
      rc = inflate(&z, Z_NO_FLUSH);
      in += in_chunk - z.avail_in;
      in_left -= in_chunk - z.avail_in;
      out_done += out_chunk - z.avail_out;
      if (rc == Z_OK && z.avail_out == out_chunk && z.avail_in == in_chunk) rc = Z_BUF_ERROR;
    }
    inflateEnd(&z);
    check(rc == Z_STREAM_END && out_done == e.size, "[zip] ", name_, ": entry '", e.name,
          "' does not inflate to its declared ", e.size, " bytes");
    b.holder = std::move(out);
    b.size = static_cast<size_t>(e.size);
  }
  if (verify_crc) {
    uLong crc = crc32(0, nullptr, 0);
    for (size_t k = 0; k < b.size; k += 1u << 30)
      crc = crc32(crc, b.data() + k, static_cast<uInt>(std::min<size_t>(b.size - k, 1u << 30)));
    check(crc == e.crc32, "[zip] ", name_, ": entry '", e.name, "' fails its CRC-32 check");
  }
  return b;
}

}  // namespace eight::zip
