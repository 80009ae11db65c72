#pragma once
// The Vulkan backend's entry points, free of Vulkan headers so every layer can include it. Built
// from backend/vulkan/*.cpp and shaders/*.comp (compiled to SPIR-V at build time) when
// libvulkan-dev and glslc are present; otherwise stub.cpp provides the same functions: built()
// is false, devices() is empty and everything else throws "vulkan not built".
//
// Devices: one VkInstance, created on first use; a missing loader or driver means zero devices,
// never a crash. Automatic selection takes a discrete GPU, then an integrated one, never a
// CPU-type device (lavapipe runs only when named: "vulkan:N").
//
// Memory: every Buffer is counted on memory_tracker(Device::vulkan(i)) as MemoryKind::Heap and
// refused beyond the device budget (set_device_budget; default: the device-local heap, or its
// VK_EXT_memory_budget value, minus kDeviceReserveBytes) before vkAllocateMemory is called.
//
// Execution: kernels *record* a dispatch into the device's current command buffer (with a
// barrier after it, so a later dispatch sees its writes); nothing runs until it is submitted:
// flush() submits without waiting (the host records the next command buffer while the device
// runs this one; two are in flight at most), download() and synchronize() submit and wait on a
// fence. Buffers freed while recorded or submitted work may use them are released once that
// work has finished.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/storage.h"
#include "core/tensor.h"

namespace eight::vulkan {

bool built();  // compiled with Vulkan support

// The VRAM eight leaves to the driver, other programs and the compositor by default.
inline constexpr int64_t kDeviceReserveBytes = int64_t{512} << 20;

struct DeviceInfo {
  int index = 0;
  std::string name;
  std::string type;          // "discrete", "integrated", "virtual", "cpu" or "other"
  int64_t memory_bytes = 0;  // size of the largest device-local heap
  int64_t free_bytes = -1;   // VK_EXT_memory_budget's budget - usage of that heap; -1 unknown
  std::string driver;        // driver name and version info, when the driver reports it
  // "subgroup_size=N", "fp16", "int8", "int64", "int8_dot" (accelerated 4x8-bit dot product) or
  // "int8_dot_emulated", "coopmat" (VK_KHR_cooperative_matrix), "coopmat2", "memory_budget".
  std::vector<std::string> features;
};

// Every physical device the loader reports, in its order (index = N of "vulkan:N"). Empty when
// Vulkan is not built, the loader or driver is missing, or instance creation fails.
std::vector<DeviceInfo> devices();
// One line per device ("vulkan:0 NVIDIA GeForce RTX 3070 (discrete, 8.00 GiB)"), or why none.
std::string describe_devices();

// Parses "vulkan:N", "vulkan" or "auto" and returns the device index. "vulkan"/"auto" take the
// first discrete GPU, else the first integrated one, never a CPU-type device. Throws Error naming
// the spec and the devices seen when nothing matches.
int select_device(const std::string& spec);

// Caps the bytes eight may hold on `device` (the planner's --vram). A negative value restores the
// default (device-local heap or budget minus kDeviceReserveBytes, at least 0).
void set_device_budget(int device, int64_t bytes);
int64_t device_budget(int device);

// Device-local memory on one device, tracked and capped. data() is nullptr: the bytes are not
// addressable by the host; move them with upload()/download().
class Buffer final : public Storage {
 public:
  // Throws Error when the budget or the driver refuses (out of device memory included).
  Buffer(int device, size_t bytes);
  ~Buffer() override;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const override { return nullptr; }
  size_t size() const override { return size_; }
  Device device() const override { return Device::vulkan(device_); }
  int device_index() const { return device_; }

  struct Handle;  // the VkBuffer and its memory (vulkan_impl.h)
  const Handle& handle() const { return *handle_; }

