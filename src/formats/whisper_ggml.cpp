#include "formats/whisper_ggml.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/dtype.h"
#include "core/error.h"

namespace eight::whisper {
namespace {

// Sequential little-endian reader over the mapped bytes; every read is bounds-checked so a
// truncated or lying file ends in an Error, never an out-of-range access.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& name)
      : data_(data), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  bool at_end() const { return pos_ == size_; }

  void need(size_t n, const std::string& what) const {
    check(n <= size_ - pos_, "[whisper] ", name_, ": ", what, " needs ", n, " bytes at offset ",
          pos_, " but the file has ", size_);
  }
  int32_t i32(const std::string& what) {
    need(4, what);
    int32_t v;
    std::memcpy(&v, data_ + pos_, 4);
    pos_ += 4;
    return v;
  }
  uint32_t u32(const std::string& what) { return static_cast<uint32_t>(i32(what)); }
  std::string bytes(size_t n, const std::string& what) {
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  void skip(size_t n, const std::string& what) {
    need(n, what);
    pos_ += n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

int32_t checked_range(int32_t v, int32_t lo, int32_t hi, const std::string& file,
                      const char* field) {
  check(v >= lo && v <= hi, "[whisper] ", file, ": ", field, " = ", v, " is outside [", lo, ", ",
        hi, "]");
  return v;
}

HParams read_hparams(Cursor& c, const std::string& file) {
  // Generous upper bounds: large-v3 has 1500 audio ctx, 1280 state, 20 heads, 32 layers, 128 mels.
  constexpr int32_t kDim = 1 << 16;
  HParams h;
  h.n_vocab = checked_range(c.i32("n_vocab"), 1, kMaxVocab, file, "n_vocab");
  h.n_audio_ctx = checked_range(c.i32("n_audio_ctx"), 1, kDim, file, "n_audio_ctx");
  h.n_audio_state = checked_range(c.i32("n_audio_state"), 1, kDim, file, "n_audio_state");
  h.n_audio_head = checked_range(c.i32("n_audio_head"), 1, kDim, file, "n_audio_head");
  h.n_audio_layer = checked_range(c.i32("n_audio_layer"), 1, kDim, file, "n_audio_layer");
  h.n_text_ctx = checked_range(c.i32("n_text_ctx"), 1, kDim, file, "n_text_ctx");
  h.n_text_state = checked_range(c.i32("n_text_state"), 1, kDim, file, "n_text_state");
  h.n_text_head = checked_range(c.i32("n_text_head"), 1, kDim, file, "n_text_head");
  h.n_text_layer = checked_range(c.i32("n_text_layer"), 1, kDim, file, "n_text_layer");
  h.n_mels = checked_range(c.i32("n_mels"), 1, 1024, file, "n_mels");
  h.ftype = checked_range(c.i32("ftype"), 0, std::numeric_limits<int32_t>::max(), file, "ftype");
  check(h.n_audio_state % h.n_audio_head == 0, "[whisper] ", file, ": n_audio_state ",
        h.n_audio_state, " is not a multiple of n_audio_head ", h.n_audio_head);
  check(h.n_text_state % h.n_text_head == 0, "[whisper] ", file, ": n_text_state ", h.n_text_state,
        " is not a multiple of n_text_head ", h.n_text_head);
  return h;
}

// The alignment a pointer to this type's data needs: the element size for plain types; 4 for
// block types whose block size keeps 4-byte multiples (Q8_K leads with a float), else 2 (blocks
// lead with a half-precision scale).
size_t natural_alignment(DType t) {
  const size_t bytes = dtype_block_bytes(t);
  if (!dtype_is_quantized(t)) return bytes;
  return bytes % 4 == 0 ? 4 : (bytes % 2 == 0 ? 2 : 1);
}

void read_tensor(Cursor& c, const std::shared_ptr<Storage>& storage, const std::string& file,
                 bool copy_misaligned, ModelFile& m) {
  const size_t header_at = c.pos();
  const int32_t n_dims = c.i32("tensor n_dims");
  const int32_t name_len = c.i32("tensor name length");
  const int32_t type_id = c.i32("tensor type");
  check(n_dims >= 1 && n_dims <= 4, "[whisper] ", file, ": tensor at offset ", header_at,
        " has n_dims ", n_dims, " (must be 1..4)");
  check(name_len >= 1 && name_len <= kMaxNameLength, "[whisper] ", file, ": tensor at offset ",
        header_at, " has name length ", name_len, " (must be 1..", kMaxNameLength, ")");
  int32_t ne[4] = {1, 1, 1, 1};
  for (int i = 0; i < n_dims; ++i) {
    ne[i] = c.i32("tensor ne");
    check(ne[i] >= 1, "[whisper] ", file, ": tensor at offset ", header_at, " has ne[", i,
          "] = ", ne[i]);
  }
  const std::string name = c.bytes(static_cast<size_t>(name_len), "tensor name");
  const auto dtype = dtype_from_id(static_cast<uint32_t>(type_id));
  check(dtype.has_value(), "[whisper] ", file, ": tensor '", name, "' has unknown ggml type ",
        type_id);
  const int64_t block = dtype_block_size(*dtype);
  check(ne[0] % block == 0, "[whisper] ", file, ": tensor '", name, "' row of ", ne[0],
        " elements is not a multiple of the ", dtype_name(*dtype), " block size ", block);
  // Each ne is below 2^31 and there are at most 4, so the row count needs an overflow check.
  uint64_t rows = 1;
  for (int i = 1; i < n_dims; ++i)
    check(!__builtin_mul_overflow(rows, static_cast<uint64_t>(ne[i]), &rows), "[whisper] ", file,
          ": tensor '", name, "' has too many elements");
  const uint64_t row_bytes = dtype_row_bytes(*dtype, ne[0]);
  uint64_t total = 0;
  check(!__builtin_mul_overflow(row_bytes, rows, &total), "[whisper] ", file, ": tensor '", name,
        "' size overflows");
  check(total <= c.size() - c.pos(), "[whisper] tensor '", name, "' needs ", total,
        " bytes at offset ", c.pos(), " but the file has ", c.size());
  check(m.tensors.count(name) == 0, "[whisper] ", file, ": tensor '", name,
        "' appears twice (second at offset ", header_at, ")");
  Dims shape;
  for (int i = n_dims - 1; i >= 0; --i) shape.push_back(ne[i]);
  // whisper.cpp writes no padding, so data can start at any byte. A view is used in place when
  // its element type's natural alignment holds; otherwise the tensor is copied into tracked host
  // memory so no kernel ever reads a misaligned float/half.
  const auto* at = static_cast<const uint8_t*>(storage->data()) + c.pos();
  m.tensor_bytes += static_cast<int64_t>(total);
  if (reinterpret_cast<uintptr_t>(at) % natural_alignment(*dtype) == 0 || !copy_misaligned) {
    m.tensors.emplace(name, Tensor::from_storage(storage, c.pos(), shape, *dtype));
  } else {
    Tensor copy = Tensor::empty(shape, *dtype);
    std::memcpy(copy.raw(), at, static_cast<size_t>(total));
    m.tensors.emplace(name, std::move(copy));
  }
  if (reinterpret_cast<uintptr_t>(at) % natural_alignment(*dtype) != 0) {
    ++m.copied_tensors;
    m.copied_bytes += static_cast<int64_t>(total);
  }
  m.tensor_names.push_back(name);
  c.skip(static_cast<size_t>(total), "tensor data");
}

}  // namespace

SpecialTokens special_tokens_for(int32_t n_vocab) {
  SpecialTokens t;
  t.multilingual = n_vocab >= 51865;
  t.eot = t.multilingual ? 50257 : 50256;
  t.sot = t.eot + 1;
  // Everything after the languages is fixed, so the language count follows from n_vocab.
  t.n_languages = n_vocab - kTimestampTokens - 6 - (t.sot + 1);
  check(t.n_languages == 99 || (t.multilingual && t.n_languages == 100), "[whisper] n_vocab ",
        n_vocab, " fits no known Whisper vocabulary (51864 .en, 51865 multilingual, 51866 v3)");
  t.translate = t.sot + 1 + t.n_languages;
  t.transcribe = t.translate + 1;
  t.solm = t.translate + 2;
  t.prev = t.translate + 3;
  t.nospeech = t.translate + 4;
  t.notimestamps = t.translate + 5;
  t.timestamp_begin = t.translate + 6;
  return t;
}

DType ftype_to_dtype(int32_t ftype) {
  switch (ftype) {
    case 0:
      return DType::F32;
    case 1:
      return DType::F16;
    case 2:
      return DType::Q4_0;
    case 3:
      return DType::Q4_1;
    case 7:
      return DType::Q8_0;
    case 8:
      return DType::Q5_0;
    case 9:
      return DType::Q5_1;
    default:
      fail("[whisper] unsupported file type ", ftype, " (known: 0 f32, 1 f16, 2 q4_0, ",
           "3 q4_1, 7 q8_0, 8 q5_0, 9 q5_1)");
  }
}

const Tensor& ModelFile::tensor(const std::string& name) const {
  auto it = tensors.find(name);
  check(it != tensors.end(), "[whisper] ", path, ": tensor '", name, "' is missing");
  return it->second;
}

namespace {

ModelFile parse_file(std::shared_ptr<Storage> storage, const std::string& name,
                     bool copy_misaligned) {
  check(storage != nullptr, "[whisper] ", name, ": no data");
  ModelFile m;
  m.path = name;
  Cursor c(static_cast<const uint8_t*>(storage->data()), storage->size(), m.path);
  const uint32_t magic = c.u32("magic");
  check(magic == kGgmlMagic, "[whisper] ", name, ": magic 0x", std::hex, magic,
        " is not 0x67676d6c (a whisper.cpp ggml file)");
  m.hparams = read_hparams(c, name);
  m.special = special_tokens_for(m.hparams.n_vocab);
  m.qnt_version = m.hparams.ftype / 1000;
  m.weight_type = ftype_to_dtype(m.hparams.ftype % 1000);

  const int32_t n_mel = c.i32("mel filters n_mel");
  const int32_t n_fft = c.i32("mel filters n_fft");
  check(n_mel == m.hparams.n_mels, "[whisper] ", name, ": mel filters have n_mel ", n_mel,
        " but hparams say n_mels ", m.hparams.n_mels);
  checked_range(n_fft, 1, 1 << 14, name, "mel filters n_fft");
  const size_t mel_bytes = static_cast<size_t>(n_mel) * static_cast<size_t>(n_fft) * 4;
  c.need(mel_bytes, "mel filters");
  m.mel_filters = Tensor::from_storage(storage, c.pos(), {n_mel, n_fft}, DType::F32);
  c.skip(mel_bytes, "mel filters");

  const int32_t n_stored = c.i32("vocab count");
  check(n_stored >= 0 && n_stored <= m.hparams.n_vocab, "[whisper] ", name, ": vocab count ",
        n_stored, " is outside [0, n_vocab ", m.hparams.n_vocab, "]");
  // Each token needs at least its 4-byte length, so the file size bounds the reservation.
  m.vocab.reserve(std::min(static_cast<size_t>(n_stored), (c.size() - c.pos()) / 4));
  for (int32_t i = 0; i < n_stored; ++i) {
    const int32_t len = c.i32("vocab token length");
    check(len >= 0 && len <= kMaxTokenLength, "[whisper] ", name, ": vocab token ", i,
          " has length ", len, " (must be 0..", kMaxTokenLength, ")");
    m.vocab.push_back(c.bytes(static_cast<size_t>(len), "vocab token"));
  }

  while (!c.at_end()) read_tensor(c, storage, name, copy_misaligned, m);
  return m;
}

}  // namespace

ModelFile parse(std::shared_ptr<Storage> storage, const std::string& name) {
  return parse_file(std::move(storage), name, true);
}

ModelFile load(const std::string& path) {
  return parse_file(std::make_shared<MappedFile>(path), path, true);
}

ModelFile scan(const std::string& path) {
  return parse_file(std::make_shared<MappedFile>(path), path, false);
}

}  // namespace eight::whisper
