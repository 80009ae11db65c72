#include "runtime/llm/scheduler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/log.h"

namespace eight {

struct Scheduler::Slot {
  int64_t index = 0;
  std::shared_ptr<Job> job;     // null when free
  std::vector<int32_t> tokens;  // what the slot's KV cache holds, in order
  int64_t prompt_done = 0;      // prompt tokens already in the cache for the current job
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StopMatcher> stop;
  std::string utf8_pending;  // bytes of an incomplete UTF-8 character
  int64_t generated = 0;
  int32_t next_token = -1;                        // sampled, to be fed at the next step
  HostBuffer order;                               // int32[n_vocab] scratch for top-logprobs
  std::unique_ptr<text::GrammarMatcher> grammar;  // this request's, when constrained
  std::vector<uint32_t> allowed;                  // the grammar's mask over the vocabulary
};

namespace {

// Length of the longest prefix of s that does not end inside a UTF-8 character.
size_t utf8_complete_prefix(const std::string& s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = c < 0x80           ? 1
                        : (c >> 5) == 0x6  ? 2
                        : (c >> 4) == 0xE  ? 3
                        : (c >> 3) == 0x1E ? 4
                                           : 1;
    return need > back ? n - back : n;
  }
  return n;  // only continuation bytes at the end: not a character we can complete; pass through
}

int64_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  // Image positions share one placeholder id: a cached prefix never reaches past one.
  while (i < n && a[i] == b[i] && a[i] != llm::kEmbeddingToken) ++i;
  return static_cast<int64_t>(i);
}

}  // namespace

Scheduler::Scheduler(std::shared_ptr<const llm::LLM> model, const SchedulerOptions& opt,
                     TokenText token_text, std::vector<int32_t> eog, ThreadPool& pool)
    : model_(std::move(model)),
      opt_(opt),
      token_text_(std::move(token_text)),
      eog_(std::move(eog)),
      pool_(pool),
      cache_(kv_cache_config(*model_, opt.n_ctx, opt.kv_type, opt.n_slots)),
      scratch_(*model_, opt.max_batch),
      logits_(static_cast<size_t>(opt.n_slots * model_->config().n_vocab) * sizeof(float)) {
  check(opt.n_slots >= 1, "[scheduler] need at least one slot, got ", opt.n_slots);
  check(opt.max_batch >= opt.n_slots, "[scheduler] batch of ", opt.max_batch,
        " tokens cannot hold one token per slot (", opt.n_slots, " slots)");
  for (int i = 0; i < opt.n_slots; ++i) {
    auto s = std::make_unique<Slot>();
    s->index = i;
    s->order = HostBuffer(static_cast<size_t>(model_->config().n_vocab) * sizeof(int32_t));
    slots_.push_back(std::move(s));
  }
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<Scheduler::Job> Scheduler::submit(ScheduledRequest request) {
  check(!request.prompt.empty(), "[scheduler] the prompt is empty");
  const int64_t n = static_cast<int64_t>(request.prompt.size());
  check(n < opt_.n_ctx, "[scheduler] the prompt has ", n, " tokens but the context holds ",
        opt_.n_ctx, " (", n + 1, " needed to generate anything)");
  const bool rows = !request.embeddings.empty();
  check(!rows || request.embeddings.size() == static_cast<size_t>(n * model_->config().n_embd),
        "[scheduler] ", request.embeddings.size(), " embedding values for ", n, " positions");
  for (int32_t t : request.prompt)
    check((t >= 0 || (rows && t == llm::kEmbeddingToken)) && t < model_->config().n_vocab,
          "[scheduler] token id ", t, " is outside the vocabulary of ", model_->config().n_vocab);
  check(!request.grammar ||
            (request.grammar_vocab && request.grammar_vocab->size() == model_->config().n_vocab),
        "[scheduler] a grammar needs the model's vocabulary");
  auto job = std::make_shared<Job>();
  job->request_ = std::move(request);
  job->result_.prompt_tokens = n;
  {
    std::lock_guard lock(mutex_);
    // Jobs wait in queue_ until the loop admits them, so free slots add to the queue's room.
    const int64_t free_slots = std::max<int64_t>(0, opt_.n_slots - active_.load());
    if (static_cast<int64_t>(queue_.size()) >= opt_.queue_limit + free_slots) return nullptr;
    queue_.push_back(job);
  }
  wake_.notify_all();
  return job;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  SchedulerStats s;
  s.queued = static_cast<int64_t>(queue_.size());
  s.active = active_.load();
  s.slots = opt_.n_slots;
  s.kv_total = opt_.n_ctx * opt_.n_slots;
  for (int i = 0; i < opt_.n_slots; ++i) s.kv_used += cache_.n_past(i);
  return s;
}

bool Scheduler::Job::next(ScheduledToken* token) {
  std::unique_lock lock(mutex_);
  ready_.wait(lock, [&] { return !events_.empty() || done_; });
  if (events_.empty()) return false;
  *token = std::move(events_.front());
  events_.pop_front();
  return true;
}

bool Scheduler::admit() {
  std::lock_guard lock(mutex_);
  bool busy = false;
  for (auto& s : slots_) busy |= s->job != nullptr;
  while (!queue_.empty()) {
    auto job = queue_.front();
    // The free slot whose cache shares the longest prefix with the prompt.
    Slot* best = nullptr;
    int64_t best_len = -1;
    for (auto& s : slots_) {
      if (s->job) continue;
      const int64_t len = common_prefix(s->tokens, job->request_.prompt);
      if (len > best_len) {
        best = s.get();
        best_len = len;
      }
    }
    if (!best) break;
    queue_.pop_front();
    const auto& req = job->request_;
    // At least one prompt token must run so the step produces logits for the first sample.
    const int64_t keep = std::min<int64_t>(best_len, static_cast<int64_t>(req.prompt.size()) - 1);
    cache_.truncate(best->index, keep);
    best->tokens.assign(req.prompt.begin(), req.prompt.begin() + keep);
    best->prompt_done = keep;
    best->job = job;
    best->sampler = std::make_unique<Sampler>(req.sampling, model_->config().n_vocab);
    best->stop = std::make_unique<StopMatcher>(req.stop);
    best->grammar = req.grammar
                        ? std::make_unique<text::GrammarMatcher>(req.grammar, req.grammar_vocab)
                        : nullptr;
    if (req.grammar)
      best->allowed.resize(text::GrammarMatcher::mask_words(model_->config().n_vocab));
    best->utf8_pending.clear();
    best->generated = 0;
    best->next_token = -1;
    job->result_.cached_tokens = keep;
    active_++;
    busy = true;
  }
  return busy;
}

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] {
        if (stop_ || !queue_.empty()) return true;
        for (auto& s : slots_)
          if (s->job) return true;
        return false;
      });
      if (stop_) break;
    }
    if (!admit()) continue;
    step();
  }
  for (auto& s : slots_)
    if (s->job) finish(*s, "cancelled");
  std::lock_guard lock(mutex_);
  for (auto& job : queue_) {
    std::lock_guard jl(job->mutex_);
    job->result_.finish_reason = "cancelled";
    job->done_ = true;
    job->ready_.notify_all();
  }
}

