// SHA-256 against the FIPS 180-4 example vectors and against Python's hashlib on random data.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "runtime/store/sha256.h"
#include "test_util.h"

using namespace eight;

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, ChunkedUpdatesMatchOneShot) {
  // Lengths around the 55/56/64-byte padding boundaries, fed in random-sized pieces.
  std::uniform_int_distribution<int> byte(0, 255), piece(0, 70);
  for (size_t len : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4097}) {
    std::string data(len, '\0');
    for (auto& c : data) c = static_cast<char>(byte(eight::testing::rng()));
    Sha256 h;
    size_t at = 0;
    while (at < len) {
      const size_t n =
          std::min<size_t>(len - at, static_cast<size_t>(piece(eight::testing::rng())));
      h.update(data.data() + at, n);
      at += n;
    }
    EXPECT_EQ(h.hex_digest(), sha256_hex(data)) << "length " << len;
  }
}

TEST(Sha256, MatchesPythonHashlib) {
  eight::testing::TempDir dir;
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<size_t> lengths = {0, 3, 55, 56, 64, 100, 1023, 65536, (1 << 20) + 17};
  std::vector<std::string> expected;
  for (size_t i = 0; i < lengths.size(); ++i) {
    std::string data(lengths[i], '\0');
    for (auto& c : data) c = static_cast<char>(byte(eight::testing::rng()));
    std::ofstream(dir.file(std::to_string(i)), std::ios::binary) << data;
    expected.push_back(sha256_file(dir.file(std::to_string(i))));
    EXPECT_EQ(expected.back(), sha256_hex(data));
  }
  std::string out;
  const std::string cmd = eight::testing::python_with("hashlib") +
                          " -c \"import hashlib,sys\nfor i in range(" +
                          std::to_string(lengths.size()) + "): print(hashlib.sha256(open('" +
                          dir.path() + "/'+str(i),'rb').read()).hexdigest())\"";
  ASSERT_EQ(eight::testing::run_command(cmd, &out), 0) << cmd;
  std::istringstream lines(out);
  for (size_t i = 0; i < lengths.size(); ++i) {
    std::string line;
    std::getline(lines, line);
    EXPECT_EQ(expected[i], line) << "length " << lengths[i];
  }
}

TEST(Sha256, HexCheckAndMissingFile) {
  EXPECT_TRUE(is_sha256_hex(std::string(64, 'a')));
  EXPECT_FALSE(is_sha256_hex(std::string(64, 'A')));
  EXPECT_FALSE(is_sha256_hex(std::string(63, 'a')));
  EXPECT_FALSE(is_sha256_hex("../" + std::string(61, 'a')));
  EXPECT_THROW(sha256_file("/nonexistent/eight/file"), Error);
}

TEST(Sha256, HardwareAndPortableAgree) {
  if (!sha256_hardware_available())
    GTEST_SKIP() << "SKIPPED: this CPU has no SHA extensions; only the portable code runs";
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t len : {0, 1, 55, 56, 64, 65, 127, 128, 1000, 65537}) {
    std::string data(len, '\0');
    for (auto& c : data) c = static_cast<char>(byte(eight::testing::rng()));
    sha256_force_portable(true);
    const std::string portable = sha256_hex(data);
    sha256_force_portable(false);
    EXPECT_EQ(sha256_hex(data), portable) << "length " << len;
  }
  sha256_force_portable(true);
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  sha256_force_portable(false);
}
