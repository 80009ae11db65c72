// The Vulkan backend when the build had no libvulkan-dev or glslc: no devices, and every entry
// that would need one says that Vulkan is not built.
#include "backend/vulkan/bench.h"
#include "backend/vulkan/vulkan.h"
#include "core/error.h"

namespace eight::vulkan {

struct Buffer::Handle {};

namespace {

[[noreturn]] void not_built(const char* op) {
  fail("[vulkan] ", op, ": vulkan not built (configure with libvulkan-dev and glslc installed)");
}

}  // namespace

bool built() {
  return false;
}
std::vector<DeviceInfo> devices() {
  return {};
}
std::string describe_devices() {
  return "vulkan not built";
}
int select_device(const std::string& spec) {
  fail("[vulkan] cannot select '", spec, "': vulkan not built");
}
void set_device_budget(int, int64_t) {
  not_built("set_device_budget");
}
int64_t device_budget(int) {
  not_built("device_budget");
}

Buffer::Buffer(int device, size_t bytes) : device_(device), size_(bytes) {
  not_built("Buffer");
}
Buffer::~Buffer() = default;

BufferRef buffer_of(const Tensor& t) {
  const auto* b = dynamic_cast<const Buffer*>(t.storage().get());
  check(b != nullptr, "[vulkan] ", t.str(), " is not in Vulkan device memory");
  return {b, t.offset()};
}

void upload(const Buffer&, size_t, const void*, size_t) {
  not_built("upload");
}
void download(const Buffer&, size_t, void*, size_t) {
  not_built("download");
}
void flush(int) {}
void synchronize(int) {}

void matmul(const MatmulArgs&) {
  not_built("matmul");
}
bool matmul_weight_type_supported(DType) {
  return false;
}
void rms_norm(BufferRef, BufferRef, BufferRef, int64_t, int64_t, float) {
  not_built("rms_norm");
}
void softmax(BufferRef, BufferRef, int64_t, BufferRef, int64_t, int64_t, float) {
  not_built("softmax");
}
void swiglu(BufferRef, BufferRef, BufferRef, int64_t) {
  not_built("swiglu");
}
void binary(BinaryOp, BufferRef, BufferRef, BufferRef, int64_t, int64_t) {
  not_built("binary");
}
void scale(BufferRef, float, BufferRef, int64_t) {
  not_built("scale");
}
void unary(UnaryOp, BufferRef, BufferRef, int64_t) {
  not_built("unary");
}
void layer_norm(BufferRef, BufferRef, BufferRef, BufferRef, int64_t, int64_t, float) {
  not_built("layer_norm");
}
void argmax(BufferRef, BufferRef, int64_t, int64_t) {
  not_built("argmax");
}
void get_rows(DType, BufferRef, size_t, int64_t, BufferRef, BufferRef, int64_t, int64_t) {
  not_built("get_rows");
}
void copy(BufferRef, BufferRef, size_t) {
  not_built("copy");
}
void convert_rows(BufferRef, int64_t, DType, BufferRef, size_t, int64_t, int64_t) {
  not_built("convert_rows");
}
void attention(const AttentionArgs&) {
  not_built("attention");
}
bool attention_chunked_supported(const AttentionArgs&) {
  return false;
}
void attention_chunked(const AttentionArgs&) {
  not_built("attention_chunked");
}
void rope(BufferRef, int64_t, BufferRef, int64_t, BufferRef, int64_t, int64_t, int64_t, int64_t,
          RopeStyle) {
  not_built("rope");
}

void binary_per_row(BinaryOp, BufferRef, BufferRef, BufferRef, int64_t, int64_t) {
  not_built("binary_per_row");
}
void geglu(BufferRef, BufferRef, int64_t, int64_t) {
  not_built("geglu");
}
void group_norm(BufferRef, BufferRef, BufferRef, BufferRef, int64_t, int64_t, int64_t, int64_t,
                float, bool) {
  not_built("group_norm");
}
void upsample_nearest2x(BufferRef, BufferRef, int64_t, int64_t, int64_t) {
  not_built("upsample_nearest2x");
}
void im2col(const Im2colArgs&) {
  not_built("im2col");
}
void transpose(BufferRef, int64_t, BufferRef, BufferRef, int64_t, int64_t, int64_t) {
  not_built("transpose");
}

BenchReport benchmark(int, const BenchOptions&) {
  not_built("benchmark");
}
double copy_bandwidth_gbs(int, int64_t, double) {
  not_built("copy_bandwidth_gbs");
}
std::string format_bench(const BenchReport&) {
  return "vulkan not built\n";
}

}  // namespace eight::vulkan
