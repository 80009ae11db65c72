#include "models/sdxl/single_file.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace eight::sdxl {
namespace {

const std::string kUNet = "model.diffusion_model.";
const std::string kVAE = "first_stage_model.";
const std::string kCLIPL = "conditioner.embedders.0.transformer.";
const std::string kOpenCLIP = "conditioner.embedders.1.model.";

// Names a file may carry that hold no inference weight: buffers (position ids, OpenCLIP's causal
// mask), the contrastive logit scale, EMA copies, the VAE's training loss, sampler tables.
bool is_known_extra(const std::string& name) {
  return name.starts_with("model_ema.") || name.starts_with("first_stage_model.loss.") ||
         name.starts_with("denoiser.") || name == kCLIPL + "text_model.embeddings.position_ids" ||
         name == kOpenCLIP + "logit_scale" || name == kOpenCLIP + "attn_mask";
}

bool eat(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// Reads "<digits>." from the front of s.
bool eat_index(std::string_view& s, int64_t& index) {
  size_t n = 0;
  int64_t v = 0;
  while (n < s.size() && n < 9 && s[n] >= '0' && s[n] <= '9') v = v * 10 + (s[n++] - '0');
  if (n == 0 || n >= s.size() || s[n] != '.') return false;
  index = v;
  s.remove_prefix(n + 1);
  return true;
}

// Replaces the first matching old prefix of `sub` by its new one; nullopt when none matches.
std::optional<std::string> rename_sub(std::string_view sub,
                                      const std::vector<std::pair<const char*, const char*>>& map) {
  for (const auto& [old_prefix, new_prefix] : map)
    if (sub.starts_with(old_prefix))
      return std::string(new_prefix) + std::string(sub.substr(std::string_view(old_prefix).size()));
  return std::nullopt;
}

// What a module of the original layout must hold, checked once per module found.
enum class Kind {
  unet_resnet,
  unet_attention,
  unet_downsample,
  unet_upsample,
  vae_resnet,
  vae_attention,
  clip_layer,
  open_clip_layer,
  plain
};

std::vector<std::string> required_leaves(Kind kind) {
  auto wb = [](std::initializer_list<const char*> modules) {
    std::vector<std::string> out;
    for (const char* m : modules) {
      out.push_back(std::string(m) + ".weight");
      out.push_back(std::string(m) + ".bias");
    }
    return out;
  };
  switch (kind) {
    case Kind::unet_resnet:
      return wb({"in_layers.0", "in_layers.2", "emb_layers.1", "out_layers.0", "out_layers.3"});
    case Kind::unet_attention:
      return wb({"norm", "proj_in", "proj_out"});
    case Kind::unet_downsample:
      return wb({"op"});
    case Kind::unet_upsample:
      return wb({"conv"});
    case Kind::vae_resnet:
      return wb({"norm1", "conv1", "norm2", "conv2"});
    case Kind::vae_attention:
      return wb({"norm", "q", "k", "v", "proj_out"});
    case Kind::clip_layer:
      return wb({"layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                 "self_attn.out_proj", "layer_norm2", "mlp.fc1", "mlp.fc2"});
    case Kind::open_clip_layer: {
      auto out = wb({"ln_1", "attn.out_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"});
      out.push_back("attn.in_proj_weight");
      out.push_back("attn.in_proj_bias");
      return out;
    }
    case Kind::plain:
      return {"weight", "bias"};
  }
  return {};
}

bool is_leaf(Kind kind, std::string_view sub) {
  for (const auto& leaf : required_leaves(kind))
    if (sub == leaf) return true;
  return false;
}

std::vector<std::string> transformer_block_leaves() {
  std::vector<std::string> out;
  for (const char* m : {"norm1", "norm2", "norm3", "attn1.to_out.0", "attn2.to_out.0",
                        "ff.net.0.proj", "ff.net.2"}) {
    out.push_back(std::string(m) + ".weight");
    out.push_back(std::string(m) + ".bias");
  }
  for (const char* a : {"attn1", "attn2"})
    for (const char* p : {"to_q", "to_k", "to_v"}) out.push_back(cat(a, ".", p, ".weight"));
  return out;
}

// The original UNet's block layout, read from the names: where each "input_blocks.N.K",
// "middle_block.K" and "output_blocks.N.K" module goes in diffusers' down/mid/up blocks.
struct UNetLayout {
  std::map<std::string, std::pair<std::string, Kind>> modules;  // original -> (diffusers, kind)
};

const std::vector<std::pair<const char*, const char*>> kUNetResnet = {
    {"in_layers.0.", "norm1."},          {"in_layers.2.", "conv1."},
    {"emb_layers.1.", "time_emb_proj."}, {"out_layers.0.", "norm2."},
    {"out_layers.3.", "conv2."},         {"skip_connection.", "conv_shortcut."}};

const std::vector<std::pair<const char*, const char*>> kUNetFixed = {
    {"time_embed.0.", "time_embedding.linear_1."},
    {"time_embed.2.", "time_embedding.linear_2."},
    {"label_emb.0.0.", "add_embedding.linear_1."},
    {"label_emb.0.2.", "add_embedding.linear_2."},
    {"input_blocks.0.0.", "conv_in."},
    {"out.0.", "conv_norm_out."},
    {"out.2.", "conv_out."}};

Kind unet_module_kind(std::string_view sub) {
  if (sub.starts_with("op.")) return Kind::unet_downsample;
  if (sub.starts_with("conv.")) return Kind::unet_upsample;
  for (const auto& [old_prefix, unused] : kUNetResnet)
    if (sub.starts_with(old_prefix)) return Kind::unet_resnet;
  return Kind::unet_attention;
}

class Splitter {
 public:
  Splitter(std::vector<std::string> names, std::function<Tensor(const std::string&)> get,
           std::string where)
      : names_(names.begin(), names.end()), get_(std::move(get)), where_(std::move(where)) {}

  Components run() {
    unet();
    vae();
    clip_l();
    open_clip();
    check_all_used();
    return std::move(out_);
  }

  // A UNet alone (its names under model.diffusion_model.).
  Components run_unet() {
    unet();
    check_all_used();
    return std::move(out_);
  }

  // A VAE file alone (its names already under first_stage_model.).
  Components run_vae() {
    vae();
    check_all_used();
    return std::move(out_);
  }

 private:
  void check_all_used() const {
    std::vector<std::string> unknown;
    for (const auto& name : names_)
      if (!used_.count(name) && !is_known_extra(name)) unknown.push_back(name);
    if (!unknown.empty()) {
      std::string list;
      for (size_t i = 0; i < unknown.size() && i < 5; ++i)
        list += cat(i ? ", " : "", "'", unknown[i], "'");
      fail("[sdxl] ", where_, ": ", unknown.size(), " tensor(s) of no known SDXL part: ", list,
           unknown.size() > 5 ? ", ..." : "");
    }
  }

  [[noreturn]] void missing(const std::string& name) const {
    fail("[sdxl] ", where_, ": tensor '", name, "' is missing");
  }

  Tensor take(const std::string& name) {
    if (!names_.count(name)) missing(name);
    used_.insert(name);
    return get_(name);
  }

  void require(const std::string& prefix, Kind kind) {
    for (const auto& leaf : required_leaves(kind)) {
      const std::string name = prefix + "." + leaf;
      if (!names_.count(name)) missing(name);
    }
  }

  // The names under `prefix`, without it.
  std::vector<std::string> under(const std::string& prefix) const {
    std::vector<std::string> out;
    for (auto it = names_.lower_bound(prefix); it != names_.end() && it->starts_with(prefix); ++it)
      out.push_back(it->substr(prefix.size()));
    return out;
  }

  // Indices 0..n-1 of a repeated module must all be there.
  void require_indices(const std::string& prefix, const std::set<int64_t>& found) {
    if (found.empty()) fail("[sdxl] ", where_, ": no tensor named '", prefix, "0.*'");
    for (int64_t i = 0; i <= *found.rbegin(); ++i)
      if (!found.count(i))
        fail("[sdxl] ", where_, ": '", prefix, i, ".*' is missing (", prefix, *found.rbegin(),
             " is present)");
  }

  void unet() {
    const auto subs = under(kUNet);
    UNetLayout layout = unet_layout(subs);
    for (const auto& [original, target] : layout.modules) {
      require(kUNet + original, target.second);
      if (target.second == Kind::unet_attention) {
        std::set<int64_t> blocks;
        for (const auto& sub : under(kUNet + original + ".transformer_blocks.")) {
          std::string_view s = sub;
          int64_t t = 0;
          if (eat_index(s, t)) blocks.insert(t);
        }
        require_indices(kUNet + original + ".transformer_blocks.", blocks);
        for (int64_t t : blocks)
          for (const auto& leaf : transformer_block_leaves()) {
            const auto name = cat(kUNet, original, ".transformer_blocks.", t, ".", leaf);
            if (!names_.count(name)) missing(name);
          }
      }
    }
    for (const auto& [old_prefix, unused] : kUNetFixed)
      require(kUNet + std::string(old_prefix).substr(0, std::string(old_prefix).size() - 1),
              Kind::plain);
    for (const auto& sub : subs) {
      std::string_view s = sub;
      std::optional<std::string> name = rename_sub(s, kUNetFixed);
      if (!name) name = unet_block_name(layout, s);
      if (name) out_.unet[*name] = take(kUNet + sub);
    }
  }

  UNetLayout unet_layout(const std::vector<std::string>& subs) {
    // (block, module) -> kind, for each of the three block lists.
    std::map<std::pair<int64_t, int64_t>, Kind> input, output, middle;
    for (const auto& sub : subs) {
      std::string_view s = sub;
      int64_t n = 0, k = 0;
      std::map<std::pair<int64_t, int64_t>, Kind>* list = nullptr;
      if (eat(s, "input_blocks.") && eat_index(s, n) && n > 0) {
        list = &input;
      } else if (s = sub; eat(s, "output_blocks.") && eat_index(s, n)) {
        list = &output;
      } else if (s = sub; eat(s, "middle_block.")) {
        list = &middle;
      }
      if (!list || !eat_index(s, k)) continue;  // left for the unknown-name check
      const Kind kind = unet_module_kind(s);
      const auto [it, fresh] = list->emplace(std::make_pair(n, k), kind);
      if (!fresh && it->second != kind)
        fail("[sdxl] ", where_, ": tensor '", kUNet, sub,
             "' does not fit the other tensors of its block");
    }
    UNetLayout layout;
    auto add = [&](const std::string& original, const std::string& target, Kind kind) {
      layout.modules[original] = {target, kind};
    };
    // Down levels: ResNet blocks (each with an optional attention) closed by a downsampler.
    std::vector<int64_t> down_resnets{0};
    for (const auto& [at, kind] : input) {
      const auto [n, k] = at;
      const int64_t level = static_cast<int64_t>(down_resnets.size()) - 1;
      const auto original = cat("input_blocks.", n, ".", k);
      if (kind == Kind::unet_downsample) {
        add(original, cat("down_blocks.", level, ".downsamplers.0"), kind);
        down_resnets.push_back(0);
      } else if (kind == Kind::unet_resnet) {
        add(original, cat("down_blocks.", level, ".resnets.", down_resnets.back()++), kind);
      } else if (kind == Kind::unet_attention && down_resnets.back() > 0) {
        add(original, cat("down_blocks.", level, ".attentions.", down_resnets.back() - 1), kind);
      } else {
        fail("[sdxl] ", where_, ": '", kUNet, original,
             "' is not a ResNet, attention or downsampler");
      }
    }
    // Up levels: ResNet blocks (optional attention), each level but the last closed by an
    // upsampler in the same block.
    std::vector<int64_t> up_resnets{0};
    bool close_level = false;
    int64_t last_block = -1;
    for (const auto& [at, kind] : output) {
      const auto [n, k] = at;
      if (n != last_block && close_level) {
        up_resnets.push_back(0);
        close_level = false;
      }
      last_block = n;
      const int64_t level = static_cast<int64_t>(up_resnets.size()) - 1;
      const auto original = cat("output_blocks.", n, ".", k);
      if (kind == Kind::unet_upsample) {
        add(original, cat("up_blocks.", level, ".upsamplers.0"), kind);
        close_level = true;
      } else if (kind == Kind::unet_resnet) {
        add(original, cat("up_blocks.", level, ".resnets.", up_resnets.back()++), kind);
      } else if (kind == Kind::unet_attention && up_resnets.back() > 0) {
        add(original, cat("up_blocks.", level, ".attentions.", up_resnets.back() - 1), kind);
      } else {
        fail("[sdxl] ", where_, ": '", kUNet, original,
             "' is not a ResNet, attention or upsampler");
      }
    }
    int64_t mid_resnets = 0, mid_attentions = 0;
    for (const auto& [at, kind] : middle) {
      const auto original = cat("middle_block.", at.second);
      if (kind == Kind::unet_resnet)
        add(original, cat("mid_block.resnets.", mid_resnets++), kind);
      else if (kind == Kind::unet_attention)
        add(original, cat("mid_block.attentions.", mid_attentions++), kind);
      else
        fail("[sdxl] ", where_, ": '", kUNet, original, "' is a resampler in the middle block");
    }
    // Every down level has the same number of ResNet blocks and every up level one more: a
    // missing block shows here rather than as a silently smaller UNet.
    for (size_t i = 0; i < down_resnets.size(); ++i)
      if (down_resnets[i] != down_resnets[0] || down_resnets[i] == 0)
        fail("[sdxl] ", where_, ": down level ", i, " has ", down_resnets[i],
             " ResNet blocks but level 0 has ", down_resnets[0]);
    if (up_resnets.size() != down_resnets.size())
      fail("[sdxl] ", where_, ": ", up_resnets.size(), " up levels but ", down_resnets.size(),
           " down levels");
    for (size_t i = 0; i < up_resnets.size(); ++i)
      if (up_resnets[i] != down_resnets[0] + 1)
        fail("[sdxl] ", where_, ": up level ", i, " has ", up_resnets[i], " ResNet blocks, not ",
             down_resnets[0] + 1);
    if (mid_resnets != 2 || mid_attentions != 1)
      fail("[sdxl] ", where_, ": the middle block has ", mid_resnets, " ResNet blocks and ",
           mid_attentions, " attentions, not 2 and 1");
    return layout;
  }

  std::optional<std::string> unet_block_name(const UNetLayout& layout, std::string_view s) {
    // s: "<list>.N.K.<sub>" or "middle_block.K.<sub>"; the module is everything before <sub>.
    std::string_view rest = s;
    int64_t n = 0, k = 0;
    if (eat(rest, "middle_block.")) {
      if (!eat_index(rest, k)) return std::nullopt;
    } else if (!((eat(rest, "input_blocks.") || eat(rest, "output_blocks.")) &&
                 eat_index(rest, n) && eat_index(rest, k))) {
      return std::nullopt;
    }
    const std::string module(s.substr(0, s.size() - rest.size() - 1));
    const auto it = layout.modules.find(module);
    if (it == layout.modules.end()) return std::nullopt;
    const auto& [target, kind] = it->second;
    std::optional<std::string> sub;
    switch (kind) {
      case Kind::unet_resnet:
        sub = rename_sub(rest, kUNetResnet);
        break;
      case Kind::unet_attention:
        sub = std::string(rest);
        break;
      case Kind::unet_downsample:
        sub = rename_sub(rest, {{"op.", "conv."}});
        break;
      case Kind::unet_upsample:
        sub = rename_sub(rest, {{"conv.", "conv."}});
        break;
      default:
        break;
    }
    if (!sub) return std::nullopt;
    return target + "." + *sub;
  }

  void vae() {
    const auto subs = under(kVAE);
    int64_t up_levels = 0;
    for (const auto& sub : subs) {
      std::string_view s = sub;
      int64_t i = 0;
      if (eat(s, "decoder.up.") && eat_index(s, i)) up_levels = std::max(up_levels, i + 1);
    }
    for (const char* side : {"encoder.", "decoder."}) {
      for (const char* m : {"conv_in", "norm_out", "conv_out"})
        require(cat(kVAE, side, m), Kind::plain);
      require(cat(kVAE, side, "mid.block_1"), Kind::vae_resnet);
      require(cat(kVAE, side, "mid.block_2"), Kind::vae_resnet);
      require(cat(kVAE, side, "mid.attn_1"), Kind::vae_attention);
    }
    require(kVAE + "quant_conv", Kind::plain);
    require(kVAE + "post_quant_conv", Kind::plain);
    const std::vector<std::pair<const char*, const char*>> resnet = {
        {"norm1.", "norm1."},
        {"conv1.", "conv1."},
        {"norm2.", "norm2."},
        {"conv2.", "conv2."},
        {"nin_shortcut.", "conv_shortcut."}};
    const std::vector<std::pair<const char*, const char*>> attention = {{"norm.", "group_norm."},
                                                                        {"q.", "to_q."},
                                                                        {"k.", "to_k."},
                                                                        {"v.", "to_v."},
                                                                        {"proj_out.", "to_out.0."}};
    for (const auto& sub : subs) {
      std::string_view s = sub;
      std::optional<std::string> name;
      int64_t i = 0, j = 0;
      if (eat(s, "quant_conv.") || eat(s, "post_quant_conv.")) {
        name = sub;
      } else if (std::string side = sub.starts_with("encoder.") ? "encoder." : "decoder.";
                 eat(s, side)) {
        const std::string_view level_part = s;
        if (eat(s, "conv_in.") || eat(s, "conv_out.")) {
          name = sub;
        } else if (eat(s, "norm_out.")) {
          name = side + "conv_norm_out." + std::string(s);
        } else if (eat(s, "mid.block_") && eat_index(s, i) && (i == 1 || i == 2)) {
          if (auto r = rename_sub(s, resnet))
            name = cat(side, "mid_block.resnets.", i - 1, ".", *r);
        } else if (s = level_part; eat(s, "mid.attn_1.")) {
          if (auto r = rename_sub(s, attention)) name = side + "mid_block.attentions.0." + *r;
        } else if (s = level_part; side == "encoder." && eat(s, "down.") && eat_index(s, i)) {
          if (eat(s, "downsample.conv."))
            name = cat(side, "down_blocks.", i, ".downsamplers.0.conv.", s);
          else if (eat(s, "block.") && eat_index(s, j)) {
            require(cat(kVAE, side, "down.", i, ".block.", j), Kind::vae_resnet);
            if (auto r = rename_sub(s, resnet))
              name = cat(side, "down_blocks.", i, ".resnets.", j, ".", *r);
          }
        } else if (s = level_part; side == "decoder." && eat(s, "up.") && eat_index(s, i)) {
          const int64_t level = up_levels - 1 - i;  // the original counts up levels from the bottom
          if (eat(s, "upsample.conv."))
            name = cat(side, "up_blocks.", level, ".upsamplers.0.conv.", s);
          else if (eat(s, "block.") && eat_index(s, j)) {
            require(cat(kVAE, side, "up.", i, ".block.", j), Kind::vae_resnet);
            if (auto r = rename_sub(s, resnet))
              name = cat(side, "up_blocks.", level, ".resnets.", j, ".", *r);
          }
        }
      }
      if (!name) continue;
      Tensor t = take(kVAE + sub);
      if (name->find(".mid_block.attentions.0.to_") != std::string::npos &&
          name->ends_with(".weight")) {
        // A 1x1 convolution [C, C, 1, 1] in the original, a linear [C, C] in diffusers.
        if (t.dim() == 4 && t.size(2) == 1 && t.size(3) == 1 && t.is_contiguous())
          t = t.reshape({t.size(0), t.size(1)});
        else if (t.dim() != 2)
          fail("[sdxl] ", where_, ": tensor '", kVAE, sub, "' has shape ", t.shape().str(),
               ", not [C, C, 1, 1]");
      }
      out_.vae[*name] = t;
    }
  }

  void clip_l() {
    const std::string root = kCLIPL + "text_model.";
    for (const char* m :
         {"embeddings.token_embedding.weight", "embeddings.position_embedding.weight",
          "final_layer_norm.weight", "final_layer_norm.bias"})
      if (!names_.count(root + m)) missing(root + m);
    std::set<int64_t> layers;
    for (const auto& sub : under(kCLIPL)) {
      std::string_view s = sub;
      int64_t n = 0;
      if (!eat(s, "text_model.")) continue;
      bool keep = false;
      if (eat(s, "encoder.layers.")) {
        keep = eat_index(s, n) && is_leaf(Kind::clip_layer, s);
        if (keep) layers.insert(n);
      } else {
        keep = s == "embeddings.token_embedding.weight" ||
               s == "embeddings.position_embedding.weight" || s == "final_layer_norm.weight" ||
               s == "final_layer_norm.bias";
      }
      if (keep) out_.text_encoder[sub] = take(kCLIPL + sub);
    }
    require_indices(root + "encoder.layers.", layers);
    for (int64_t n : layers) require(cat(root, "encoder.layers.", n), Kind::clip_layer);
  }

  void open_clip() {
    const std::vector<std::pair<const char*, const char*>> fixed = {
        {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
        {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
        {"ln_final.weight", "text_model.final_layer_norm.weight"},
        {"ln_final.bias", "text_model.final_layer_norm.bias"}};
    for (const auto& [original, target] : fixed)
      out_.text_encoder_2[target] = take(kOpenCLIP + original);
    const Tensor projection = take(kOpenCLIP + "text_projection");
    if (projection.dim() != 2)
      fail("[sdxl] ", where_, ": tensor '", kOpenCLIP, "text_projection' has shape ",
           projection.shape().str(), ", not [hidden, proj]");
    // OpenCLIP computes x @ P with P: [hidden, proj]; HF's Linear holds [proj, hidden].
    out_.text_encoder_2["text_projection.weight"] = projection.transpose(0, 1).contiguous();
    const std::vector<std::pair<const char*, const char*>> layer = {
        {"ln_1.", "layer_norm1."},
        {"ln_2.", "layer_norm2."},
        {"attn.out_proj.", "self_attn.out_proj."},
        {"mlp.c_fc.", "mlp.fc1."},
        {"mlp.c_proj.", "mlp.fc2."}};
    const std::string blocks = kOpenCLIP + "transformer.resblocks.";
    std::set<int64_t> found;
    for (const auto& sub : under(blocks)) {
      std::string_view s = sub;
      int64_t n = 0;
      if (!eat_index(s, n)) continue;
      const std::string target = cat("text_model.encoder.layers.", n, ".");
      if (s == "attn.in_proj_weight" || s == "attn.in_proj_bias") {
        // nn.MultiheadAttention's packed projection: rows [q; k; v].
        const Tensor packed = take(blocks + sub);
        const bool weight = s == "attn.in_proj_weight";
        if (packed.dim() != (weight ? 2 : 1) || packed.size(0) % 3 != 0)
          fail("[sdxl] ", where_, ": tensor '", blocks, sub, "' has shape ", packed.shape().str(),
               ", not [3 * hidden", weight ? ", hidden]" : "]");
        const int64_t d = packed.size(0) / 3;
        const char* leaf = weight ? "weight" : "bias";
        out_.text_encoder_2[cat(target, "self_attn.q_proj.", leaf)] = packed.slice(0, 0, d);
        out_.text_encoder_2[cat(target, "self_attn.k_proj.", leaf)] = packed.slice(0, d, 2 * d);
        out_.text_encoder_2[cat(target, "self_attn.v_proj.", leaf)] = packed.slice(0, 2 * d, 3 * d);
      } else if (is_leaf(Kind::open_clip_layer, s)) {
        out_.text_encoder_2[target + *rename_sub(s, layer)] = take(blocks + sub);
      } else {
        continue;
      }
      found.insert(n);
    }
    require_indices(blocks, found);
    for (int64_t n : found) require(cat(blocks, n), Kind::open_clip_layer);
  }

  std::set<std::string> names_, used_;
  std::function<Tensor(const std::string&)> get_;
  std::string where_;
  Components out_;
};

bool has_prefix(const std::vector<std::string>& sorted_names, const std::string& prefix) {
  const auto it = std::lower_bound(sorted_names.begin(), sorted_names.end(), prefix);
  return it != sorted_names.end() && it->starts_with(prefix);
}

bool is_sdxl(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return has_prefix(names, kUNet) && has_prefix(names, kCLIPL) && has_prefix(names, kOpenCLIP);
}

std::vector<std::string> file_names(const safetensors::File& file) {
  std::vector<std::string> names;
  for (const auto& info : file.tensors()) names.push_back(info.name);
  return names;
}

}  // namespace

Components split_single_file(const safetensors::Checkpoint& ckpt) {
  return Splitter(
             ckpt.names(), [&](const std::string& n) { return ckpt.tensor(n); }, ckpt.path())
      .run();
}

Components split_single_file(const safetensors::File& file) {
  return Splitter(
             file_names(file), [&](const std::string& n) { return file.tensor(n); }, file.path())
      .run();
}

Components split_single_file(const std::vector<std::string>& names, const TensorGetter& get,
                             const std::string& where) {
  return Splitter(names, get, where).run();
}

std::map<std::string, Tensor> unet_from_original(const std::vector<std::string>& names,
                                                 const TensorGetter& get,
                                                 const std::string& where) {
  std::map<std::string, std::string> given;  // under model.diffusion_model. -> as given
  for (const auto& n : names) given.emplace(n.starts_with(kUNet) ? n : kUNet + n, n);
  std::vector<std::string> prefixed;
  for (const auto& [n, unused] : given) prefixed.push_back(n);
  return Splitter(
             prefixed, [&](const std::string& n) { return get(given.at(n)); }, where)
      .run_unet()
      .unet;
}

std::map<std::string, Tensor> vae_from_file(const safetensors::Checkpoint& ckpt) {
  const std::vector<std::string> names = ckpt.names();
  auto has = [&](const std::string& n) { return ckpt.has(n); };
  // diffusers' vae/ names (optionally under "vae."), taken as they are.
  for (const std::string prefix : {"", "vae."})
    if (has(prefix + "decoder.conv_in.weight") &&
        has(prefix + "decoder.mid_block.resnets.0.conv1.weight")) {
      std::map<std::string, Tensor> out;
      for (const auto& n : names)
        if (n.starts_with(prefix)) out.emplace(n.substr(prefix.size()), ckpt.tensor(n));
      return out;
    }
  // The original names, bare (sdxl_vae.safetensors) or under first_stage_model.
  const bool prefixed = has(kVAE + "decoder.conv_in.weight");
  check(prefixed || has("decoder.conv_in.weight"), "[sdxl] ", ckpt.path(),
        " is not a VAE: it has no decoder.conv_in.weight (diffusers or original names)");
  std::vector<std::string> renamed;
  for (const auto& n : names)
    if (!prefixed || n.starts_with(kVAE)) renamed.push_back(prefixed ? n : kVAE + n);
  return Splitter(
             renamed,
             [&](const std::string& n) {
               return ckpt.tensor(prefixed ? n : n.substr(kVAE.size()));
             },
             ckpt.path())
      .run_vae()
      .vae;
}

bool is_sdxl_single_file(const safetensors::Checkpoint& ckpt) {
  return is_sdxl(ckpt.names());
}

bool is_sdxl_single_file(const safetensors::File& file) {
  return is_sdxl(file_names(file));
}

}  // namespace eight::sdxl
