// /v1/images/generations (OpenAI) and /sdapi/v1/txt2img (A1111) over an image pipeline.
#include "server/image_service.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "core/log.h"
#include "formats/png.h"
#include "server/api_error.h"
#include "server/base64.h"

namespace eight::server {

using json = nlohmann::json;

struct ImageService::Job {
  diffusion::ImageRequest request;
  int count = 1;
};

namespace {

json parse_body(const ServiceRequest& req) {
  try {
    json j = json::parse(req.body);
    if (!j.is_object()) bad_request("", "the request body must be a JSON object");
    return j;
  } catch (const json::exception& e) {
    bad_request("", std::string("the request body is not valid JSON: ") + e.what());
  }
}

// j[key] as T when present and not null; a 400 naming the key when it has the wrong type.
template <class T>
T get(const json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) bad_request(key, cat("'", key, "' must be a string"));
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) bad_request(key, cat("'", key, "' must be a number"));
  } else {
    if (!it->is_number_integer()) bad_request(key, cat("'", key, "' must be an integer"));
  }
  return it->get<T>();
}

uint64_t pick_seed(int64_t seed) {
  if (seed >= 0) return static_cast<uint64_t>(seed);
  return std::random_device{}() & 0x7fffffffu;  // -1: random, as A1111
}

std::string parameters_text(const diffusion::ImageRequest& rq, const diffusion::ImageResult& r,
                            const std::string& model) {
  std::string s = rq.prompt + "\n";
  if (!rq.negative_prompt.empty()) s += "Negative prompt: " + rq.negative_prompt + "\n";
  return s + cat("Steps: ", r.steps, ", Sampler: ", r.sampler, ", CFG scale: ", r.cfg_scale,
                 ", Seed: ", r.seed, ", Size: ", rq.width, "x", rq.height, ", Model: ", model,
                 ", Version: eight");
}

}  // namespace

ImageService::ImageService(std::unique_ptr<diffusion::ImagePipeline> pipeline, ThreadPool& pool,
                           ImageServiceOptions options)
    : pipeline_(std::move(pipeline)),
      pool_(pool),
      options_(std::move(options)),
      queue_(options_.queue, "image") {
  if (options_.model_id.empty()) options_.model_id = pipeline_->name();
}

std::vector<std::string> ImageService::model_ids() const {
  return {options_.model_id};
}

std::vector<Route> ImageService::routes() {
  std::vector<Route> r;
  for (const char* prefix : {"/v1", ""})
    r.push_back({"POST", std::string(prefix) + "/images/generations",
                 [this](const ServiceRequest& q) { return openai(q); }});
  r.push_back({"POST", "/sdapi/v1/txt2img", [this](const ServiceRequest& q) { return a1111(q); }});
  return r;
}

std::vector<ImageService::Generated> ImageService::run(const Job& job) {
  const diffusion::ImageRequest& rq = job.request;
  if (rq.width <= 0 || rq.height <= 0 || rq.width * rq.height > options_.max_pixels)
    bad_request("size", cat("the image size ", rq.width, "x", rq.height, " is outside 1 to ",
                            options_.max_pixels, " pixels"));
  if (job.count < 1 || job.count > options_.max_images)
    bad_request("n",
                cat("between 1 and ", options_.max_images, " images per request, not ", job.count));
  if (rq.steps < 0 || rq.steps > 150) bad_request("steps", "steps must be between 1 and 150");
  if (!rq.sampler.empty()) {
    const auto& names = diffusion::scheduler_names();
    if (std::find(names.begin(), names.end(), rq.sampler) == names.end())
      bad_request("sampler",
                  cat("unknown sampler '", rq.sampler, "' (euler, euler_a, dpm++2m, lcm, ddim)"));
  }
  return queue_.run([&] { return generate(job); });
}

std::vector<ImageService::Generated> ImageService::generate(const Job& job) {
  const diffusion::ImageRequest& rq = job.request;
  std::vector<Generated> images;
  for (int i = 0; i < job.count; ++i) {
    diffusion::ImageRequest one = rq;
    one.seed = rq.seed + static_cast<uint64_t>(i);
    diffusion::ImageResult r;
    try {
      r = pipeline_->generate(one, pool_);
    } catch (const ApiError&) {
      throw;
    } catch (const Error& e) {
      bad_request("", e.what());  // sizes and settings the model refuses
    }
    log_info("[images] ", one.width, "x", one.height, ", ", r.steps, " steps of ", r.sampler,
             " in ", r.timings.text_s + r.timings.denoise_s + r.timings.decode_s, " s");
    const std::vector<uint8_t> rgb = diffusion::to_rgb8(r.image);
    images.push_back(
        {.png = image::encode_png(rgb, static_cast<int>(one.width), static_cast<int>(one.height),
                                  {{"parameters", parameters_text(one, r, options_.model_id)}}),
         .sampler = r.sampler,
         .steps = r.steps,
         .cfg_scale = r.cfg_scale,
         .seed = one.seed});
  }
  return images;
}

