// The pushdown matcher. A stack is a chain of frames (element position, parent frame); frames are
// hash-consed, so a stack is one frame id and equal stacks are equal ids. The matcher's state is a
// set of stacks (every way the text so far can be read), also hash-consed, plus the bits of a
// UTF-8 character still being read. Because references in tail position push no return frame,
// repetition (`x*` is `r ::= x r | ε`) keeps the stack the same size and the set the same id, so
// transitions (memoized per set and code point) and whole vocabulary masks (memoized per state)
// are reused across the many steps inside a string or a list.
#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "text/grammar.h"
#include "text/grammar_impl.h"

namespace eight::text {

namespace {

constexpr int32_t kAccept = 0;  // the frame id of the empty stack: the text is complete
constexpr int32_t kDead = 0;    // the id of the empty set (interned first): no way to go on
constexpr int32_t kMaxDepth = 20000;
// Work allowed for reading one character (closure steps over all stacks). Nested repetitions
// such as ((x+)+)+ multiply the ways to read a text with every character; past this the grammar
// is refused as too ambiguous instead of taking seconds or gigabytes per character.
constexpr int64_t kMaxStepWork = 200000;
constexpr size_t kMaskCacheEntries = 128;

struct VecHash {
  size_t operator()(const std::vector<int32_t>& v) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t x : v) h = (h ^ static_cast<uint32_t>(x)) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

}  // namespace

// A position in the text: the set of stacks and a UTF-8 character in progress (its bits so far,
// bytes still missing, and its total length).
struct Cursor {
  int32_t set = kDead;
  uint32_t bits = 0;
  uint8_t left = 0, total = 0;
  uint64_t key() const {
    return static_cast<uint64_t>(static_cast<uint32_t>(set)) << 32 | uint64_t(bits) << 5 |
           uint64_t(left) << 3 | total;
  }
};

struct GrammarMatcher::State {
  std::shared_ptr<const Grammar> grammar;
  std::shared_ptr<const GrammarVocab> vocab;
  const GrammarRules* g;

  struct Frame {
    int32_t pos, parent, depth;
    int64_t min;  // fewest bytes that complete the text from this frame
  };
  std::vector<Frame> frames;
  std::unordered_map<uint64_t, int32_t> frame_ids;

  struct SetInfo {
    std::vector<int32_t> frames;  // sorted
    int64_t min = 0;
    bool complete = false, more = false;
  };
  std::vector<SetInfo> sets;
  std::unordered_map<std::vector<int32_t>, int32_t, VecHash> set_ids;
  std::vector<int32_t> ascii_next;  // [set * 128 + byte]: memoized ASCII transitions (-2: unknown)
  std::unordered_map<uint64_t, int32_t> next;  // (set << 21 | code point) → set

  struct MaskEntry {
    uint64_t key = 0, used = 0;
    int64_t max_min = 0;  // the largest completion cost among the allowed tokens
    std::vector<uint32_t> bits;
  };
  std::vector<MaskEntry> masks;
  uint64_t clock = 0;

  Cursor start, cur;

  // Scratch for closures.
  std::vector<std::pair<int32_t, int32_t>> work;
  int64_t work_left = 0;  // closure steps left for the character being read (kMaxStepWork)
  std::vector<uint64_t> seen;
  std::unordered_set<uint64_t> seen_big;
  std::vector<Cursor> walk;

  State(std::shared_ptr<const Grammar> gr, std::shared_ptr<const GrammarVocab> v)
      : grammar(std::move(gr)), vocab(std::move(v)), g(&grammar->rules()) {
    frames.push_back({-1, -1, 0, 0});  // kAccept
    std::vector<int32_t> out;
    intern_set(out);  // kDead
    work_left = kMaxStepWork;
    for (int32_t a : g->alts[static_cast<size_t>(g->root)]) closure(a, kAccept, out);
    start = cur = {intern_set(out), 0, 0, 0};
  }

