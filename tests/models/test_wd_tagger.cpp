// The WD tagger's preprocessing against timm's levels (tests/data/wd/levels.npy, from
// tools/reference/make_wd_fixtures.py), selected_tags.csv parsing, tag selection and the prompt
// line. The forward passes are held to timm in tests/python/test_tagger.py.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/image.h"
#include "formats/npy.h"
#include "models/tagger/tagger.h"
#include "runtime/vision/tags.h"

namespace eight {
namespace {

const std::string kData = std::string(EIGHT_SOURCE_DIR) + "/tests/data/wd/";

TEST(WDTagger, PreprocessingMatchesTimmExactly) {
  const auto model = tagger::open(kData + "vit");
  const Tensor levels = npy::read(kData + "levels.npy");  // f16 [3, 64, 64, 3] RGB
  ASSERT_EQ(levels.shape(), (Dims{3, 64, 64, 3}));
  const char* names[] = {"a.png", "b.png", "c.png"};
  for (int64_t i = 0; i < 3; ++i) {
    const Tensor px = model->preprocess(image::load(kData + "images/" + names[i]));
    ASSERT_EQ(px.shape(), (Dims{3, 64, 64}));
    const Tensor want = levels.select(0, i).contiguous();
    int mismatches = 0;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 64; ++y)
        for (int64_t x = 0; x < 64; ++x) {
          // BGR: output channel c is RGB channel 2 - c, normalized as torchvision does.
          const float level =
              fp16_to_fp32(static_cast<const uint16_t*>(want.raw())[(y * 64 + x) * 3 + 2 - c]);
          const float expect = (level / 255.0f - 0.5f) / 0.5f;
          mismatches += px.data<float>()[(c * 64 + y) * 64 + x] != expect;
        }
    EXPECT_EQ(mismatches, 0) << names[i];
  }
}

TEST(WDTagger, SelectedTagsCsv) {
  const auto tags = tagger::parse_selected_tags(
      "tag_id,name,category,count\r\n1,general,9,5\r\n2,\"a,\"\"b\"\"\",0,7\n3,x_(y),4,1\n\n",
      "t.csv");
  ASSERT_EQ(tags.size(), 3u);
  EXPECT_EQ(tags[0].category, tagger::Category::Rating);
  EXPECT_EQ(tags[1].name, "a,\"b\"");
  EXPECT_EQ(tags[2].category, tagger::Category::Character);
  auto error_of = [](const std::string& csv) {
    try {
      tagger::parse_selected_tags(csv, "t.csv");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("id,label\n1,a\n").find("no 'name' and 'category'"), std::string::npos);
  EXPECT_NE(error_of("name,category\na,3\n").find("line 2: category '3'"), std::string::npos);
  EXPECT_NE(error_of("name,category\na,0,1\n").find("line 2 has 3 fields"), std::string::npos);
  EXPECT_NE(error_of("name,category\n\"a,0\n").find("never ends"), std::string::npos);
  EXPECT_NE(error_of("name,category\n").find("lists no tags"), std::string::npos);
}

TEST(WDTagger, SelectionAndPromptLine) {
  const std::vector<tagger::Tag> tags = {{"general", tagger::Category::Rating},
                                         {"explicit", tagger::Category::Rating},
                                         {"long_hair", tagger::Category::General},
                                         {"^_^", tagger::Category::General},
                                         {"smile", tagger::Category::General},
                                         {"ganyu_(genshin_impact)", tagger::Category::Character},
                                         {"other", tagger::Category::Character}};
  // Exact binary fractions, so "above" is tested at equality.
  const float probs[] = {0.25f, 0.75f, 0.625f, 0.875f, 0.5f, 0.875f, 0.75f};
  const auto r = vision::select_tags(tags, probs, {.general = 0.5, .character = 0.75});
  // Strictly above the thresholds: smile (0.5) and other (0.75) stay out; best first.
  EXPECT_EQ(r.text, "^_^, long hair, ganyu \\(genshin impact\\)");
  ASSERT_NE(r.top_rating(), nullptr);
  EXPECT_EQ(r.top_rating()->name, "explicit");
  EXPECT_EQ(r.rating.size(), 2u);
  EXPECT_EQ(vision::prompt_tag("a\\b"), "a\\\\b");
  EXPECT_EQ(vision::prompt_tag("(o)_(o)"), "\\(o\\)_\\(o\\)");
}

TEST(WDTagger, UnknownFolderNamesTheFormats) {
  try {
    tagger::open(kData + "images");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wd-timm"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace eight
