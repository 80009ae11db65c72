// Cross-attention heads whose weights follow the audio-text alignment, as OpenAI publishes them for
// each official checkpoint (whisper/__init__.py _ALIGNMENT_HEADS), used for word timestamps.
#include <cstdint>

#include "models/whisper/whisper.h"

namespace eight::whisper {

namespace {

struct HeadSet {
  int32_t n_text_layer, n_text_state, n_vocab;
  std::vector<std::pair<int, int>> heads;  // (decoder layer, head)
};

// Checkpoints are told apart by shape. large-v1 and large-v2 share every dimension; v2, the one
// people use, wins.
const std::vector<HeadSet>& official() {
  static const std::vector<HeadSet> sets = {
      {4, 384, 51864, {{1, 0}, {2, 0}, {2, 5}, {3, 0}, {3, 1}, {3, 2}, {3, 3}, {3, 4}}},  // tiny.en
      {4, 384, 51865, {{2, 2}, {3, 0}, {3, 2}, {3, 3}, {3, 4}, {3, 5}}},                  // tiny
      {6, 512, 51864, {{3, 3}, {4, 7}, {5, 1}, {5, 5}, {5, 7}}},                          // base.en
      {6, 512, 51865, {{3, 1}, {4, 2}, {4, 3}, {4, 7}, {5, 1}, {5, 2}, {5, 4}, {5, 6}}},  // base
      {12,
       768,
       51864,
       {{6, 6},
        {7, 0},
        {7, 3},
        {7, 8},
        {8, 2},
        {8, 5},
        {8, 7},
        {9, 0},
        {9, 4},
        {9, 8},
        {9, 10},
        {10, 0},
        {10, 1},
        {10, 2},
        {10, 3},
        {10, 6},
        {10, 11},
        {11, 2},
        {11, 4}}},  // small.en
      {12,
       768,
       51865,
       {{5, 3}, {5, 9}, {8, 0}, {8, 4}, {8, 7}, {8, 8}, {9, 0}, {9, 7}, {9, 9}, {10, 5}}},  // small
      {24,
       1024,
       51864,
       {{11, 4},
        {14, 1},
        {14, 12},
        {14, 14},
        {15, 4},
        {16, 0},
        {16, 4},
        {16, 9},
        {17, 12},
        {17, 14},
        {18, 7},
        {18, 10},
        {18, 15},
        {20, 0},
        {20, 3},
        {20, 9},
        {20, 14},
        {21, 12}}},                                                                 // medium.en
      {24, 1024, 51865, {{13, 15}, {15, 4}, {15, 15}, {16, 1}, {20, 0}, {23, 4}}},  // medium
      {32, 1280, 51865, {{10, 12}, {13, 17}, {16, 11}, {16, 12}, {16, 13}, {17, 15},
                         {17, 16}, {18, 4},  {18, 11}, {18, 19}, {19, 11}, {21, 2},
                         {21, 3},  {22, 3},  {22, 9},  {22, 12}, {23, 5},  {23, 7},
                         {23, 13}, {25, 5},  {26, 1},  {26, 12}, {27, 15}}},  // large-v2
      {32,
       1280,
       51866,
       {{7, 0},
        {10, 17},
        {12, 18},
        {13, 12},
        {16, 1},
        {17, 14},
        {19, 11},
        {21, 4},
        {24, 1},
        {25, 6}}},                                                            // large-v3
      {4, 1280, 51866, {{2, 4}, {2, 11}, {3, 3}, {3, 6}, {3, 11}, {3, 14}}},  // large-v3-turbo
  };
  return sets;
}

}  // namespace

std::vector<std::pair<int, int>> alignment_heads(const HParams& hp) {
  for (const HeadSet& s : official())
    if (s.n_text_layer == hp.n_text_layer && s.n_text_state == hp.n_text_state &&
        s.n_vocab == hp.n_vocab)
      return s.heads;
  std::vector<std::pair<int, int>> all;
  for (int l = hp.n_text_layer / 2; l < hp.n_text_layer; ++l)
    for (int h = 0; h < hp.n_text_head; ++h) all.emplace_back(l, h);
  return all;
}

}  // namespace eight::whisper