ServiceResponse ImageService::openai(const ServiceRequest& req) {
  const json j = parse_body(req);
  Job job;
  diffusion::ImageRequest& rq = job.request;
  rq.prompt = get<std::string>(j, "prompt", "");
  if (rq.prompt.empty()) bad_request("prompt", "'prompt' is required");
  const std::string model = get<std::string>(j, "model", "");
  if (!model.empty() && model != options_.model_id && model != "dall-e-2" && model != "dall-e-3")
    throw ApiError(404, "invalid_request_error",
                   cat("the model '", model, "' does not exist; this server draws with '",
                       options_.model_id, "'"),
                   "model", "model_not_found");
  const std::string format = get<std::string>(j, "response_format", "b64_json");
  if (format != "b64_json")
    bad_request("response_format",
                "only response_format 'b64_json' is served (eight keeps no image URLs)");
  const std::string size = get<std::string>(j, "size", "512x512");
  long long w = 0, h = 0;
  char extra = 0;
  if (std::sscanf(size.c_str(), "%lldx%lld%c", &w, &h, &extra) != 2)
    bad_request("size", "size must look like '512x512', not '" + size + "'");
  rq.width = w;
  rq.height = h;
  job.count = static_cast<int>(get<int64_t>(j, "n", 1));
  rq.negative_prompt = get<std::string>(j, "negative_prompt", "");
  rq.steps = get<int64_t>(j, "steps", 0);
  rq.cfg_scale = get<double>(j, "cfg_scale", -1.0);
  rq.sampler = get<std::string>(j, "sampler", "");
  rq.seed = pick_seed(get<int64_t>(j, "seed", -1));
  const std::vector<Generated> images = run(job);
  json data = json::array();
  for (const auto& g : images)
    data.push_back(
        {{"b64_json", base64_encode(g.png.data(), g.png.size())}, {"revised_prompt", rq.prompt}});
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return {.status = 200,
          .body = json{{"created", std::chrono::duration_cast<std::chrono::seconds>(now).count()},
                       {"data", data}}
                      .dump(),
          .content_type = "application/json"};
}

ServiceResponse ImageService::a1111(const ServiceRequest& req) {
  const json j = parse_body(req);
  Job job;
  diffusion::ImageRequest& rq = job.request;
  rq.prompt = get<std::string>(j, "prompt", "");
  rq.negative_prompt = get<std::string>(j, "negative_prompt", "");
  rq.steps = get<int64_t>(j, "steps", 0);
  rq.cfg_scale = get<double>(j, "cfg_scale", -1.0);
  rq.width = get<int64_t>(j, "width", 512);
  rq.height = get<int64_t>(j, "height", 512);
  rq.seed = pick_seed(get<int64_t>(j, "seed", -1));
  // A1111's sampler names ("Euler a", "DPM++ 2M Karras", "LCM") or eight's.
  std::string sampler = get<std::string>(j, "sampler_name", "");
  std::string lower;
  for (char c : sampler) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "euler a" || lower == "euler_a")
    rq.sampler = "euler_a";
  else if (lower == "euler")
    rq.sampler = "euler";
  else if (lower.rfind("dpm++ 2m", 0) == 0 || lower == "dpm++2m")
    rq.sampler = "dpm++2m";
  else if (lower == "lcm")
    rq.sampler = "lcm";
  else if (lower == "ddim")
    rq.sampler = "ddim";
  else if (!lower.empty())
    bad_request("sampler_name",
                "unknown sampler '" + sampler + "' (Euler, Euler a, DPM++ 2M, LCM, DDIM)");
  job.count = static_cast<int>(get<int64_t>(j, "batch_size", 1) * get<int64_t>(j, "n_iter", 1));
  const std::vector<Generated> generated = run(job);
  json images = json::array(), seeds = json::array();
  for (const auto& g : generated) {
    images.push_back(base64_encode(g.png.data(), g.png.size()));
    seeds.push_back(g.seed);
  }
  const Generated& first = generated.front();
  json params = j;
  params["seed"] = rq.seed;
  const json info = {{"prompt", rq.prompt},
                     {"negative_prompt", rq.negative_prompt},
                     {"seed", rq.seed},
                     {"all_seeds", seeds},
                     {"width", rq.width},
                     {"height", rq.height},
                     {"sampler_name", first.sampler},
                     {"steps", first.steps},
                     {"cfg_scale", first.cfg_scale},
                     {"sd_model_name", options_.model_id}};
  return {.status = 200,
          .body = json{{"images", images}, {"parameters", params}, {"info", info.dump()}}.dump(),
          .content_type = "application/json"};
}

}  // namespace eight::server
