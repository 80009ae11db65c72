// Discovery of models other tools downloaded: a fake Hugging Face hub cache and a fake Ollama
// store laid out as those tools lay them out, under a temporary HOME.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "formats/gguf.h"
#include "runtime/store/found.h"
#include "runtime/store/sha256.h"
#include "runtime/store/store.h"
#include "test_util.h"

using namespace eight;
namespace fs = std::filesystem;

namespace {

void write_gguf(const std::string& path, const std::string& arch, uint32_t file_type, int64_t n) {
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::string(arch));
  w.set("general.file_type", gguf::Value::u32(file_type));
  const auto values = eight::testing::random_floats(static_cast<size_t>(n));
  w.add_tensor("weight", DType::F32, Dims{n},
               [values](uint8_t* dst) { std::memcpy(dst, values.data(), values.size() * 4); });
  w.write(path);
}

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

const char* kRev = "0123456789abcdef0123456789abcdef01234567";
const char* kOldRev = "fedcba9876543210fedcba9876543210fedcba98";

// HOME and the cache variables pointed into a temporary folder for one test.
struct FakeHome {
  eight::testing::TempDir dir;
  std::string home = dir.path() + "/home";
  FakeHome() {
    for (const char* v :
         {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "OLLAMA_MODELS"})
      ::unsetenv(v);
    ::setenv("HOME", home.c_str(), 1);
    ::setenv("EIGHT_HOME", (dir.path() + "/store").c_str(), 1);
  }
};

// hub/models--TheOwner--Tiny-GGUF as huggingface_hub writes it: blobs named by etag (the sha256
// for LFS files), refs/main holding the commit, snapshots/<commit>/ of relative symlinks.
std::string make_hf_cache(const std::string& hub, const std::string& outside_gguf) {
  const std::string repo = hub + "/models--TheOwner--Tiny-GGUF";
  fs::create_directories(repo + "/blobs");
  write_gguf(repo + "/blobs/tmp", "llama", 15, 48);
  const std::string sha = sha256_file(repo + "/blobs/tmp");
  fs::rename(repo + "/blobs/tmp", repo + "/blobs/" + sha);
  const std::string readme_etag = "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c";  // git blob id
  write_text(repo + "/blobs/" + readme_etag, "# Tiny\n");
  write_text(repo + "/refs/main", kRev);
  const std::string snap = repo + "/snapshots/" + kRev;
  fs::create_directories(snap + "/sub");
  fs::create_symlink("../../blobs/" + sha, snap + "/tiny.Q4_K_M.gguf");
  fs::create_symlink("../../../blobs/" + sha, snap + "/sub/nested.gguf");
  fs::create_symlink("../../blobs/" + readme_etag, snap + "/README.md");
  fs::create_symlink(outside_gguf, snap + "/escape.gguf");  // leads out of the cache: ignored
  const std::string old_snap = repo + "/snapshots/" + kOldRev;
  fs::create_directories(old_snap);
  fs::create_symlink("../../blobs/" + sha, old_snap + "/tiny.Q4_K_M.gguf");
  write_text(hub + "/datasets--x--y/snapshots/" + std::string(kRev) + "/data.gguf", "GGUF");
  return sha;
}

