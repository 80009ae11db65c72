#pragma once
// Transcript writers, in the shapes OpenAI's whisper CLI and API produce:
//   txt           one stripped segment text per line
//   srt           numbered cues, "HH:MM:SS,mmm --> HH:MM:SS,mmm"
//   vtt           "WEBVTT" then cues "HH:MM:SS.mmm --> HH:MM:SS.mmm"
//   json          the CLI's result: text, language, segments (tokens, probabilities, words)
//   verbose_json  the API's: task, language (English name), duration, text, segments, words
// Segments whose text is empty (windows judged silent, instantaneous segments) are left out of
// txt, srt and vtt.
#include <string>

#include "runtime/speech/transcribe.h"

namespace eight::whisper {

enum class TranscriptFormat { Txt, Srt, Vtt, Json, VerboseJson };

// "txt", "srt", "vtt", "json", "verbose_json"; throws Error naming the choices otherwise.
TranscriptFormat parse_transcript_format(const std::string& name);
const char* transcript_format_extension(TranscriptFormat f);  // "txt", ..., "json"

// task: "transcribe" or "translate" (verbose_json only). include_words: verbose_json's top-level
// "words" list (the API's timestamp_granularities[]=word).
std::string format_transcript(const TranscribeResult& r, TranscriptFormat f,
                              const std::string& task = "transcribe", bool include_words = true);

// "01:02:03.456" (hours always shown), with `marker` between seconds and milliseconds.
std::string format_timestamp(double seconds, char marker = '.');

// OpenAI's English name of a language code ("en" -> "english"), the code itself when unknown.
std::string language_name(const std::string& code);

}  // namespace eight::whisper
