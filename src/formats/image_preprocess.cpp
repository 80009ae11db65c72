// CLIP preprocessing exactly as Hugging Face's CLIPImageProcessor does it with PIL: resize the
// shortest side with PIL's BICUBIC (a = -0.5, support widened by the scale when shrinking, 8-bit
// fixed-point taps, horizontal pass then vertical, each rounded to uint8), center crop (padding
// with zeros when the image is smaller), rescale, normalize, channels first.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <vector>

#include "core/error.h"
#include "formats/image.h"

namespace eight::image {
namespace {

// Keys' cubic convolution kernel with a = -0.5 (PIL's BICUBIC filter), support 2.
double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= std::numbers::pi;
  return std::sin(x) / x;
}

// PIL's LANCZOS: sinc windowed by sinc(x / 3), support 3 (the half-open interval as PIL's).
double lanczos(double x) {
  return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0;
}

// PIL keeps 8-bit resampling in 32-bit integers: 22 fractional bits leave room for 8 bits of pixel
// and 2 of headroom for the kernel's overshoot.
constexpr int kPrecisionBits = 32 - 8 - 2;

// The taps of one output position along one axis: input [first, first + weights.size()).
struct Taps {
  int first = 0;
  std::vector<int32_t> weights;
};

// PIL's precompute_coeffs + normalize_coeffs_8bpc for the input span [in0, in1) of an axis of
// in_size pixels → out_size (in1 < 0: the whole axis). A span of zero length (PIL's box with equal
// ends) gives every output the taps around in0: how A1111 stretches an edge row.
std::vector<Taps> resample_taps(int in_size, int out_size, Filter filter = Filter::Bicubic,
                                double in0 = 0.0, double in1 = -1.0) {
  if (in1 < 0) in1 = in_size;
  const double scale = (in1 - in0) / out_size;
  const double filter_scale = std::max(scale, 1.0);  // antialias: widen the kernel when shrinking
  const double support = (filter == Filter::Lanczos ? 3.0 : 2.0) * filter_scale;
  const double ss = 1.0 / filter_scale;
  std::vector<Taps> taps(static_cast<size_t>(out_size));
  std::vector<double> w;
  for (int i = 0; i < out_size; ++i) {
    const double center = in0 + (i + 0.5) * scale;
    // Truncation (not floor) as PIL's (int) cast; both ends clamp to the image.
    const int lo = std::max(0, static_cast<int>(center - support + 0.5));
    const int hi = std::min(in_size, static_cast<int>(center + support + 0.5));
    w.assign(static_cast<size_t>(std::max(0, hi - lo)), 0.0);
    double sum = 0.0;
    for (int x = lo; x < hi; ++x) {
      const double t = (x - center + 0.5) * ss;
      sum += w[x - lo] = filter == Filter::Lanczos ? lanczos(t) : bicubic(t);
    }
    Taps& t = taps[static_cast<size_t>(i)];
    t.first = lo;
    t.weights.resize(w.size());
    for (size_t k = 0; k < w.size(); ++k) {
      const double v = (sum != 0.0 ? w[k] / sum : w[k]) * (1 << kPrecisionBits);
      t.weights[k] = static_cast<int32_t>(v < 0 ? v - 0.5 : v + 0.5);
    }
  }
  return taps;
}

uint8_t clip8(int32_t v) {
  if (v < 0) return 0;
  if (v >= (1 << (kPrecisionBits + 8))) return 255;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// Sum of `taps` over RGB pixels `stride` bytes apart, where `src` holds input position `origin`.
void apply_taps(const Taps& t, int origin, const uint8_t* src, int64_t stride, uint8_t* out) {
  int32_t acc[3] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1),
                    1 << (kPrecisionBits - 1)};
  src += (t.first - origin) * stride;
  for (int32_t w : t.weights) {
    acc[0] += src[0] * w;
    acc[1] += src[1] * w;
    acc[2] += src[2] * w;
    src += stride;
  }
  out[0] = clip8(acc[0]);
  out[1] = clip8(acc[1]);
  out[2] = clip8(acc[2]);
}

// One axis of the crop: output [dst, dst + len) takes the resized image's [src, src + len).
struct Span1D {
  int src = 0, dst = 0, len = 0;
};

