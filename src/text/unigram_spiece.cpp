// SentencePiece's spiece.model: a protobuf ModelProto (sentencepiece_model.proto), read by a
// small bounded wire-format reader. Only the fields tokenization needs are kept:
//   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
//   SentencePiece   1 piece, 2 score (float), 3 type (1 normal .. 6 byte)
//   TrainerSpec     3 model_type (1 unigram), 24 treat_whitespace_as_suffix, 35 byte_fallback,
//                   40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id
//   NormalizerSpec  2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
//                   5 escape_whitespaces
// Unknown fields are skipped by wire type; every length is checked against the bytes left.
#include <cstring>

#include "core/error.h"
#include "text/unigram_impl.h"

namespace eight::text {

namespace {

class Reader {
 public:
  Reader(std::string_view bytes, const std::string& where) : s_(bytes), where_(where) {}
  bool done() const { return pos_ >= s_.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      check(pos_ < s_.size(), "[spiece] ", where_, ": truncated varint at byte ", pos_);
      const auto b = static_cast<uint8_t>(s_[pos_++]);
      v |= uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) return v;
    }
    fail("[spiece] ", where_, ": varint longer than 10 bytes at byte ", pos_);
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    check(n <= s_.size() - pos_, "[spiece] ", where_, ": field of ", n, " bytes at byte ", pos_,
          " but only ", s_.size() - pos_, " remain");
    std::string_view v = s_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  float fixed32_float() {
    check(s_.size() - pos_ >= 4, "[spiece] ", where_, ": truncated float at byte ", pos_);
    uint32_t u = 0;
    for (int i = 3; i >= 0; --i) u = u << 8 | static_cast<uint8_t>(s_[pos_ + i]);
    pos_ += 4;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  // Skips a field's value of the given wire type.
  void skip(uint32_t wire) {
    switch (wire) {
      case 0:
        varint();
        return;
      case 1:
      case 5: {
        const size_t n = wire == 1 ? 8 : 4;
        check(s_.size() - pos_ >= n, "[spiece] ", where_, ": truncated field at byte ", pos_);
        pos_ += n;
        return;
      }
      case 2:
        bytes();
        return;
      default:
        fail("[spiece] ", where_, ": unsupported protobuf wire type ", wire, " at byte ", pos_);
    }
  }
  // Next field: (number, wire type).
  std::pair<uint32_t, uint32_t> key() {
    const uint64_t k = varint();
    check((k >> 3) > 0 && (k >> 3) < (1u << 29), "[spiece] ", where_, ": bad field number ", k >> 3,
          " at byte ", pos_);
    return {static_cast<uint32_t>(k >> 3), static_cast<uint32_t>(k & 7)};
  }
  const std::string& where() const { return where_; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  const std::string& where_;
};

void expect_wire(const Reader& r, uint32_t field, uint32_t wire, uint32_t want) {
  check(wire == want, "[spiece] ", r.where(), ": field ", field, " has wire type ", wire,
        " instead of ", want);
}

UnigramPiece read_piece(std::string_view bytes, const std::string& where) {
  Reader r(bytes, where);
  UnigramPiece p;
  while (!r.done()) {
    const auto [field, wire] = r.key();
    if (field == 1) {
      expect_wire(r, field, wire, 2);
      p.text = std::string(r.bytes());
    } else if (field == 2) {
      expect_wire(r, field, wire, 5);
      p.score = r.fixed32_float();
    } else if (field == 3) {
      expect_wire(r, field, wire, 0);
      const uint64_t t = r.varint();
      check(t >= 1 && t <= 6, "[spiece] ", where, ": piece '", p.text, "' has type ", t,
            " (1 normal .. 6 byte)");
      p.type = static_cast<TokenType>(t);
    } else {
      r.skip(wire);
    }
  }
  return p;
}

int32_t read_id(Reader& r, uint32_t field, uint32_t wire) {
  expect_wire(r, field, wire, 0);
  const auto v = static_cast<int64_t>(r.varint());  // int32 fields: negatives are 10-byte varints
  check(v >= -1 && v < (int64_t{1} << 30), "[spiece] ", r.where(), ": trainer id field ", field,
        " = ", v);
  return static_cast<int32_t>(v);
}

}  // namespace

UnigramTokenizer UnigramTokenizer::from_spiece(std::string_view bytes, const std::string& name) {
  auto m = std::make_shared<Impl>();
  m->name = name;
  m->source = "spiece.model";
  m->unk = 0;  // TrainerSpec defaults
  m->eos = 2;
  m->pad = -1;
  int64_t model_type = 1;
  Reader r(bytes, name);
  while (!r.done()) {
    const auto [field, wire] = r.key();
    if (field == 1) {
      expect_wire(r, field, wire, 2);
      m->pieces.push_back(read_piece(r.bytes(), name));
    } else if (field == 2) {
      expect_wire(r, field, wire, 2);
      Reader t(r.bytes(), name);
      while (!t.done()) {
        const auto [f, w] = t.key();
        if (f == 3 && w == 0)
          model_type = static_cast<int64_t>(t.varint());
        else if (f == 24 && w == 0)
          m->whitespace_suffix = t.varint() != 0;
        else if (f == 35 && w == 0)
          m->byte_fallback = t.varint() != 0;
        else if (f == 40)
          m->unk = read_id(t, f, w);
        else if (f == 42)
          m->eos = read_id(t, f, w);
        else if (f == 43)
          m->pad = read_id(t, f, w);
        else
          t.skip(w);
      }
    } else if (field == 3) {
      expect_wire(r, field, wire, 2);
      Reader n(r.bytes(), name);
      while (!n.done()) {
        const auto [f, w] = n.key();
        if (f == 2 && w == 2)
          m->charsmap = Charsmap::parse(n.bytes(), name);
        else if (f == 3 && w == 0)
          m->add_dummy_prefix = n.varint() != 0;
        else if (f == 4 && w == 0)
          m->remove_extra_whitespaces = n.varint() != 0;
        else if (f == 5 && w == 0)
          m->escape_whitespaces = n.varint() != 0;
        else
          n.skip(w);
      }
    } else {
      r.skip(wire);
    }
  }
  check(model_type == 1, "[spiece] ", name, " is a ",
        model_type == 2   ? "BPE"
        : model_type == 3 ? "word"
        : model_type == 4 ? "char"
                          : "unknown",
        " SentencePiece model (model_type ", model_type, "), not unigram");
  const auto n = static_cast<int64_t>(m->pieces.size());
  check(m->unk >= 0 && m->unk < n &&
            m->pieces[static_cast<size_t>(m->unk)].type == TokenType::Unknown,
        "[spiece] ", name, ": unk_id ", m->unk, " is not an unknown-type piece of the ", n);
  if (m->eos >= n) m->eos = -1;
  if (m->pad >= n) m->pad = -1;
  for (const UnigramPiece& p : m->pieces)
    if (p.type == TokenType::UserDefined) m->user_defined.push_back(p.text);
  m->finish();
  return UnigramTokenizer(std::move(m));
}

}  // namespace eight::text
