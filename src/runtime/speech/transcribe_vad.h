#pragma once
// An energy-based voice-activity detector for skipping long silences before Whisper decodes.
//
// Behaviour: the audio is cut into 20 ms frames and each frame's RMS level is taken in dB. The
// loud reference is the 95th percentile of those levels; a frame counts as speech when it is
// louder than max(reference - range_db, floor_db). Speech frames closer together than
// min_silence_s are joined into one region, each region is widened by pad_s on both sides
// (clipped to the file), and overlapping regions merge. Silence shorter than min_silence_s is
// therefore never cut, and quiet speech within range_db of the loud parts is kept. It knows
// nothing about what a voice sounds like: steady loud noise counts as speech, and a recording
// that is silent throughout yields no regions.
#include <cstdint>
#include <span>
#include <vector>

namespace eight::whisper {

struct VadOptions {
  double frame_s = 0.02;
  double min_silence_s = 2.0;
  double pad_s = 0.3;
  double range_db = 35.0;
  double floor_db = -60.0;  // dBFS: anything quieter is silence whatever the reference
};

struct SpeechRegion {
  int64_t begin = 0, end = 0;  // samples, [begin, end)
};

// samples: mono at `rate`. Regions are sorted, disjoint and non-empty.
std::vector<SpeechRegion> detect_speech(std::span<const float> samples, int rate,
                                        const VadOptions& options = {});

}  // namespace eight::whisper
