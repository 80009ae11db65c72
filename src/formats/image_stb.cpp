// stb_image (Debian's libstb-dev header) compiled here, once, rather than linked from libstb.so:
// so every buffer it allocates goes through eight's tracked host allocator, the fuzzer sees its
// code, and the formats eight does not accept (PSD, TGA, HDR, PIC, PNM) are not compiled at all.
#include "formats/image_stb.h"

#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/memory.h"

namespace eight::image::detail {
namespace {

// stb frees without a size, but host_free needs one: each block carries its size in a 64-byte
// header (64 keeps host_alloc's alignment for the pixels that follow).
constexpr size_t kHeader = 64;

// What one decode may allocate in total (every malloc and realloc counted), set around each stb
// call: a safety net under the header checks, so no forged file can make stb reserve memory out of
// proportion to the image it claims to be.
struct DecodeBudget {
  bool active = false, refused = false;
  size_t used = 0, cap = 0;
};
thread_local DecodeBudget g_budget;

void* tracked_malloc(size_t bytes) {
  if (g_budget.active) {
    if (bytes > g_budget.cap - g_budget.used) {
      g_budget.refused = true;
      return nullptr;  // stb reports "outofmem" and unwinds
    }
    g_budget.used += bytes;
  }
  try {
    // Zeroed: stb reads some buffers before writing them when a file is corrupt; zeros make
    // that deterministic (and the pixel buffers, the bulk, are written right after anyway).
    auto* base = static_cast<uint8_t*>(host_alloc(bytes + kHeader, /*zero=*/true));
    std::memcpy(base, &bytes, sizeof bytes);
    return base + kHeader;
  } catch (const Error&) {
    return nullptr;  // stb reports "outofmem" and unwinds its own state
  }
}

void tracked_free(void* p) {
  if (!p) return;
  auto* base = static_cast<uint8_t*>(p) - kHeader;
  size_t bytes = 0;
  std::memcpy(&bytes, base, sizeof bytes);
  host_free(base, bytes + kHeader);
}

void* tracked_realloc(void* p, size_t new_bytes) {
  void* q = tracked_malloc(new_bytes);
  if (!q || !p) return q;
  size_t old_bytes = 0;
  std::memcpy(&old_bytes, static_cast<uint8_t*>(p) - kHeader, sizeof old_bytes);
  std::memcpy(q, p, old_bytes < new_bytes ? old_bytes : new_bytes);
  tracked_free(p);
  return q;
}

}  // namespace
}  // namespace eight::image::detail

#define STBI_MALLOC(sz) ::eight::image::detail::tracked_malloc(sz)
#define STBI_REALLOC(p, sz) ::eight::image::detail::tracked_realloc(p, sz)
#define STBI_FREE(p) ::eight::image::detail::tracked_free(p)
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG  // sentences, not stb's terse codes
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wshadow"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace eight::image::detail {
namespace {

// Owns the pixels stb returned (allocated through tracked_malloc, so already counted).
class StbPixels final : public Storage {
 public:
  StbPixels(uint8_t* data, size_t size) : data_(data), size_(size) {}
  ~StbPixels() override { stbi_image_free(data_); }
  StbPixels(const StbPixels&) = delete;
  StbPixels& operator=(const StbPixels&) = delete;
  void* data() const override { return data_; }
  size_t size() const override { return size_; }

 private:
  uint8_t* data_;
  size_t size_;
};

int clamp_len(std::span<const uint8_t> bytes) {
  return bytes.size() > static_cast<size_t>(INT32_MAX) ? INT32_MAX : static_cast<int>(bytes.size());
}

}  // namespace

bool stb_info(std::span<const uint8_t> bytes, StbInfo* info, std::string* reason) {
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) {
    *reason = "larger than 2 GiB";
    return false;
  }
  if (stbi_info_from_memory(bytes.data(), clamp_len(bytes), &info->width, &info->height,
                            &info->channels))
    return true;
  *reason = stbi_failure_reason() ? stbi_failure_reason() : "unknown header";
  return false;
}

Tensor stb_decode(std::span<const uint8_t> bytes, const StbInfo& info, const std::string& name) {
  int w = 0, h = 0, n = 0;
  // The decoders' own buffers stay within ~16 bytes per pixel (JPEG components and progressive
  // coefficients, PNG filter rows and 16-bit samples, GIF's three frames) plus the compressed
  // data grown by doubling; 48 per pixel and 4× the file leave room for all of them.
  const size_t pixels_n = static_cast<size_t>(info.width) * static_cast<size_t>(info.height);
  g_budget = {.active = true, .used = 0, .cap = 48 * pixels_n + 4 * bytes.size() + (16u << 20)};
  uint8_t* pixels =
      stbi_load_from_memory(bytes.data(), clamp_len(bytes), &w, &h, &n, info.channels);
  const DecodeBudget spent = g_budget;
  g_budget = {};
  if (!pixels && spent.refused)
    fail("[image] cannot decode '", name, "': the decoder asked for more than ", spent.cap,
         " bytes for a ", info.width, "x", info.height, " image (corrupt file)");
  if (!pixels) fail("[image] cannot decode '", name, "': ", stbi_failure_reason());
  const size_t size = static_cast<size_t>(w) * static_cast<size_t>(h) * info.channels;
  auto storage = std::make_shared<StbPixels>(pixels, size);
  // The header said one size; a decoder that disagrees (corrupt file) must not be trusted.
  check(w == info.width && h == info.height, "[image] '", name, "' decoded to ", w, "x", h,
        " but its header says ", info.width, "x", info.height);
  return Tensor::from_storage(std::move(storage), 0, {h, w, info.channels}, DType::I8);
}

}  // namespace eight::image::detail