// An Ollama store: manifests/<registry>/<namespace>/<model>/<tag> and blobs/sha256-<hex>.
std::string make_ollama(const std::string& models) {
  fs::create_directories(models + "/blobs");
  write_gguf(models + "/blobs/tmp", "qwen2", 7, 40);
  const std::string model_sha = sha256_file(models + "/blobs/tmp");
  fs::rename(models + "/blobs/tmp", models + "/blobs/sha256-" + model_sha);
  const std::string config = R"({"model_format":"gguf","model_family":"qwen2"})";
  const std::string config_sha = sha256_hex(config);
  write_text(models + "/blobs/sha256-" + config_sha, config);
  const std::string tmpl = "{{ .Prompt }}";
  const std::string tmpl_sha = sha256_hex(tmpl);
  write_text(models + "/blobs/sha256-" + tmpl_sha, tmpl);
  auto manifest = [&](const std::string& model_digest) {
    return std::string(R"({"schemaVersion":2,"mediaType":)") +
           R"("application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":)" +
           R"("application/vnd.docker.container.image.v1+json","digest":"sha256:)" + config_sha +
           R"(","size":)" + std::to_string(config.size()) +
           R"(},"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":")" +
           model_digest + R"(","size":100},{"mediaType":"application/vnd.ollama.image.template",)" +
           R"("digest":"sha256:)" + tmpl_sha + R"(","size":13}]})";
  };
  const std::string m = models + "/manifests/";
  write_text(m + "registry.ollama.ai/library/tinyqwen/latest", manifest("sha256:" + model_sha));
  write_text(m + "hf.co/someone/Tiny-GGUF/Q8_0", manifest("sha256:" + model_sha));
  write_text(m + "registry.ollama.ai/library/evil/latest", manifest("sha256:../../../etc/passwd"));
  write_text(m + "registry.ollama.ai/library/gone/latest",
             manifest("sha256:" + std::string(64, 'e')));
  write_text(m + "registry.ollama.ai/library/garbage/latest", "{ not json");
  write_text(m + "registry.ollama.ai/library/types/latest",
             R"({"layers":[{"mediaType":7,"digest":"sha256:x"},{"mediaType":)"
             R"("application/vnd.ollama.image.model","digest":["a"]},3,null]})");
  write_text(m + "registry.ollama.ai/library/nolayers/latest", R"({"layers":{"a":1}})");
  return model_sha;
}

std::vector<std::string> ids(const std::vector<FoundModel>& found) {
  std::vector<std::string> out;
  for (const auto& m : found) out.push_back(m.id);
  return out;
}

}  // namespace