  int32_t frame(int32_t pos, int32_t parent) {
    const uint64_t k = uint64_t(static_cast<uint32_t>(pos)) << 32 | static_cast<uint32_t>(parent);
    auto [it, fresh] = frame_ids.emplace(k, static_cast<int32_t>(frames.size()));
    if (fresh) {
      const Frame& p = frames[static_cast<size_t>(parent)];
      frames.push_back({pos, parent, p.depth + 1, g->rest_min[static_cast<size_t>(pos)] + p.min});
    }
    return it->second;
  }

  // Closures are usually a handful of positions (a linear scan is fastest); a rule with many
  // alternatives switches to a hash set.
  bool first_visit(uint64_t k) {
    if (seen.size() < 64) {
      if (std::find(seen.begin(), seen.end(), k) != seen.end()) return false;
      seen.push_back(k);
      if (seen.size() == 64) seen_big.insert(seen.begin(), seen.end());
      return true;
    }
    return seen_big.insert(k).second;
  }

  // Adds to `out` every stack reachable from position `pos` over `parent` without reading input:
  // references expand into their alternatives, finished alternatives return to their parent.
  void closure(int32_t pos0, int32_t parent0, std::vector<int32_t>& out) {
    work.assign(1, {pos0, parent0});
    seen.clear();
    if (!seen_big.empty()) seen_big.clear();
    while (!work.empty()) {
      auto [pos, parent] = work.back();
      work.pop_back();
      if (--work_left < 0)
        fail("[grammar] more than ", kMaxStepWork,
             " parse steps for one character: the grammar is too ambiguous (nested repetitions "
             "such as ((x+)+)+?)");
      const uint64_t k = uint64_t(static_cast<uint32_t>(pos)) << 32 | static_cast<uint32_t>(parent);
      if (!first_visit(k)) continue;  // ε-loops
      const GrammarElem& e = g->elems[static_cast<size_t>(pos)];
      if (e.kind == GrammarElem::Chars) {
        out.push_back(frame(pos, parent));
      } else if (e.kind == GrammarElem::End) {
        if (parent == kAccept) {
          out.push_back(kAccept);
        } else {
          const Frame& f = frames[static_cast<size_t>(parent)];
          work.emplace_back(f.pos, f.parent);
        }
      } else {
        if (frames[static_cast<size_t>(parent)].depth >= kMaxDepth) continue;  // too deep: dead
        const bool tail = g->elems[static_cast<size_t>(pos) + 1].kind == GrammarElem::End;
        const int32_t ret = tail ? parent : frame(pos + 1, parent);
        for (int32_t a : g->alts[static_cast<size_t>(e.arg)]) work.emplace_back(a, ret);
      }
    }
  }

  int32_t intern_set(std::vector<int32_t>& fr) {
    std::sort(fr.begin(), fr.end());
    fr.erase(std::unique(fr.begin(), fr.end()), fr.end());
    auto it = set_ids.find(fr);
    if (it != set_ids.end()) return it->second;
    const int32_t id = static_cast<int32_t>(sets.size());
    SetInfo info;
    info.min = std::numeric_limits<int64_t>::max();
    for (int32_t f : fr) {
      info.min = std::min(info.min, frames[static_cast<size_t>(f)].min);
      (f == kAccept ? info.complete : info.more) = true;
    }
    info.frames = fr;
    sets.push_back(std::move(info));
    set_ids.emplace(fr, id);
    ascii_next.resize(ascii_next.size() + 128, -2);
    return id;
  }

  static bool dead(int32_t set) { return set == kDead; }

  int32_t advance(int32_t set, uint32_t cp) {
    if (cp < 128) {
      int32_t& slot = ascii_next[static_cast<size_t>(set) * 128 + cp];
      if (slot == -2) {
        const int32_t r = advance_slow(set, cp);
        ascii_next[static_cast<size_t>(set) * 128 + cp] = r;  // `slot` may have moved
        return r;
      }
      return slot;
    }
    const uint64_t k = uint64_t(static_cast<uint32_t>(set)) << 21 | cp;
    auto it = next.find(k);
    if (it != next.end()) return it->second;
    const int32_t r = advance_slow(set, cp);
    next.emplace(k, r);
    return r;
  }

