#include "ops/rows.h"

namespace eight::ops {

Rows as_rows(const char* op, const char* what, const Tensor& t) {
  check(t.defined(), "[", op, "] ", what, " is undefined");
  check(t.device() == Device::cpu(), "[", op, "] ", what, " must be on the CPU, got ",
        t.device().name());
  check(t.dtype() == DType::F32, "[", op, "] ", what, " must be f32, got ", dtype_name(t.dtype()));
  Rows r;
  r.data = t.data<float>();
  row_layout(op, what, t, &r.count, &r.n, &r.stride);
  return r;
}

void row_layout(const char* op, const char* what, const Tensor& t, int64_t* count, int64_t* n,
                int64_t* stride) {
  check(t.dim() >= 1, "[", op, "] ", what, " must have at least 1 dimension");
  check(t.stride(-1) == 1 || t.size(-1) <= 1, "[", op, "] the last dimension of ", what,
        " must be contiguous, got strides ", t.strides().str());
  *n = t.size(-1);
  *count = 1;
  *stride = *n;
  if (t.dim() < 2) return;
  *stride = t.stride(-2);
  for (int d = 0; d + 1 < t.dim(); ++d) *count *= t.size(d);
  for (int d = 0; d + 2 < t.dim(); ++d)
    check(t.size(d) <= 1 || t.stride(d) == t.stride(d + 1) * t.size(d + 1), "[", op, "] ", what,
          " ", t.shape().str(), " with strides ", t.strides().str(),
          " does not flatten to rows; make it contiguous first");
}

void check_same_shape(const char* op, const Tensor& a, const char* an, const Tensor& b,
                      const char* bn) {
  check(a.defined() && b.defined() && a.shape() == b.shape(), "[", op, "] ", an, " ",
        a.defined() ? a.shape().str() : "undefined", " and ", bn, " ",
        b.defined() ? b.shape().str() : "undefined", " must have the same shape");
}

const float* optional_vector(const char* op, const char* what, const Tensor* t, int64_t n) {
  if (!t) return nullptr;
  check(t->defined() && t->dtype() == DType::F32 && t->numel() == n && t->is_contiguous(), "[", op,
        "] ", what, " must be a contiguous f32 tensor of ", n, " elements, got ",
        t->defined() ? t->str() : std::string("undefined"));
  return t->data<float>();
}

}  // namespace eight::ops