// transformers' center_crop: offset (size - crop) // 2 when the image is large enough, otherwise
// the whole image pasted at ceil((crop - size) / 2) on zeros.
Span1D crop_span(int size, int crop) {
  if (size >= crop) return {(size - crop) / 2, 0, crop};
  return {0, (crop - size + 1) / 2, size};
}

// The resized size: shortest side → shortest_edge, the other int(edge * long / short) (Python's
// true division then truncation, as get_resize_output_image_size).
void resized_size(int w, int h, int edge, int* out_w, int* out_h) {
  const int shorter = std::min(w, h), longer = std::max(w, h);
  const int other = static_cast<int>(static_cast<double>(int64_t{edge} * longer) / shorter);
  *out_w = w <= h ? edge : other;
  *out_h = w <= h ? other : edge;
}

// A size field: an int, or an object with `key` (or "height"/"width" when key is empty).
int size_field(const nlohmann::json& j, const char* field, const char* key) {
  const auto& v = j.at(field);
  int64_t n = 0;
  if (v.is_number_integer()) {
    n = v.get<int64_t>();
  } else if (v.is_object() && v.contains(key) && v.at(key).is_number_integer()) {
    n = v.at(key).get<int64_t>();
  } else {
    fail("[preprocessor_config] \"", field, "\" must be an integer or hold an integer \"", key,
         "\", got ", v.dump());
  }
  check(n >= 1 && n <= 8192, "[preprocessor_config] \"", field, "\" ", key, " = ", n,
        " is outside 1..8192");
  return static_cast<int>(n);
}

void read_triple(const nlohmann::json& j, const char* field, float out[3], bool positive) {
  if (!j.contains(field) || j.at(field).is_null()) return;
  const auto& v = j.at(field);
  if (v.is_number()) {
    for (int c = 0; c < 3; ++c) out[c] = v.get<float>();
  } else {
    check(v.is_array() && v.size() == 3, "[preprocessor_config] \"", field,
          "\" must be a number or a list of 3 numbers, got ", v.dump());
    for (int c = 0; c < 3; ++c) {
      check(v[c].is_number(), "[preprocessor_config] \"", field, "\"[", c, "] is not a number");
      out[c] = v[c].get<float>();
    }
  }
  for (int c = 0; c < 3; ++c)
    check(std::isfinite(out[c]) && (!positive || out[c] > 0), "[preprocessor_config] \"", field,
          "\"[", c, "] = ", out[c], " is not ", positive ? "a positive number" : "finite");
}

void read_bool(const nlohmann::json& j, const char* field, bool* out) {
  if (!j.contains(field) || j.at(field).is_null()) return;
  check(j.at(field).is_boolean(), "[preprocessor_config] \"", field, "\" must be true or false");
  *out = j.at(field).get<bool>();
}

}  // namespace

PreprocessConfig parse_preprocess_config(const std::string& json_text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    fail("[preprocessor_config] not valid JSON: ", e.what());
  }
  check(j.is_object(), "[preprocessor_config] must be a JSON object");
  PreprocessConfig cfg;
  if (j.contains("size") && !j.at("size").is_null()) {
    const auto& size = j.at("size");
    // {"height", "width"} means a fixed resize without keeping the aspect ratio, which
    // CLIPImageProcessor's shortest-edge pipeline does not do.
    check(!size.is_object() || size.contains("shortest_edge"), "[preprocessor_config] \"size\" ",
          size.dump(), " is not supported: CLIP preprocessing needs {\"shortest_edge\": N}");
    cfg.shortest_edge = size_field(j, "size", "shortest_edge");
  }
  if (j.contains("crop_size") && !j.at("crop_size").is_null()) {
    if (j.at("crop_size").is_number_integer()) {
      cfg.crop_height = cfg.crop_width = size_field(j, "crop_size", "height");
    } else {
      cfg.crop_height = size_field(j, "crop_size", "height");
      cfg.crop_width = size_field(j, "crop_size", "width");
    }
  }
  read_bool(j, "do_resize", &cfg.do_resize);
  read_bool(j, "do_center_crop", &cfg.do_center_crop);
  read_bool(j, "do_normalize", &cfg.do_normalize);
  read_bool(j, "do_rescale", &cfg.do_rescale);
  if (j.contains("rescale_factor") && !j.at("rescale_factor").is_null()) {
    check(j.at("rescale_factor").is_number(),
          "[preprocessor_config] \"rescale_factor\" must be a number");
    cfg.rescale_factor = j.at("rescale_factor").get<double>();
    check(std::isfinite(cfg.rescale_factor) && cfg.rescale_factor > 0,
          "[preprocessor_config] \"rescale_factor\" = ", cfg.rescale_factor, " must be positive");
  }
  read_triple(j, "image_mean", cfg.mean, false);
  read_triple(j, "image_std", cfg.std, true);
  // PIL's resampling codes: 3 is BICUBIC, the only filter implemented here (every CLIP checkpoint
  // uses it); anything else would silently give different pixels.
  if (j.contains("resample") && !j.at("resample").is_null()) {
    const auto& r = j.at("resample");
    check(r.is_number_integer() && r.get<int64_t>() == 3,
          "[preprocessor_config] \"resample\" = ", r.dump(), " is not supported (only 3, bicubic)");
  }
  return cfg;
}