 private:
  int device_;
  size_t size_;
  std::unique_ptr<Handle> handle_;
};

// Host <-> device copies through host-visible staging buffers (32 MiB per command buffer).
// upload() copies the bytes into staging at once and records the device copy in order with the
// kernels (submitting when staging is full), so `src` may be reused on return; download() submits
// everything recorded so far, waits for it and copies out.
void upload(const Buffer& dst, size_t dst_offset, const void* src, size_t bytes);
void download(const Buffer& src, size_t src_offset, void* dst, size_t bytes);
// Submits the recorded work without waiting / submits it and waits for all submitted work.
void flush(int device);
void synchronize(int device);

// ---- kernels ------------------------------------------------------------------------------------
// Buffers are passed as (buffer, byte offset). Float offsets must be multiples of 4 bytes. The
// ops layer checks shapes; these check only what would make the device read out of bounds.
struct BufferRef {
  const Buffer* buffer = nullptr;
  size_t offset = 0;  // bytes
};
// The device bytes behind a tensor whose storage is a Buffer (Error for any other tensor):
//   auto t = Tensor::from_storage(std::make_shared<vulkan::Buffer>(0, bytes), 0, shape, dtype);
//   vulkan::rms_norm(vulkan::buffer_of(t), ...);
// Such a tensor's raw() is not a host address: only its storage and offset mean anything.
BufferRef buffer_of(const Tensor& t);

// y[m, n] = x[m, k] · w[n, k]ᵀ, as cpu::MatmulProblem: x f32 rows at x + i * ldx (elements),
// w rows of w_type at w + j * ldw (bytes), y f32 rows at y + i * ldy (elements). Up to 8 rows of
// x (decode, small batches): one workgroup per output row reduces over k for 4 rows of x at once.
// More rows (prompts): 64 x 64 output tiles with the weights decoded into shared memory.
// For quantized w, k is a whole number of blocks (32 values; 256 for the K-quants and IQ4_XS).
struct MatmulArgs {
  int64_t m = 0, n = 0, k = 0;
  BufferRef x;
  int64_t ldx = 0;
  DType w_type = DType::F32;
  BufferRef w;
  size_t ldw = 0;
  BufferRef y;
  int64_t ldy = 0;
};
void matmul(const MatmulArgs& a);
// F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
bool matmul_weight_type_supported(DType type);

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w  (w.buffer may be nullptr), rows of n.
void rms_norm(BufferRef x, BufferRef w, BufferRef y, int64_t rows, int64_t n, float eps);
// y[r, :] = softmax(x[r, :] * scale + mask[r % mask_rows, :]) (mask.buffer may be nullptr; -inf
// entries allowed; a row that is all -inf gives zeros).
void softmax(BufferRef x, BufferRef mask, int64_t mask_rows, BufferRef y, int64_t rows, int64_t n,
             float scale);
// y[i] = silu(gate[i]) * up[i], i < n.
void swiglu(BufferRef gate, BufferRef up, BufferRef y, int64_t n);
enum class BinaryOp { Add, Mul };
// y[i] = a[i] op b[i % nb], i < n (nb = n: element-wise; nb = row length: a broadcast row).
void binary(BinaryOp op, BufferRef a, BufferRef b, BufferRef y, int64_t n, int64_t nb);
// y[i] = x[i] * s.
void scale(BufferRef x, float s, BufferRef y, int64_t n);
// y[i] = f(x[i]): silu, gelu (erf form), gelu with the tanh approximation, quick gelu
// (x * sigmoid(1.702 x)), relu.
enum class UnaryOp { SiLU, GELU, GELUTanh, QuickGELU, ReLU };
void unary(UnaryOp op, BufferRef x, BufferRef y, int64_t n);
// y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * w + b  (w, b buffers may be nullptr), rows of n.
void layer_norm(BufferRef x, BufferRef w, BufferRef b, BufferRef y, int64_t rows, int64_t n,
                float eps);
// out[r] (int32) = index of the largest value of x[r, :] (first on ties, NaNs skipped, 0 for a
// row without numbers), as ops::argmax.
void argmax(BufferRef x, BufferRef out, int64_t rows, int64_t n);
// out[i, :] = the n_cols values of row ids[i] (int32) of a table of `type` rows, row r at
// table + r * row_bytes. Any matmul weight type; n_cols as matmul's k. Ids outside [0, n_rows)
// give zeros.
void get_rows(DType type, BufferRef table, size_t row_bytes, int64_t n_rows, BufferRef ids,
              BufferRef out, int64_t n_ids, int64_t n_cols);
// Records a device-to-device copy of `bytes` (in order with the kernels).
void copy(BufferRef src, BufferRef dst, size_t bytes);
// Writes `rows` rows of n f32 values (src row r at + r * ld_src elements) as dst_type (F32, F16,
// or Q8_0 with n a multiple of 32) at dst + r * ld_dst bytes: the KV cache write. Encodes as the
// CPU does (round to nearest even; Q8_0's d = amax / 127), up to the device's division rounding.
void convert_rows(BufferRef src, int64_t ld_src, DType dst_type, BufferRef dst, size_t ld_dst,
                  int64_t rows, int64_t n);

// Attention with grouped-query heads, as cpu::AttentionProblem: q [tq, n_head, d] f32 (row t at
// q + t * ldq elements, head h at + h * d); k, v: [tk, n_kv_head, d] of kv_type (F32, F16 or
// Q8_0), row t at + t * ldk / ldv bytes, head at + kh * dtype_row_bytes(kv_type, d); out like q
// with ldo. Query t sits at position pos0 + t and sees keys j <= pos0 + t (causal) and, with
// window > 0, j > pos0 + t - window. d <= 256 (Q8_0: a multiple of 32). One workgroup per query
// and head with an online softmax over chunks of 64 keys (decode and short prompts); without a
// causal mask over f32 K/V, attention_chunked below.
struct AttentionArgs {
  int64_t tq = 0, tk = 0, n_head = 0, n_kv_head = 0, d = 0;
  BufferRef q;
  int64_t ldq = 0;
  DType kv_type = DType::F16;
  BufferRef k, v;
  size_t ldk = 0, ldv = 0;
  BufferRef out;
  int64_t ldo = 0;
  float scale = 1;
  bool causal = true;
  int64_t pos0 = 0;
  int64_t window = 0;
};
void attention(const AttentionArgs& a);
// The same without causality over f32 K/V (window 0, tk > 0), for any head size and long
// sequences: per head and chunk of queries, scores [chunk, tk] (at most 32 MiB) = q · kᵀ by
// matmul, softmax, then · v (transposed once per KV head into [d, tk] scratch) by matmul.
// attention() takes this route where it is supported and d > 256 or tk >= 64.
bool attention_chunked_supported(const AttentionArgs& a);
void attention_chunked(const AttentionArgs& a);

// Rotary embedding of x [T, n_head, head_dim] f32 into y (may alias x); token t's row at
// t * ldx / t * ldy floats (q and k may be column ranges of one fused buffer). The angles (any
// scaling rule: linear, YaRN, Llama 3, LongRoPE) come from the host as nn::rope_table writes
// them: cos_sin [T, n_dims / 2, 2] f32, (cos, sin) of each pair. Pairs are (2i, 2i+1) (Norm,
// Llama) or (i, i + n_dims / 2) (Neox); dimensions past n_dims are copied.
enum class RopeStyle { Norm, Neox };
void rope(BufferRef x, int64_t ldx, BufferRef y, int64_t ldy, BufferRef cos_sin, int64_t T,
          int64_t n_head, int64_t head_dim, int64_t n_dims, RopeStyle style);

// ---- image kernels (the SDXL UNet and VAE) ------------------------------------------------------
// y[i] = a[i] op b[i / inner], i < n: one b value per run of `inner` values, e.g. a per-channel
// vector over [C, H * W] (a resnet's time embedding, y[c, :] += t[c]).
void binary_per_row(BinaryOp op, BufferRef a, BufferRef b, BufferRef y, int64_t n, int64_t inner);
// y[r, j] = x[r, j] * gelu(x[r, n + j]) (erf form) for `rows` rows of 2n (x) and n (y) values:
// diffusers' GEGLU, hidden states first, gate second.
void geglu(BufferRef x, BufferRef y, int64_t rows, int64_t n);
// torch.nn.GroupNorm over `batch` samples of [channels, spatial] f32: each sample's channels
// split into `groups` groups normalized over their channels and positions (mean, then the
// variance about it), scaled by w[c] and shifted by b[c] (w, b buffers may be nullptr), then SiLU
// when `silu`. One workgroup per (sample, group).
void group_norm(BufferRef x, BufferRef w, BufferRef b, BufferRef y, int64_t batch, int64_t channels,
                int64_t spatial, int64_t groups, float eps, bool silu);
// y [planes, 2h, 2w] = x [planes, h, w] repeated 2 x 2 (F.interpolate, mode "nearest").
void upsample_nearest2x(BufferRef x, BufferRef y, int64_t planes, int64_t h, int64_t w);
// One tile of a 2-D convolution's unfolded input: cols [np, c * kh * kw] f32 for output pixels
// p0 .. p0 + np (row-major over w_out columns) of x [c, h, w], column j = (ch * kh + ky) * kw + kx
// as a weight [C_out, c, kh, kw] flattens. Pixel (oy, ox)'s tap reads x[ch, oy * stride_h +
// ky * dilation_h - pad_h, ...], zero outside the image (padding).
struct Im2colArgs {
  BufferRef x;
  int64_t c = 0, h = 0, w = 0;
  int64_t kh = 1, kw = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t w_out = 0;
  int64_t p0 = 0, np = 0;
  BufferRef cols;
};
void im2col(const Im2colArgs& a);
// y[c, r] = x[r, c] + bias[c] (bias.buffer may be nullptr) for r < rows, c < cols; x rows at
// x + r * ldx floats, y rows at y + c * ldy. A convolution's [pixels, C_out] product into
// [C_out, pixels]; an attention head's V [T, d] into matmul's weight rows [d, T].
void transpose(BufferRef x, int64_t ldx, BufferRef bias, BufferRef y, int64_t ldy, int64_t rows,
               int64_t cols);

}  // namespace eight::vulkan