void Scheduler::finish(Slot& s, const char* reason, const std::string& error) {
  auto job = std::move(s.job);
  s.job = nullptr;
  active_--;
  std::lock_guard lock(job->mutex_);
  if (s.stop && !s.stop->stopped()) {
    // Release what the stop matcher held back (and any incomplete UTF-8 tail).
    std::string tail = s.stop->flush() + s.utf8_pending;
    if (!tail.empty()) {
      job->result_.text += tail;
      ScheduledToken t;
      t.text = tail;
      job->events_.push_back(std::move(t));
    }
  }
  job->result_.finish_reason = reason;
  job->result_.error = error;
  job->done_ = true;
  job->ready_.notify_all();
}

void Scheduler::step() {
  const llm::LLMConfig& c = model_->config();
  for (auto& s : slots_)
    if (s->job && s->job->cancelled_) finish(*s, "cancelled");

  // One batch: the next token of every generating slot, then prompt chunks in the room left.
  std::vector<int32_t> tokens;
  std::vector<llm::Segment> segs;
  std::vector<Slot*> seg_slot;
  int64_t room = opt_.max_batch;
  for (auto& s : slots_)
    if (s->job && s->next_token >= 0) {
      segs.push_back({.kv = cache_.layers(s->index),
                      .pos0 = static_cast<int64_t>(s->tokens.size()),
                      .n = 1,
                      .logits = true});
      seg_slot.push_back(s.get());
      tokens.push_back(s->next_token);
      --room;
    }
  for (auto& s : slots_) {
    if (!s->job || s->next_token >= 0 || room <= 0) continue;
    const auto& prompt = s->job->request_.prompt;
    const int64_t left = static_cast<int64_t>(prompt.size()) - s->prompt_done;
    const int64_t n = std::min(left, room);
    segs.push_back(
        {.kv = cache_.layers(s->index), .pos0 = s->prompt_done, .n = n, .logits = n == left});
    seg_slot.push_back(s.get());
    tokens.insert(tokens.end(), prompt.begin() + s->prompt_done,
                  prompt.begin() + s->prompt_done + n);
    room -= n;
  }
  if (segs.empty()) return;

  // Rows for image positions, aligned with the batch (only built when a prompt chunk has one).
  std::vector<float> rows;
  const int64_t d = c.n_embd;
  for (size_t i = 0, at = 0; i < segs.size(); at += static_cast<size_t>(segs[i].n), ++i) {
    const auto& req = seg_slot[i]->job->request_;
    const bool prompt_chunk = seg_slot[i]->next_token < 0;
    if (!prompt_chunk || req.embeddings.empty()) continue;
    if (rows.empty()) rows.assign(tokens.size() * static_cast<size_t>(d), 0.0f);
    std::memcpy(rows.data() + at * d, req.embeddings.data() + segs[i].pos0 * d,
                static_cast<size_t>(segs[i].n * d) * sizeof(float));
  }
  float* logits = logits_.as<float>();
  try {
    llm::forward_segments(*model_, tokens.data(), segs, scratch_, logits,
                          llm::ForwardOptions{.n_ctx = opt_.n_ctx,
                                              .embeddings = rows.empty() ? nullptr : rows.data()},
                          pool_);
  } catch (const Error& e) {
    log_error("[scheduler] forward pass failed: ", e.what());
    for (Slot* s : seg_slot)
      if (s->job) finish(*s, "error", e.what());
    return;
  }

  int64_t row = 0;
  size_t offset = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    Slot& s = *seg_slot[i];
    const auto& seg = segs[i];
    s.tokens.insert(s.tokens.end(), tokens.begin() + offset, tokens.begin() + offset + seg.n);
    offset += seg.n;
    cache_.set_n_past(s.index, static_cast<int64_t>(s.tokens.size()));
    if (s.next_token < 0) s.prompt_done += seg.n;
    s.next_token = -1;
    if (!seg.logits) continue;
    const float* l = logits + row++ * c.n_vocab;
    const ScheduledRequest& req = s.job->request_;

    ScheduledToken out;
    int32_t tok = -1;
    try {
      if (s.grammar) {
        // Tokens this request may still generate: max_tokens and the slot's context bound it.
        int64_t left = opt_.n_ctx - static_cast<int64_t>(s.tokens.size());
        if (req.max_tokens >= 0) left = std::min(left, req.max_tokens - s.generated);
        s.grammar->fill_mask(s.allowed, left);
      }
      tok = s.sampler->sample(l, s.grammar ? s.allowed.data() : nullptr);
    } catch (const Error& e) {  // a grammar the vocabulary cannot spell: this request fails
      finish(s, "error", e.what());
      continue;
    }
    out.token = tok;
    s.sampler->accept(tok);
    if (req.top_logprobs >= 0) {
      float mx = l[0];
      for (int64_t v = 1; v < c.n_vocab; ++v) mx = std::max(mx, l[v]);
      double sum = 0;
      for (int64_t v = 0; v < c.n_vocab; ++v) sum += std::exp(static_cast<double>(l[v] - mx));
      const float lse = mx + static_cast<float>(std::log(sum));
      out.logprob = l[out.token] - lse;
      int32_t* order = s.order.as<int32_t>();
      for (int64_t v = 0; v < c.n_vocab; ++v) order[v] = static_cast<int32_t>(v);
      const int64_t k = std::min<int64_t>(req.top_logprobs, c.n_vocab);
      std::partial_sort(order, order + k, order + c.n_vocab,
                        [l](int32_t a, int32_t b) { return l[a] > l[b]; });
      for (int64_t j = 0; j < k; ++j) out.top.emplace_back(order[j], l[order[j]] - lse);
    }
    if (std::find(eog_.begin(), eog_.end(), tok) != eog_.end()) {
      finish(s, "stop");
      continue;
    }
    s.generated++;
    // A grammar with nothing left to add ends the request without waiting for an end token.
    const bool grammar_done = s.grammar && (!s.grammar->accept(tok) || !s.grammar->can_continue());
    s.utf8_pending += token_text_(tok);
    const size_t done = utf8_complete_prefix(s.utf8_pending);
    out.text = s.stop->push(std::string_view(s.utf8_pending).substr(0, done));
    s.utf8_pending.erase(0, done);
    {
      std::lock_guard lock(s.job->mutex_);
      s.job->result_.text += out.text;
      s.job->result_.completion_tokens = s.generated;
      if (req.top_logprobs >= 0) s.job->result_.tokens.push_back(out);
      s.job->events_.push_back(std::move(out));
      s.job->ready_.notify_all();
    }
    if (s.stop->stopped() || grammar_done) {
      finish(s, "stop");
    } else if ((req.max_tokens >= 0 && s.generated >= req.max_tokens) ||
               static_cast<int64_t>(s.tokens.size()) + 1 > opt_.n_ctx) {
      finish(s, "length");
    } else {
      s.next_token = tok;
    }
  }
}

}  // namespace eight