Image resize(const Image& image, int width, int height) {
  return resize(image, width, height, {});
}

Image resize(const Image& image, int width, int height, const ResizeOptions& options) {
  const int W = image.width, H = image.height;
  check(image.rgb.defined() && image.rgb.dim() == 3 && image.rgb.size(0) == H &&
            image.rgb.size(1) == W && image.rgb.size(2) == 3 && image.rgb.is_contiguous(),
        "[image.resize] expects a contiguous [", H, ", ", W, ", 3] image");
  check(W > 0 && H > 0 && width > 0 && height > 0 && int64_t{width} * height <= kMaxPixels,
        "[image.resize] cannot resize ", W, "x", H, " to ", width, "x", height);
  const std::array<double, 4> box = options.box.value_or(std::array<double, 4>{0, 0, 0, 0});
  const double x0 = options.box ? box[0] : 0, x1 = options.box ? box[2] : W;
  const double y0 = options.box ? box[1] : 0, y1 = options.box ? box[3] : H;
  check(x0 >= 0 && y0 >= 0 && x1 >= x0 && y1 >= y0 && x1 <= W && y1 <= H, "[image.resize] box (",
        x0, ", ", y0, ", ", x1, ", ", y1, ") is outside the ", W, "x", H, " image");
  // Pillow resamples one axis at a time, rounding to uint8 after each pass, so the order matters
  // for exact pixels: horizontal first, except when the width grows while the height shrinks
  // (then the smaller vertical result goes through the horizontal pass), as Pillow 13 does.
  auto horizontal = [&](const Image& in) {
    const std::vector<Taps> tx = resample_taps(in.width, width, options.filter, x0, x1);
    Image out{width, in.height, Tensor::empty({in.height, width, 3}, DType::I8)};
    const auto* src = in.rgb.data<const uint8_t>();
    auto* dst = out.rgb.data<uint8_t>();
    for (int y = 0; y < in.height; ++y)
      for (int x = 0; x < width; ++x)
        apply_taps(tx[static_cast<size_t>(x)], 0, src + static_cast<int64_t>(y) * in.width * 3, 3,
                   dst + (static_cast<int64_t>(y) * width + x) * 3);
    return out;
  };
  auto vertical = [&](const Image& in) {
    const std::vector<Taps> ty = resample_taps(in.height, height, options.filter, y0, y1);
    Image out{in.width, height, Tensor::empty({height, in.width, 3}, DType::I8)};
    const auto* src = in.rgb.data<const uint8_t>();
    auto* dst = out.rgb.data<uint8_t>();
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < in.width; ++x)
        apply_taps(ty[static_cast<size_t>(y)], 0, src + static_cast<int64_t>(x) * 3,
                   static_cast<int64_t>(in.width) * 3,
                   dst + (static_cast<int64_t>(y) * in.width + x) * 3);
    return out;
  };
  // PIL skips an axis whose size and span are unchanged.
  const bool need_x = width != W || x0 != 0 || x1 != W;
  const bool need_y = height != H || y0 != 0 || y1 != H;
  if (!need_x && !need_y) return image;
  if (!need_x) return vertical(image);
  if (!need_y) return horizontal(image);
  if (width > W && height < H) return horizontal(vertical(image));
  return vertical(horizontal(image));
}

