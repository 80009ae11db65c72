"""Float64 greedy Whisper decoding of one 30 s window, written from OpenAI's whisper/decoding.py
(DecodingTask at temperature 0: GreedyDecoder, SuppressBlank, SuppressTokens, ApplyTimestampRules)
and the prompt of whisper/tokenizer.py (sot_sequence), over the model math of whisper_ref.py:

  prompt:  <|startoftranscript|> <|lang|> <|transcribe|> [<|notimestamps|>]
  each step: logits of the last position; at the first step the blank (" ") and <|endoftext|> are
  suppressed; always the non-speech tokens and the task/control specials; with timestamps:
  <|notimestamps|> suppressed, timestamps come in pairs (after a pair: text or the end; after a
  lone one: a timestamp or the end), never decreasing, the first token a timestamp no later than
  1.0 s, and a timestamp is forced when the timestamps' summed probability beats every text
  token's; then the argmax; stop at <|endoftext|> or after n_text_ctx // 2 tokens.
"""
import argparse
import json
import os
import sys
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whisper_mel_ref  # noqa: E402
import whisper_ref  # noqa: E402

MAX_INITIAL_TIMESTAMP = 1.0
TIME_PRECISION = 0.02


class Specials:
    """Special token ids from a Hugging Face tokenizer.json's added tokens."""

    def __init__(self, tokenizer, language="en"):
        def tid(s):
            i = tokenizer.token_to_id(s)
            assert i is not None, f"the tokenizer has no {s}"
            return i

        self.eot = tid("<|endoftext|>")
        self.sot = tid("<|startoftranscript|>")
        self.language = tid(f"<|{language}|>")
        self.translate = tid("<|translate|>")
        self.transcribe = tid("<|transcribe|>")
        self.solm = tid("<|startoflm|>")
        self.prev = tid("<|startofprev|>")
        no_speech = tokenizer.token_to_id("<|nospeech|>")
        self.no_speech = no_speech if no_speech is not None else tid("<|nocaptions|>")
        self.no_timestamps = tid("<|notimestamps|>")
        self.timestamp_begin = self.no_timestamps + 1


def _log_softmax(x):
    m = np.max(x[np.isfinite(x)])
    return x - (m + np.log(np.sum(np.exp(x - m))))


def apply_rules(logits, sampled, sp, suppress, blank, timestamps):
    """OpenAI's logit filters, in place, on float64 logits of one step."""
    if not sampled:
        logits[blank] = -np.inf
    logits[suppress] = -np.inf
    if not timestamps:
        return
    ts0 = sp.timestamp_begin
    logits[sp.no_timestamps] = -np.inf
    last_ts = len(sampled) >= 1 and sampled[-1] >= ts0
    penultimate_ts = len(sampled) < 2 or sampled[-2] >= ts0
    if last_ts:
        if penultimate_ts:
            logits[ts0:] = -np.inf
        else:
            logits[:sp.eot] = -np.inf
    stamps = [t for t in sampled if t >= ts0]
    if stamps:
        limit = stamps[-1] if last_ts and not penultimate_ts else stamps[-1] + 1
        logits[ts0:limit] = -np.inf
    if not sampled:
        logits[:ts0] = -np.inf
        logits[ts0 + round(MAX_INITIAL_TIMESTAMP / TIME_PRECISION) + 1:] = -np.inf
    logprobs = _log_softmax(logits)
    ts_logprob = np.logaddexp.reduce(logprobs[ts0:])
    if ts_logprob > logprobs[:ts0].max():
        logits[:ts0] = -np.inf


def window_mel(samples, n_mels, n_frames):
    """The first window's log-mel as whisper/transcribe.py builds it: the mel of the samples with
    30 s of silence after them (so the floor at max - 8 comes from the speech), cut to the
    speech's frames, then zero-padded to n_frames in the log-mel domain (pad_or_trim). The
    zeros differ from the mel of silence; whisper.cpp pads the samples instead."""
    filters = whisper_mel_ref.mel_filters(n_mels)
    x = np.concatenate([np.asarray(samples, dtype=np.float64),
                        np.zeros(n_frames * whisper_mel_ref.HOP)])
    mel = whisper_mel_ref.log_mel_spectrogram(x, filters, n_frames=0)
    content = min(n_frames, mel.shape[1] - n_frames)
    return np.pad(mel[:, :content], ((0, 0), (0, n_frames - content)))


def encode_audio(hp, t, samples):
    """The encoder output of the first 30 s window of 16 kHz mono samples."""
    return whisper_ref.encoder(hp, t, window_mel(samples, hp["n_mels"], 2 * hp["n_audio_ctx"]))


def greedy(hp, t, xa, sp, suppress, blank, timestamps=True):
    """Sampled token ids (without the prompt and the final <|endoftext|>)."""
    prompt = [sp.sot, sp.language, sp.transcribe] + ([] if timestamps else [sp.no_timestamps])
    cross = whisper_ref.cross_key_values(hp, t, xa)
    sampled = []
    while len(sampled) < hp["n_text_ctx"] // 2:
        logits = whisper_ref.decoder(hp, t, prompt + sampled, xa, cross, last_only=True)[0]
        apply_rules(logits, sampled, sp, suppress, blank, timestamps)
        token = int(np.argmax(logits))
        if token == sp.eot:
            break
        sampled.append(token)
    return sampled


def read_wav(path):
    """16-bit PCM mono 16 kHz samples as libsndfile hands them over (x / 32768)."""
    with wave.open(path) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 16000, 2), path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768


def transcribe(model_dir, wav, language="en", modes=(True, False)):
    """{"timestamps" / "no_timestamps": {"text", "tokens"}} for a 16 kHz mono clip shorter than
    30 s and a CTranslate2 Whisper directory. The suppressed ids come from its config.json
    (suppress_ids, suppress_ids_begin: CTranslate2's converter copies them from the Hugging Face
    generation config) plus the task/control specials; text from its tokenizer.json."""
    import ct2_whisper_ref
    import tokenizers
    hp, t, config = ct2_whisper_ref.load(model_dir)
    tokenizer = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    sp = Specials(tokenizer, language)
    suppress = sorted(set(config.get("suppress_ids", [])) | {
        sp.translate, sp.transcribe, sp.sot, sp.prev, sp.solm, sp.no_speech})
    blank = config.get("suppress_ids_begin") or [tokenizer.token_to_id("Ġ"), sp.eot]
    xa = encode_audio(hp, t, read_wav(wav))
    out = {}
    for timestamps in modes:
        tokens = greedy(hp, t, xa, sp, suppress, blank, timestamps)
        text = tokenizer.decode([x for x in tokens if x < sp.eot])
        out["timestamps" if timestamps else "no_timestamps"] = {"text": text, "tokens": tokens}
    return out


def main():
    # A command so tests can run it with one BLAS thread: the decoder's small matrix products
    # run ~4x slower with OpenBLAS threads spinning on a busy machine.
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("wav")
    ap.add_argument("--language", default="en")
    a = ap.parse_args()
    print(json.dumps(transcribe(a.model_dir, a.wav, a.language)))


if __name__ == "__main__":
    main()
