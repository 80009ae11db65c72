// The model store: names, manifests, import/list/rm round trips, resolving -m MODEL, and the
// checks that keep manifests from pointing outside the store.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "formats/gguf.h"
#include "runtime/store/sha256.h"
#include "runtime/store/store.h"
#include "test_util.h"

using namespace eight;
namespace fs = std::filesystem;

namespace {

// A small valid GGUF with the metadata `eight list` shows.
void write_gguf(const std::string& path, const std::string& arch, uint32_t file_type,
                int64_t n = 64) {
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::string(arch));
  w.set("general.file_type", gguf::Value::u32(file_type));
  const auto values = eight::testing::random_floats(static_cast<size_t>(n));
  w.add_tensor("weight", DType::F32, Dims{n},
               [values](uint8_t* dst) { std::memcpy(dst, values.data(), values.size() * 4); });
  w.write(path);
}

// Points EIGHT_HOME at a fresh folder for one test.
struct StoreEnv {
  eight::testing::TempDir dir;
  StoreEnv() { ::setenv("EIGHT_HOME", (dir.path() + "/store").c_str(), 1); }
  ~StoreEnv() { ::unsetenv("EIGHT_HOME"); }
  std::string file(const std::string& n) const { return dir.file(n); }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(StoreNames, StrictCharacterSet) {
  for (const char* ok : {"phi-3-mini:Q4_K_M", "tiny", "a.b_c-d+e:f", "7b"})
    EXPECT_NO_THROW(check_model_name(ok)) << ok;
  for (const std::string& bad :
       {std::string(""), std::string("../etc/passwd"), std::string("a/b"), std::string("/abs"),
        std::string(".hidden"), std::string("a..b"), std::string("-flag"), std::string(129, 'a'),
        std::string("tab\tname"), std::string("nul\0x", 5), std::string("sp ace")}) {
    EXPECT_THROW(check_model_name(bad), Error) << bad;
    EXPECT_FALSE(is_valid_model_name(bad)) << bad;
  }
  EXPECT_NE(error_of([] { check_model_name("a/b"); }).find("'/' at position 1"), std::string::npos);
  EXPECT_EQ(sanitize_model_name("Phi-3-Mini-4k-Instruct Q4_K_M"), "phi-3-mini-4k-instruct-q4_k_m");
  EXPECT_EQ(sanitize_model_name("../../x"), "x");
  EXPECT_EQ(sanitize_model_name("///"), "model");
}

TEST(StoreNames, PathsAreBuiltFromValidatedParts) {
  Store s("/tmp/eight-store-root");
  EXPECT_THROW(s.manifest_path("../../etc/passwd"), Error);
  EXPECT_THROW(s.blob_path("../../etc/passwd"), Error);
  EXPECT_THROW(s.blob_path(std::string(64, 'G')), Error);
  EXPECT_THROW(s.lock_path("../x"), Error);
  EXPECT_EQ(s.blob_path(std::string(64, 'a')),
            "/tmp/eight-store-root/blobs/sha256-" + std::string(64, 'a'));
  EXPECT_EQ(s.manifest_path("m:Q8_0"), "/tmp/eight-store-root/manifests/m:Q8_0.json");
}

TEST(StoreRoot, EnvironmentOrder) {
  ::setenv("EIGHT_HOME", "/x/eight", 1);
  EXPECT_EQ(store_root(), "/x/eight");
  ::unsetenv("EIGHT_HOME");
  ::setenv("XDG_DATA_HOME", "/x/data", 1);
  EXPECT_EQ(store_root(), "/x/data/eight");
  ::unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(store_root(), std::string(std::getenv("HOME")) + "/.local/share/eight");
}

TEST(StoreFormat, DetectsMagics) {
  StoreEnv env;
  write_gguf(env.file("m.gguf"), "llama", 15);
  EXPECT_EQ(detect_model_format_file(env.file("m.gguf")), "gguf");
  const uint8_t ggml[8] = {'l', 'm', 'g', 'g', 1, 0, 0, 0};
  EXPECT_EQ(detect_model_format(ggml, 8, 1000), "ggml");
  std::string st = std::string("\x0e\0\0\0\0\0\0\0", 8) + R"({"a":"b","c":1})";
  EXPECT_EQ(detect_model_format(reinterpret_cast<const uint8_t*>(st.data()), st.size(), 100),
            "safetensors");
  // A header length past the end of the file is not safetensors.
  EXPECT_EQ(detect_model_format(reinterpret_cast<const uint8_t*>(st.data()), st.size(), 10), "");
  const std::string html = "<!doctype html><html>";
  EXPECT_EQ(detect_model_format(reinterpret_cast<const uint8_t*>(html.data()), html.size(), 21),
            "");
  const uint8_t gguf_v9[8] = {'G', 'G', 'U', 'F', 9, 0, 0, 0};
  EXPECT_EQ(detect_model_format(gguf_v9, 8, 8), "");
}

TEST(Store, ImportListShowRemoveRoundTrip) {
  StoreEnv env;
  const std::string model = env.file("tiny.gguf");
  write_gguf(model, "llama", 15);
  const Store store;
  EXPECT_TRUE(store.list().empty());

  const StoreEntry e = store.import_file(model, "tiny:Q4_K_M");
  EXPECT_EQ(e.digest, sha256_file(model));
  EXPECT_EQ(e.size, fs::file_size(model));
  EXPECT_EQ(e.architecture, "llama");
  EXPECT_EQ(e.quant, "Q4_K_M");
  EXPECT_EQ(e.format, "gguf");
  const std::string blob = store.blob_path(e.digest);
  // Same filesystem: a hard link, not a copy.
  struct stat a, b;
  ASSERT_EQ(::stat(model.c_str(), &a), 0);
  ASSERT_EQ(::stat(blob.c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);

  // A second name for the same bytes shares the blob.
  store.import_file(model, "alias");
  auto all = store.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "alias");
  EXPECT_EQ(all[1].name, "tiny:Q4_K_M");
  EXPECT_EQ(store.get("tiny:Q4_K_M").digest, store.get("alias").digest);
  EXPECT_EQ(store.model_file(store.get("alias")), blob);

  EXPECT_FALSE(store.remove("tiny:Q4_K_M"));  // still referenced by "alias"
  EXPECT_TRUE(fs::exists(blob));
  EXPECT_TRUE(store.remove("alias"));
  EXPECT_FALSE(fs::exists(blob));
  EXPECT_TRUE(fs::exists(model));  // the user's file is untouched
  EXPECT_TRUE(store.list().empty());
  EXPECT_THROW(store.remove("alias"), Error);
}

TEST(Store, ImportRejectsNonModelsAndTakenNames) {
  StoreEnv env;
  std::ofstream(env.file("notes.txt")) << "not a model at all";
  const Store store;
  EXPECT_NE(error_of([&] { store.import_file(env.file("notes.txt"), "notes"); }).find("not a GGUF"),
            std::string::npos);
  EXPECT_THROW(store.import_file(env.file("missing.gguf"), "missing"), Error);
  write_gguf(env.file("a.gguf"), "llama", 2);
  write_gguf(env.file("b.gguf"), "qwen2", 7);
  store.import_file(env.file("a.gguf"), "m");
  EXPECT_NE(error_of([&] { store.import_file(env.file("b.gguf"), "m"); }).find("taken"),
            std::string::npos);
  EXPECT_EQ(store.get("m").quant, "Q4_0");
}

TEST(Store, TamperedManifestsNeverLeaveTheStore) {
  StoreEnv env;
  write_gguf(env.file("m.gguf"), "llama", 15);
  const Store store;
  const StoreEntry good = store.import_file(env.file("m.gguf"), "good");
  const std::string dir = store.root() + "/manifests/";
  // A digest that is a path.
  std::ofstream(dir + "evil.json") << R"({"name":"evil","digest":"sha256:../../../etc/passwd",)"
                                   << R"("size":10})";
  // A manifest claiming another name than its file's.
  std::ofstream(dir + "liar.json")
      << R"({"name":"../liar","digest":"sha256:)" << good.digest << R"(","size":1})";
  // A reference outside the known caches.
  std::ofstream(dir + "outside.json")
      << R"({"name":"outside","digest":"sha256:)" << good.digest << R"(","size":)" << good.size
      << R"(,"external":")" << env.file("m.gguf") << R"("})";
  // A manifest that is a symlink.
  fs::create_symlink(dir + "good.json", dir + "linked.json");
  std::ofstream(dir + "broken.json") << "{ not json";

  const auto names = [&] {
    std::vector<std::string> out;
    for (const auto& e : store.list()) out.push_back(e.name);
    return out;
  }();
  EXPECT_EQ(names, (std::vector<std::string>{"good", "outside"}));
  EXPECT_NE(error_of([&] { store.get("evil"); }).find("not sha256:<64 hex digits>"),
            std::string::npos);
  EXPECT_THROW(store.get("liar"), Error);
  EXPECT_THROW(store.get("broken"), Error);
  EXPECT_FALSE(store.find("linked").has_value());
  EXPECT_NE(error_of([&] { store.model_file(store.get("outside")); }).find("outside the"),
            std::string::npos);

  // A blob replaced by a symlink is refused, not followed.
  const std::string blob = store.blob_path(good.digest);
  fs::remove(blob);
  fs::create_symlink(env.file("m.gguf"), blob);
  EXPECT_NE(error_of([&] { store.model_file(good); }).find("missing"), std::string::npos);
}

TEST(Store, ResolveModelPath) {
  StoreEnv env;
  write_gguf(env.file("m.gguf"), "llama", 15);
  write_gguf(env.file("other.gguf"), "qwen2", 18, 32);
  const Store store;
  const StoreEntry e = store.import_file(env.file("m.gguf"), "tiny:Q4_K_M");
  EXPECT_EQ(e.last_used, 0);
  // An existing path wins.
  EXPECT_EQ(resolve_model_path(env.file("m.gguf")), env.file("m.gguf"));
  EXPECT_EQ(resolve_model_path("tiny:Q4_K_M"), store.blob_path(e.digest));
  EXPECT_GT(store.get("tiny:Q4_K_M").last_used, 0);
  // A bare name finds its single tagged variant...
  EXPECT_EQ(resolve_model_path("tiny"), store.blob_path(e.digest));
  // ...but not when there are two.
  store.import_file(env.file("other.gguf"), "tiny:Q6_K");
  EXPECT_NE(error_of([] { resolve_model_path("tiny"); }).find("matches several"),
            std::string::npos);
  const std::string err = error_of([] { resolve_model_path("tinny:Q4_K_M"); });
  EXPECT_NE(err.find("did you mean: tiny:Q4_K_M"), std::string::npos) << err;
  EXPECT_NE(error_of([] { resolve_model_path("../../etc/shadow-nope"); }).find("neither a file"),
            std::string::npos);
}

TEST(Store, FileLockSerializes) {
  StoreEnv env;
  const std::string path = env.file("x.lock");
  std::atomic<bool> held{false};
  std::thread holder([&] {
    FileLock lock(path);
    held = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  });
  while (!held) std::this_thread::yield();
  const auto t0 = std::chrono::steady_clock::now();
  { FileLock lock(path); }
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  holder.join();
  EXPECT_GT(waited, 0.15);
}
