// Transcript writers (txt, srt, vtt, json, verbose_json).
#include "runtime/speech/transcript_format.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace eight::whisper {

namespace {

std::string strip(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n\r") - b + 1);
}

// Model output may end inside a UTF-8 character or hold invalid bytes; JSON needs valid text.
std::string valid_utf8(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80         ? 1
                       : (c >> 5) == 6  ? 2
                       : (c >> 4) == 14 ? 3
                       : (c >> 3) == 30 ? 4
                                        : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k)
      ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD, as Python's errors="replace"
      ++i;
    }
  }
  return out;
}

double round3(double x) {
  return std::nearbyint(x * 1000.0) / 1000.0;
}

nlohmann::json segment_json(const Segment& s, bool with_words) {
  nlohmann::json j = {{"id", s.id},
                      {"seek", s.seek},
                      {"start", round3(s.start)},
                      {"end", round3(s.end)},
                      {"text", valid_utf8(s.text)},
                      {"tokens", s.tokens},
                      {"temperature", s.temperature},
                      {"avg_logprob", s.avg_logprob},
                      {"compression_ratio", s.compression_ratio},
                      {"no_speech_prob", s.no_speech_prob}};
  if (with_words) {
    j["token_probs"] = s.token_probs;
    nlohmann::json words = nlohmann::json::array();
    for (const WordTiming& w : s.words)
      words.push_back({{"word", valid_utf8(w.word)},
                       {"start", w.start},
                       {"end", w.end},
                       {"probability", w.probability}});
    j["words"] = std::move(words);
    nlohmann::json times = nlohmann::json::array();
    for (const TokenTiming& t : s.token_times)
      times.push_back(
          {{"id", t.id}, {"start", t.start}, {"end", t.end}, {"probability", t.probability}});
    j["token_timestamps"] = std::move(times);
  }
  return j;
}

// "-->" inside cue text would end the cue line early in SRT/VTT readers.
std::string cue_text(const std::string& text) {
  std::string t = valid_utf8(strip(text));
  for (size_t p; (p = t.find("-->")) != std::string::npos;) t.replace(p, 3, "->");
  return t;
}

}  // namespace

TranscriptFormat parse_transcript_format(const std::string& name) {
  if (name == "txt" || name == "text") return TranscriptFormat::Txt;
  if (name == "srt") return TranscriptFormat::Srt;
  if (name == "vtt") return TranscriptFormat::Vtt;
  if (name == "json") return TranscriptFormat::Json;
  if (name == "verbose_json") return TranscriptFormat::VerboseJson;
  fail("[transcript] unknown output format '", name,
       "' (choose txt, srt, vtt, json, verbose_json)");
}

const char* transcript_format_extension(TranscriptFormat f) {
  switch (f) {
    case TranscriptFormat::Txt:
      return "txt";
    case TranscriptFormat::Srt:
      return "srt";
    case TranscriptFormat::Vtt:
      return "vtt";
    case TranscriptFormat::Json:
    case TranscriptFormat::VerboseJson:
      return "json";
  }
  return "txt";
}

std::string format_timestamp(double seconds, char marker) {
  const int64_t ms = std::llround(std::max(0.0, seconds) * 1000.0);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld",
                static_cast<long long>(ms / 3600000), static_cast<long long>(ms / 60000 % 60),
                static_cast<long long>(ms / 1000 % 60), marker, static_cast<long long>(ms % 1000));
  return buf;
}

