// /v1/audio/transcriptions and /v1/audio/translations (OpenAI's multipart API) over Whisper.
#include "server/whisper_service.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "formats/audio.h"
#include "runtime/speech/transcript_format.h"
#include "server/api_error.h"

namespace eight::server {

namespace {

// A private temporary file holding the upload, removed when the object dies.
class TempAudio {
 public:
  explicit TempAudio(const std::string& bytes) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "eight-audio-XXXXXX").string();
    const int fd = ::mkstemp(tmpl.data());
    if (fd < 0) fail("[whisper service] cannot create a temporary file: ", std::strerror(errno));
    path_ = tmpl;
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        fail("[whisper service] cannot write the upload to ", path_, ": ", std::strerror(errno));
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  }
  ~TempAudio() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempAudio(const TempAudio&) = delete;
  TempAudio& operator=(const TempAudio&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const FormPart* field(const ServiceRequest& req, const std::string& name) {
  auto it = req.form.find(name);
  return it == req.form.end() ? nullptr : &it->second;
}

std::string field_text(const ServiceRequest& req, const std::string& name) {
  const FormPart* p = field(req, name);
  return p ? p->content : std::string();
}

std::string strip(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n\r") - b + 1);
}

}  // namespace

WhisperService::WhisperService(std::shared_ptr<const whisper::Model> model, ThreadPool& pool,
                               WhisperServiceOptions options)
    : model_(std::move(model)),
      pool_(pool),
      options_(std::move(options)),
      transcriber_(model_, pool_) {}

std::vector<std::string> WhisperService::model_ids() const {
  return {options_.model_id};
}

std::vector<Route> WhisperService::routes() {
  std::vector<Route> r;
  for (const char* prefix : {"/v1", ""}) {
    r.push_back({"POST", std::string(prefix) + "/audio/transcriptions",
                 [this](const ServiceRequest& q) { return handle(q, false); }});
    r.push_back({"POST", std::string(prefix) + "/audio/translations",
                 [this](const ServiceRequest& q) { return handle(q, true); }});
  }
  return r;
}

ServiceResponse WhisperService::handle(const ServiceRequest& req, bool translate) {
  if (req.form.empty())
    bad_request("file",
                "send the audio as multipart/form-data with a 'file' part (got Content-Type '" +
                    req.content_type + "')");
  const FormPart* file = field(req, "file");
  if (!file) bad_request("file", "the 'file' field (the audio to transcribe) is required");
  if (file->content.empty()) bad_request("file", "the uploaded audio file is empty");

  const std::string model = strip(field_text(req, "model"));
  if (!model.empty() && model != options_.model_id && model != "whisper-1")
    throw ApiError(404, "invalid_request_error",
                   cat("the model '", model, "' does not exist; this server serves '",
                       options_.model_id, "' (or use 'whisper-1')"),
                   "model", "model_not_found");

  const std::string format_name = field(req, "response_format")
                                      ? strip(field_text(req, "response_format"))
                                      : std::string("json");
  whisper::TranscriptFormat format;
  if (format_name == "json" || format_name == "text" || format_name == "srt" ||
      format_name == "vtt" || format_name == "verbose_json")
    format = whisper::parse_transcript_format(format_name);
  else
    bad_request("response_format",
                "response_format must be one of json, text, srt, vtt, "
                "verbose_json; got '" +
                    format_name + "'");

  whisper::TranscribeOptions o;
  o.translate = translate;
  o.beam_size = options_.beam_size;
  o.max_tokens_per_window = options_.max_tokens_per_window;
  o.initial_prompt = field_text(req, "prompt");
  const whisper::SpecialTokens& sp = model_->special();
  if (translate && !sp.multilingual)
    bad_request("model", "this Whisper model is English-only and cannot translate");
  if (!translate) {
    const std::string lang = strip(field_text(req, "language"));
    if (!lang.empty()) {
      const int idx = whisper::whisper_language_index(lang);
      if (idx < 0 || idx >= sp.n_languages || (!sp.multilingual && lang != "en"))
        bad_request("language", "unsupported language '" + lang +
                                    "' (use an ISO-639-1 code the model knows, such as en)");
      o.language = lang;
    } else if (!model_->file().language.empty()) {
      o.language = model_->file().language;  // a CT2 directory's config.json names it
    }
  }
  if (const FormPart* t = field(req, "temperature")) {
    char* end = nullptr;
    const std::string text = strip(t->content);
    const double temp = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(temp >= 0 && temp <= 1))
      bad_request("temperature",
                  "temperature must be a number between 0 and 1, got '" + t->content + "'");
    // 0: OpenAI's automatic fallback to higher temperatures; otherwise that temperature only.
    if (temp > 0) o.temperatures = {static_cast<float>(temp)};
  }
  bool words = false;
  for (const char* key : {"timestamp_granularities[]", "timestamp_granularities"}) {
    auto [b, e] = req.form.equal_range(key);
    for (auto it = b; it != e; ++it) {
      const std::string g = strip(it->second.content);
      if (g == "word")
        words = true;
      else if (g != "segment")
        bad_request("timestamp_granularities[]",
                    "timestamp_granularities[] must be 'segment' or 'word', got '" + g + "'");
      if (format != whisper::TranscriptFormat::VerboseJson)
        bad_request("timestamp_granularities[]",
                    "timestamp_granularities[] needs response_format=verbose_json");
    }
  }
  o.word_timestamps = words;

  Tensor samples;
  {
    TempAudio tmp(file->content);
    try {
      samples = audio::load_16k_mono(tmp.path());
    } catch (const Error& e) {
      bad_request("file", cat("could not decode the uploaded audio '", file->filename, "' (",
                              file->content.size(), " bytes): ", e.what()));
    }
  }
  whisper::TranscribeResult r;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    r = transcriber_.run(
        std::span<const float>(samples.data<float>(), static_cast<size_t>(samples.numel())), o);
  }
  log_info("[whisper service] ", translate ? "translated " : "transcribed ", r.duration,
           " s of audio in ", r.total_seconds, " s (", r.segments.size(), " segments)");

  ServiceResponse res;
  switch (format) {
    case whisper::TranscriptFormat::Json:
      res.body = nlohmann::json{{"text", strip(r.text)}}.dump(
          -1, ' ', false, nlohmann::json::error_handler_t::replace);
      break;
    case whisper::TranscriptFormat::Txt:
      res.body = strip(r.text) + "\n";
      res.content_type = "text/plain; charset=utf-8";
      break;
    case whisper::TranscriptFormat::Srt:
    case whisper::TranscriptFormat::Vtt:
      res.body = whisper::format_transcript(r, format);
      res.content_type = "text/plain; charset=utf-8";
      break;
    case whisper::TranscriptFormat::VerboseJson: {
      whisper::TranscribeResult stripped = r;
      stripped.text = strip(r.text);
      res.body = whisper::format_transcript(stripped, format,
                                            translate ? "translate" : "transcribe", words);
      break;
    }
  }
  return res;
}

}  // namespace eight::server