TEST(FoundDirs, EnvironmentOrder) {
  FakeHome h;
  EXPECT_EQ(hf_hub_cache_dir(), h.home + "/.cache/huggingface/hub");
  EXPECT_EQ(ollama_models_dir(), h.home + "/.ollama/models");
  ::setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/xdg/huggingface/hub");
  ::setenv("HF_HOME", "/hfhome", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/hfhome/hub");
  ::setenv("HF_HUB_CACHE", "/hubcache", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/hubcache");
  ::setenv("OLLAMA_MODELS", "/om", 1);
  EXPECT_EQ(ollama_models_dir(), "/om");
  for (const char* v : {"HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "OLLAMA_MODELS"})
    ::unsetenv(v);
}

TEST(Found, HuggingFaceCacheLayout) {
  FakeHome h;
  write_gguf(h.dir.file("outside.gguf"), "llama", 15, 16);
  const std::string sha =
      make_hf_cache(h.home + "/.cache/huggingface/hub", h.dir.file("outside.gguf"));
  const auto found = find_hf_cache_models();
  EXPECT_EQ(ids(found),
            (std::vector<std::string>{
                "hf:TheOwner/Tiny-GGUF/sub/nested.gguf", "hf:TheOwner/Tiny-GGUF/tiny.Q4_K_M.gguf",
                std::string("hf:TheOwner/Tiny-GGUF/tiny.Q4_K_M.gguf@") + kOldRev}));
  for (const auto& m : found) {
    EXPECT_EQ(m.tool, "huggingface");
    EXPECT_EQ(m.digest, sha);
    EXPECT_EQ(m.format, "gguf");
    EXPECT_EQ(m.path, fs::canonical(h.home +
                                    "/.cache/huggingface/hub/models--TheOwner--Tiny-GGUF/"
                                    "blobs/" +
                                    sha)
                          .string());
  }
  EXPECT_EQ(found[1].name, "tiny.q4_k_m");
  // HF_HOME moves the cache: nothing is found at the default place any more.
  ::setenv("HF_HOME", (h.dir.path() + "/elsewhere").c_str(), 1);
  EXPECT_TRUE(find_hf_cache_models().empty());
  ::unsetenv("HF_HOME");
}

TEST(Found, OllamaStoreLayout) {
  FakeHome h;
  const std::string models = h.dir.path() + "/ollama-models";
  const std::string sha = make_ollama(models);
  EXPECT_TRUE(find_ollama_models().empty());  // ~/.ollama/models does not exist
  ::setenv("OLLAMA_MODELS", models.c_str(), 1);
  const auto found = find_ollama_models();
  EXPECT_EQ(ids(found), (std::vector<std::string>{"ollama:hf.co/someone/Tiny-GGUF:Q8_0",
                                                  "ollama:tinyqwen:latest"}));
  for (const auto& m : found) {
    EXPECT_EQ(m.digest, sha);
    EXPECT_EQ(m.path, fs::canonical(models + "/blobs/sha256-" + sha).string());
  }
  EXPECT_EQ(found[1].name, "tinyqwen:latest");
  FoundModel m;
  EXPECT_TRUE(find_foreign_model("ollama:tinyqwen", &m));  // tag defaults to latest
  EXPECT_EQ(m.id, "ollama:tinyqwen:latest");
  EXPECT_FALSE(find_foreign_model("ollama:evil", &m));
  ::unsetenv("OLLAMA_MODELS");
}

TEST(Found, ImportRegistersWithoutCopying) {
  FakeHome h;
  write_gguf(h.dir.file("outside.gguf"), "llama", 15, 16);
  make_hf_cache(h.home + "/.cache/huggingface/hub", h.dir.file("outside.gguf"));
  const std::string models = h.home + "/.ollama/models";
  make_ollama(models);
  EXPECT_EQ(find_foreign_models().size(), 5u);

  const Store store;
  FoundModel hf;
  ASSERT_TRUE(find_foreign_model("hf:TheOwner/Tiny-GGUF/tiny.Q4_K_M.gguf", &hf));
  const StoreEntry e = store.import_file(hf.path, hf.name, /*allow_reference=*/true);
  EXPECT_EQ(e.digest, hf.digest);
  EXPECT_EQ(e.architecture, "llama");
  EXPECT_EQ(e.quant, "Q4_K_M");
  struct stat a, b;
  ASSERT_EQ(::stat(hf.path.c_str(), &a), 0);
  ASSERT_EQ(::stat(store.model_file(e).c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // the same bytes, hard-linked

  FoundModel ol;
  ASSERT_TRUE(find_foreign_model("ollama:tinyqwen:latest", &ol));
  const StoreEntry o = store.import_file(ol.path, ol.name, true);
  EXPECT_EQ(o.architecture, "qwen2");
  EXPECT_EQ(o.quant, "Q8_0");
  EXPECT_EQ(resolve_model_path("tinyqwen"), store.blob_path(ol.digest));
  EXPECT_TRUE(store.remove("tinyqwen:latest"));
  EXPECT_TRUE(fs::exists(ol.path));  // Ollama's copy is untouched
}

TEST(Found, ReferenceInPlaceAcrossFilesystems) {
  // /dev/shm is usually another filesystem than the temp folder: a hard link fails there and a
  // file in a known cache is referenced in place instead of copied.
  FakeHome h;
  struct stat tmp_st, shm_st;
  if (::stat("/dev/shm", &shm_st) != 0 || ::stat(h.dir.path().c_str(), &tmp_st) != 0 ||
      shm_st.st_dev == tmp_st.st_dev)
    GTEST_SKIP() << "SKIPPED: no second filesystem at /dev/shm to test cross-device imports";
  std::string tmpl = "/dev/shm/eight-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string models = tmpl + "/models";
  make_ollama(models);
  ::setenv("OLLAMA_MODELS", models.c_str(), 1);
  const Store store;
  FoundModel m;
  ASSERT_TRUE(find_foreign_model("ollama:tinyqwen", &m));
  const StoreEntry e = store.import_file(m.path, m.name, true);
  EXPECT_EQ(e.external, m.path);
  EXPECT_EQ(store.model_file(store.get(e.name)), m.path);
  EXPECT_FALSE(fs::exists(store.blob_path(e.digest)));
  // Once the cache is no longer the configured one, the reference is refused.
  ::unsetenv("OLLAMA_MODELS");
  EXPECT_THROW(store.model_file(store.get(e.name)), Error);
  ::setenv("OLLAMA_MODELS", models.c_str(), 1);
  EXPECT_FALSE(store.remove(e.name));
  EXPECT_TRUE(fs::exists(m.path));
  // A plain file outside any cache is copied, not referenced.
  const StoreEntry c = store.import_file(m.path, "copied", false);
  EXPECT_TRUE(c.external.empty());
  EXPECT_TRUE(fs::exists(store.blob_path(c.digest)));
  ::unsetenv("OLLAMA_MODELS");
  fs::remove_all(tmpl);
}