  int32_t advance_slow(int32_t set, uint32_t cp) {
    std::vector<int32_t> out;
    work_left = kMaxStepWork;
    const std::vector<int32_t> from = sets[static_cast<size_t>(set)].frames;  // sets may grow
    for (int32_t f : from) {
      if (f == kAccept) continue;
      const Frame fr = frames[static_cast<size_t>(f)];
      const GrammarElem& e = g->elems[static_cast<size_t>(fr.pos)];
      if (g->classes[static_cast<size_t>(e.arg)].matches(cp)) closure(fr.pos + 1, fr.parent, out);
    }
    return intern_set(out);
  }

  bool may_start(int32_t set, uint32_t lo, uint32_t hi) const {
    for (int32_t f : sets[static_cast<size_t>(set)].frames) {
      if (f == kAccept) continue;
      const GrammarElem& e = g->elems[static_cast<size_t>(frames[static_cast<size_t>(f)].pos)];
      if (g->classes[static_cast<size_t>(e.arg)].may_match(lo, hi)) return true;
    }
    return false;
  }

  // One byte. Returns a cursor with set kDead when the byte cannot follow.
  Cursor step(Cursor c, uint8_t b) {
    Cursor out;
    if (c.left == 0) {
      if (b < 0x80) {
        out.set = advance(c.set, b);
        return out;
      }
      const uint8_t total = (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
      if (total == 0 || b == 0xC0 || b == 0xC1) return out;
      c.total = total;
      c.left = static_cast<uint8_t>(total - 1);
      c.bits = b & (0x7Fu >> total);
    } else {
      if ((b & 0xC0) != 0x80) return out;
      c.bits = c.bits << 6 | (b & 0x3Fu);
      if (--c.left == 0) {
        static constexpr uint32_t kMinLen[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (c.bits < kMinLen[c.total] || c.bits > 0x10FFFF || (c.bits >= 0xD800 && c.bits < 0xE000))
          return out;
        out.set = advance(c.set, c.bits);
        return out;
      }
    }
    // The code points this prefix can still become (overlong forms excluded).
    static constexpr uint32_t kMinCp[5] = {0, 0, 0x80, 0x800, 0x10000};
    const uint32_t lo = std::max(c.bits << (6 * c.left), kMinCp[c.total]);
    const uint32_t hi = std::min((c.bits << (6 * c.left)) | ((1u << (6 * c.left)) - 1), 0x10FFFFu);
    if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF)) return out;  // none valid (or surrogates)
    if (!may_start(c.set, lo, hi)) return out;
    return c;
  }

  static bool ok(const Cursor& c) { return !dead(c.set); }
  int64_t min_bytes(const Cursor& c) const { return sets[static_cast<size_t>(c.set)].min + c.left; }
  bool complete(const Cursor& c) const {
    return c.left == 0 && sets[static_cast<size_t>(c.set)].complete;
  }