std::string format_transcript(const TranscribeResult& r, TranscriptFormat f,
                              const std::string& task, bool include_words) {
  std::string out;
  switch (f) {
    case TranscriptFormat::Txt:
      for (const Segment& s : r.segments)
        if (!strip(s.text).empty()) out += valid_utf8(strip(s.text)) + "\n";
      return out;
    case TranscriptFormat::Srt:
    case TranscriptFormat::Vtt: {
      const bool srt = f == TranscriptFormat::Srt;
      if (!srt) out = "WEBVTT\n\n";
      int index = 1;
      for (const Segment& s : r.segments) {
        const std::string text = cue_text(s.text);
        if (text.empty()) continue;
        if (srt) out += std::to_string(index++) + "\n";
        out += format_timestamp(s.start, srt ? ',' : '.') + " --> " +
               format_timestamp(s.end, srt ? ',' : '.') + "\n" + text + "\n\n";
      }
      return out;
    }
    case TranscriptFormat::Json: {
      nlohmann::json segs = nlohmann::json::array();
      for (const Segment& s : r.segments) segs.push_back(segment_json(s, true));
      nlohmann::json j = {{"text", valid_utf8(r.text)},
                          {"language", r.language},
                          {"duration", r.duration},
                          {"segments", std::move(segs)}};
      return j.dump(2) + "\n";
    }
    case TranscriptFormat::VerboseJson: {
      nlohmann::json segs = nlohmann::json::array();
      nlohmann::json words = nlohmann::json::array();
      for (const Segment& s : r.segments) {
        segs.push_back(segment_json(s, false));
        for (const WordTiming& w : s.words)
          words.push_back({{"word", valid_utf8(w.word)}, {"start", w.start}, {"end", w.end}});
      }
      nlohmann::json j = {{"task", task},
                          {"language", language_name(r.language)},
                          {"duration", r.duration},
                          {"text", valid_utf8(r.text)},
                          {"segments", std::move(segs)}};
      if (include_words) j["words"] = std::move(words);
      return j.dump();
    }
  }
  return out;
}

std::string language_name(const std::string& code) {
  static const char* const kNames[][2] = {
      {"en", "english"},     {"zh", "chinese"},    {"de", "german"},
      {"es", "spanish"},     {"ru", "russian"},    {"ko", "korean"},
      {"fr", "french"},      {"ja", "japanese"},   {"pt", "portuguese"},
      {"tr", "turkish"},     {"pl", "polish"},     {"ca", "catalan"},
      {"nl", "dutch"},       {"ar", "arabic"},     {"sv", "swedish"},
      {"it", "italian"},     {"id", "indonesian"}, {"hi", "hindi"},
      {"fi", "finnish"},     {"vi", "vietnamese"}, {"he", "hebrew"},
      {"uk", "ukrainian"},   {"el", "greek"},      {"ms", "malay"},
      {"cs", "czech"},       {"ro", "romanian"},   {"da", "danish"},
      {"hu", "hungarian"},   {"ta", "tamil"},      {"no", "norwegian"},
      {"th", "thai"},        {"ur", "urdu"},       {"hr", "croatian"},
      {"bg", "bulgarian"},   {"lt", "lithuanian"}, {"la", "latin"},
      {"mi", "maori"},       {"ml", "malayalam"},  {"cy", "welsh"},
      {"sk", "slovak"},      {"te", "telugu"},     {"fa", "persian"},
      {"lv", "latvian"},     {"bn", "bengali"},    {"sr", "serbian"},
      {"az", "azerbaijani"}, {"sl", "slovenian"},  {"kn", "kannada"},
      {"et", "estonian"},    {"mk", "macedonian"}, {"br", "breton"},
      {"eu", "basque"},      {"is", "icelandic"},  {"hy", "armenian"},
      {"ne", "nepali"},      {"mn", "mongolian"},  {"bs", "bosnian"},
      {"kk", "kazakh"},      {"sq", "albanian"},   {"sw", "swahili"},
      {"gl", "galician"},    {"mr", "marathi"},    {"pa", "punjabi"},
      {"si", "sinhala"},     {"km", "khmer"},      {"sn", "shona"},
      {"yo", "yoruba"},      {"so", "somali"},     {"af", "afrikaans"},
      {"oc", "occitan"},     {"ka", "georgian"},   {"be", "belarusian"},
      {"tg", "tajik"},       {"sd", "sindhi"},     {"gu", "gujarati"},
      {"am", "amharic"},     {"yi", "yiddish"},    {"lo", "lao"},
      {"uz", "uzbek"},       {"fo", "faroese"},    {"ht", "haitian creole"},
      {"ps", "pashto"},      {"tk", "turkmen"},    {"nn", "nynorsk"},
      {"mt", "maltese"},     {"sa", "sanskrit"},   {"lb", "luxembourgish"},
      {"my", "myanmar"},     {"bo", "tibetan"},    {"tl", "tagalog"},
      {"mg", "malagasy"},    {"as", "assamese"},   {"tt", "tatar"},
      {"haw", "hawaiian"},   {"ln", "lingala"},    {"ha", "hausa"},
      {"ba", "bashkir"},     {"jw", "javanese"},   {"su", "sundanese"},
      {"yue", "cantonese"}};
  for (const auto& [c, name] : kNames)
    if (code == c) return name;
  return code;
}

}  // namespace eight::whisper
