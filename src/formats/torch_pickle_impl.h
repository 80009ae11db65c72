#pragma once
// Internal to the restricted unpickler: what the opcode loop (torch_pickle.cpp) asks of the
// allow-listed calls (torch_pickle_calls.cpp).
#include <string>

#include "core/error.h"

#include "formats/torch_pickle.h"

namespace eight::pickle {

class Context {
 public:
  virtual ~Context() = default;
  // Throws Error naming the input, the opcode and its offset.
  [[noreturn]] void error(const std::string& what) const { fail("[pickle] ", where(), ": ", what); }
  // "<name> (opcode 0x.. at byte N)".
  virtual std::string where() const = 0;
  virtual Value* make(Kind k) = 0;
  virtual void count_items(size_t n) = 0;
};

// GLOBAL: a Kind::Global value for an allowed name; any other name is an error naming it.
const Value* resolve_global(Context& cx, const std::string& module, const std::string& name);
// REDUCE / NEWOBJ: `fn` must be an allowed Global; the result is an inert value.
const Value* call(Context& cx, const Value* fn, const Value* args);
// BUILD: sets the state of an Object or dict; tensors ignore it (their state is Python-only).
void build(Context& cx, Value* target, const Value* state);
// BINPERSID / PERSID: torch's ('storage', <type>, key, location, numel) ids.
const Value* persistent_load(Context& cx, const Value* pid);
// Errors when the value nests deeper than `max_depth` (or is cyclic).
void check_depth(Context& cx, const Value& root, size_t max_depth);

}  // namespace eight::pickle