Tensor preprocess(const Image& image, const PreprocessConfig& cfg) {
  const int W = image.width, H = image.height;
  check(image.rgb.defined() && image.rgb.dim() == 3 && image.rgb.size(0) == H &&
            image.rgb.size(1) == W && image.rgb.size(2) == 3 && image.rgb.is_contiguous(),
        "[image.preprocess] expects a contiguous [", H, ", ", W, ", 3] image, got ",
        image.rgb.defined() ? image.rgb.str() : "nothing");
  check(W > 0 && H > 0, "[image.preprocess] empty image ", W, "x", H);
  int rw = W, rh = H;
  if (cfg.do_resize) resized_size(W, H, cfg.shortest_edge, &rw, &rh);
  check(rw > 0 && rh > 0, "[image.preprocess] a ", W, "x", H, " image resized to shortest edge ",
        cfg.shortest_edge, " would be ", rw, "x", rh);
  const int out_w = cfg.do_center_crop ? cfg.crop_width : rw;
  const int out_h = cfg.do_center_crop ? cfg.crop_height : rh;
  const Span1D sx = cfg.do_center_crop ? crop_span(rw, out_w) : Span1D{0, 0, rw};
  const Span1D sy = cfg.do_center_crop ? crop_span(rh, out_h) : Span1D{0, 0, rh};

  // Only the resized pixels inside the crop are computed: each output pixel depends on its own
  // taps alone, so this equals resizing everything and then cropping.
  const auto* src = image.rgb.data<const uint8_t>();
  const bool need_x = rw != W, need_y = rh != H;
  const std::vector<Taps> tx = need_x ? resample_taps(W, rw) : std::vector<Taps>();
  const std::vector<Taps> ty = need_y ? resample_taps(H, rh) : std::vector<Taps>();
  // Input rows the vertical pass reads for the kept output rows.
  int row_lo = sy.src, row_hi = sy.src + sy.len;
  if (need_y && sy.len > 0) {
    row_lo = ty[static_cast<size_t>(sy.src)].first;
    row_hi = 0;
    for (int y = sy.src; y < sy.src + sy.len; ++y) {
      const Taps& t = ty[static_cast<size_t>(y)];
      row_hi = std::max(row_hi, t.first + static_cast<int>(t.weights.size()));
    }
  }
  // Horizontal pass: rows [row_lo, row_hi) of the input → kept columns. mid: [rows, sx.len, 3].
  const int mid_rows = std::max(0, row_hi - row_lo);
  Tensor mid = Tensor::empty({std::max(1, mid_rows), std::max(1, sx.len), 3}, DType::I8);
  auto* m = mid.data<uint8_t>();
  for (int r = 0; r < mid_rows; ++r) {
    const uint8_t* row = src + static_cast<int64_t>(row_lo + r) * W * 3;
    uint8_t* out = m + static_cast<int64_t>(r) * sx.len * 3;
    for (int x = 0; x < sx.len; ++x) {
      if (need_x)
        apply_taps(tx[static_cast<size_t>(sx.src + x)], 0, row, 3, out + x * 3);
      else
        std::copy_n(row + (sx.src + x) * 3, 3, out + x * 3);
    }
  }
  // Vertical pass, then rescale and normalize into channels-first floats. Padding stays 0 before
  // rescaling, as transformers pads the uint8 image.
  auto value = [&](int c, uint8_t v) {
    // transformers rescales in float64 then stores float32, and normalizes in float32.
    const float r =
        cfg.do_rescale ? static_cast<float>(v * cfg.rescale_factor) : static_cast<float>(v);
    return cfg.do_normalize ? (r - cfg.mean[c]) / cfg.std[c] : r;
  };
  Tensor out = Tensor::empty({3, out_h, out_w}, DType::F32);
  float* o = out.data<float>();
  const int64_t plane = static_cast<int64_t>(out_h) * out_w;
  for (int c = 0; c < 3; ++c) std::fill_n(o + c * plane, plane, value(c, 0));
  uint8_t px[3];
  for (int y = 0; y < sy.len; ++y) {
    for (int x = 0; x < sx.len; ++x) {
      if (need_y) {
        apply_taps(ty[static_cast<size_t>(sy.src + y)], row_lo, m + x * 3,
                   static_cast<int64_t>(sx.len) * 3, px);
      } else {
        std::copy_n(m + (static_cast<int64_t>(y + sy.src - row_lo) * sx.len + x) * 3, 3, px);
      }
      const int64_t at = static_cast<int64_t>(sy.dst + y) * out_w + sx.dst + x;
      for (int c = 0; c < 3; ++c) o[c * plane + at] = value(c, px[c]);
    }
  }
  return out;
}

}  // namespace eight::image