  // One walk of the trie from `c`, skipping each subtree whose first bytes are rejected. Tokens
  // after which completing would take more than `limit` bytes are left out. Returns the largest
  // completion cost among the tokens the grammar itself allows.
  int64_t walk_trie(const Cursor& c, int64_t limit, std::span<uint32_t> mask) {
    const GrammarVocab::Trie& t = vocab->trie();
    std::fill(mask.begin(), mask.end(), 0u);
    int64_t max_min = 0;
    walk.resize(1);
    walk[0] = c;
    const int32_t n = static_cast<int32_t>(t.byte.size());
    for (int32_t k = 1; k < n;) {
      const size_t d = t.depth[static_cast<size_t>(k)];
      const Cursor s = step(walk[d - 1], t.byte[static_cast<size_t>(k)]);
      if (!ok(s)) {
        k = t.end[static_cast<size_t>(k)];
        continue;
      }
      if (walk.size() <= d) walk.resize(d + 1);
      walk[d] = s;
      const int32_t first = t.token_first[static_cast<size_t>(k)];
      const int32_t last = t.token_first[static_cast<size_t>(k) + 1];
      if (first < last) {
        const int64_t m = min_bytes(s);
        max_min = std::max(max_min, m);
        if (m <= limit)
          for (int32_t i = first; i < last; ++i) {
            const auto id = static_cast<uint32_t>(t.token_ids[static_cast<size_t>(i)]);
            mask[id >> 5] |= 1u << (id & 31);
          }
      }
      ++k;
    }
    if (complete(c))
      for (int32_t id : vocab->eog()) mask[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
    return max_min;
  }

  MaskEntry& cached_mask(const Cursor& c, size_t words) {
    const uint64_t key = c.key();
    ++clock;
    for (auto& m : masks)
      if (m.key == key && !m.bits.empty()) {
        m.used = clock;
        return m;
      }
    MaskEntry* slot = nullptr;
    if (masks.size() < kMaskCacheEntries) {
      slot = &masks.emplace_back();
    } else {
      slot = &*std::min_element(
          masks.begin(), masks.end(),
          [](const MaskEntry& a, const MaskEntry& b) { return a.used < b.used; });
    }
    slot->key = key;
    slot->used = clock;
    slot->bits.resize(words);
    slot->max_min = walk_trie(c, std::numeric_limits<int64_t>::max(), slot->bits);
    return *slot;
  }
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar,
                               std::shared_ptr<const GrammarVocab> vocab)
    : s_(std::make_unique<State>(std::move(grammar), std::move(vocab))) {}
GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&&) noexcept = default;

bool GrammarMatcher::accept_text(std::string_view bytes) {
  Cursor c = s_->cur;
  for (char b : bytes) {
    c = s_->step(c, static_cast<uint8_t>(b));
    if (!s_->ok(c)) return false;
  }
  s_->cur = c;
  return true;
}

bool GrammarMatcher::accept(int32_t token) {
  const GrammarVocab* v = s_->vocab.get();
  if (!v || token < 0 || token >= v->size()) return false;
  if (v->is_eog(token)) return is_complete();
  if (!v->is_text(token) || v->piece(token).empty()) return false;
  return accept_text(v->piece(token));
}

void GrammarMatcher::fill_mask(std::span<uint32_t> mask, int64_t remaining_tokens) {
  check(s_->vocab != nullptr, "[grammar] this matcher has no vocabulary");
  const size_t words = mask_words(s_->vocab->size());
  check(mask.size() >= words, "[grammar] mask of ", mask.size(), " words, need ", words);
  mask = mask.first(words);
  const State::MaskEntry& m = s_->cached_mask(s_->cur, words);
  // Within budget: after this token, remaining_tokens - 1 tokens of at least one byte each.
  const int64_t limit = remaining_tokens - 1;
  if (remaining_tokens < 0 || m.max_min <= limit) {
    std::copy(m.bits.begin(), m.bits.end(), mask.begin());
    return;
  }
  s_->walk_trie(s_->cur, limit, mask);
  for (uint32_t w : mask)
    if (w) return;
  // Nothing closes in time (a vocabulary without single-byte tokens): stay within the grammar.
  std::copy(m.bits.begin(), m.bits.end(), mask.begin());
}

bool GrammarMatcher::is_complete() const {
  return s_->complete(s_->cur);
}
bool GrammarMatcher::can_continue() const {
  return s_->cur.left > 0 || s_->sets[static_cast<size_t>(s_->cur.set)].more;
}
int64_t GrammarMatcher::min_bytes_to_complete() const {
  return s_->min_bytes(s_->cur);
}
void GrammarMatcher::reset() {
  s_->cur = s_->start;
}

bool Grammar::matches(std::string_view text) const {
  // A non-owning handle: the matcher lives only inside this call.
  GrammarMatcher m(std::shared_ptr<const Grammar>(std::shared_ptr<const Grammar>(), this), nullptr);
  return m.accept_text(text) && m.is_complete();
}

}  // namespace eight::text
