// Checks on a compiled grammar: every rule can finish, and no rule reaches itself on the left
// through a reference that leaves something to return to (that would grow the stack forever
// without reading a byte). Also the fewest bytes that finish each alternative, which the matcher
// uses to close bounded outputs in time.
#include <algorithm>
#include <functional>
#include <limits>
#include <queue>

#include "core/error.h"
#include "text/grammar_impl.h"

namespace eight::text {

namespace {

constexpr int64_t kInf = std::numeric_limits<int64_t>::max() / 4;

int64_t class_min_bytes(const CharClass& c) {
  if (!c.negated) {
    uint32_t lo = UINT32_MAX;
    for (const auto& r : c.ranges) lo = std::min(lo, r.first);
    return lo == UINT32_MAX ? kInf : utf8_length(lo);
  }
  // The smallest code point the class does not exclude.
  uint32_t cp = 0;
  for (bool moved = true; moved && cp <= 0x10FFFF;) {
    moved = false;
    for (const auto& r : c.ranges)
      if (cp >= r.first && cp <= r.second) {
        cp = r.second + 1;
        moved = true;
      }
  }
  return cp > 0x10FFFF ? kInf : utf8_length(cp);
}

// Left recursion that grows the stack: a cycle of leftmost references (each preceded only by
// nullable elements) in which at least one reference is not the last element of its alternative.
// Found with Tarjan's strongly connected components, written iteratively (grammars from fuzzers
// can chain thousands of rules).
void check_left_recursion(const GrammarRules& g, const std::vector<int64_t>& rule_min) {
  const size_t n = g.alts.size();
  struct Edge {
    int32_t to;
    bool tail;
  };
  std::vector<std::vector<Edge>> edges(n);
  for (size_t r = 0; r < n; ++r)
    for (int32_t a : g.alts[r])
      for (int32_t p = a; g.elems[static_cast<size_t>(p)].kind != GrammarElem::End; ++p) {
        const GrammarElem& e = g.elems[static_cast<size_t>(p)];
        if (e.kind == GrammarElem::Chars) break;
        edges[r].push_back({e.arg, g.elems[static_cast<size_t>(p) + 1].kind == GrammarElem::End});
        if (rule_min[static_cast<size_t>(e.arg)] > 0) break;
      }
  std::vector<int32_t> index(n, -1), low(n, 0), comp(n, -1), stack;
  std::vector<bool> on_stack(n, false);
  int32_t counter = 0, n_comp = 0;
  struct Frame {
    int32_t v;
    size_t next;
  };
  for (size_t s = 0; s < n; ++s) {
    if (index[s] >= 0) continue;
    std::vector<Frame> dfs{{static_cast<int32_t>(s), 0}};
    index[s] = low[s] = counter++;
    stack.push_back(static_cast<int32_t>(s));
    on_stack[s] = true;
    while (!dfs.empty()) {
      Frame& f = dfs.back();
      const size_t v = static_cast<size_t>(f.v);
      if (f.next < edges[v].size()) {
        const size_t w = static_cast<size_t>(edges[v][f.next++].to);
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack.push_back(static_cast<int32_t>(w));
          on_stack[w] = true;
          dfs.push_back({static_cast<int32_t>(w), 0});
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      if (low[v] == index[v]) {
        for (int32_t w = -1; w != static_cast<int32_t>(v);) {
          w = stack.back();
          stack.pop_back();
          on_stack[static_cast<size_t>(w)] = false;
          comp[static_cast<size_t>(w)] = n_comp;
        }
        ++n_comp;
      }
      dfs.pop_back();
      if (!dfs.empty()) {
        const size_t u = static_cast<size_t>(dfs.back().v);
        low[u] = std::min(low[u], low[v]);
      }
    }
  }
  for (size_t r = 0; r < n; ++r)
    for (const Edge& e : edges[r])
      if (!e.tail && comp[r] == comp[static_cast<size_t>(e.to)])
        fail("[gbnf] rule '", g.names[r], "' is left-recursive (through '",
             g.names[static_cast<size_t>(e.to)], "'); rewrite it with repetition");
}

}  // namespace

bool CharClass::may_match(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (const auto& r : ranges)
      if (r.first <= hi && r.second >= lo) return true;
    return false;
  }
  // Negated: some code point of [lo, hi] is outside the union of the ranges (sorted by
  // grammar_finalize): sweep them in order of their start.
  uint64_t next = lo;  // the first code point not yet known to be excluded
  for (const auto& r : ranges) {
    if (r.first > next) break;
    next = std::max<uint64_t>(next, uint64_t(r.second) + 1);
    if (next > hi) return false;
  }
  return next <= hi;
}

int utf8_length(uint32_t cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

void grammar_finalize(GrammarRules& g) {
  for (CharClass& c : g.classes) std::sort(c.ranges.begin(), c.ranges.end());
  const size_t n = g.alts.size();
  std::vector<int64_t> rule_min(n, kInf), class_min(g.classes.size());
  for (size_t c = 0; c < g.classes.size(); ++c) class_min[c] = class_min_bytes(g.classes[c]);
  auto elem_min = [&](const GrammarElem& e) {
    return e.kind == GrammarElem::Chars ? class_min[static_cast<size_t>(e.arg)]
                                        : rule_min[static_cast<size_t>(e.arg)];
  };
  // Knuth's generalization of Dijkstra: an alternative's length is a sum, never below any of its
  // parts, so rules can be settled in order of their final minimum (one pass, no fixpoint).
  struct Alt {
    int32_t rule;
    int64_t sum = 0;
    int32_t pending = 0;  // references to rules not settled yet
  };
  std::vector<Alt> alts;
  std::vector<std::vector<int32_t>> uses(n);  // rule → the alternatives that refer to it
  using Item = std::pair<int64_t, int32_t>;   // (length, rule)
  std::priority_queue<Item, std::vector<Item>, std::greater<>> ready;
  for (size_t r = 0; r < n; ++r)
    for (int32_t a : g.alts[r]) {
      Alt alt{static_cast<int32_t>(r)};
      for (int32_t p = a; g.elems[static_cast<size_t>(p)].kind != GrammarElem::End; ++p) {
        const GrammarElem& e = g.elems[static_cast<size_t>(p)];
        if (e.kind == GrammarElem::Chars) {
          alt.sum = std::min(kInf, alt.sum + class_min[static_cast<size_t>(e.arg)]);
        } else {
          ++alt.pending;
          uses[static_cast<size_t>(e.arg)].push_back(static_cast<int32_t>(alts.size()));
        }
      }
      if (alt.pending == 0 && alt.sum < kInf) ready.emplace(alt.sum, alt.rule);
      alts.push_back(alt);
    }
  while (!ready.empty()) {
    const auto [len, r] = ready.top();
    ready.pop();
    if (rule_min[static_cast<size_t>(r)] < kInf) continue;  // settled already
    rule_min[static_cast<size_t>(r)] = len;
    for (int32_t a : uses[static_cast<size_t>(r)]) {
      Alt& alt = alts[static_cast<size_t>(a)];
      alt.sum = std::min(kInf, alt.sum + len);
      if (--alt.pending == 0 && alt.sum < kInf) ready.emplace(alt.sum, alt.rule);
    }
  }
  for (size_t r = 0; r < n; ++r)
    check(rule_min[r] < kInf, "[gbnf] rule '", g.names[r],
          "' can never finish (every alternative needs itself or an empty class)");
  g.rest_min.assign(g.elems.size(), 0);
  for (size_t p = g.elems.size(); p-- > 0;) {
    const GrammarElem& e = g.elems[p];
    g.rest_min[p] =
        e.kind == GrammarElem::End ? 0 : std::min(kInf, elem_min(e) + g.rest_min[p + 1]);
  }
  check_left_recursion(g, rule_min);
}

}  // namespace eight::text
