// Talking to eight serve: the API key (local storage, Bearer header, a 401 brings the prompt
// back), errors shown in the page with the HTTP status and the OpenAI error's message, and
// /v1/eight/status (what is loaded).
"use strict";

const $ = (id) => document.getElementById(id);

const Api = (() => {
  const KEY = "eight.apiKey";
  let keyWaiters = [];

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function headers(extra = {}) {
    const h = {...extra};
    const key = localStorage.getItem(KEY);
    if (key) h["Authorization"] = "Bearer " + key;
    return h;
  }

  // The message of an OpenAI-shaped error body, else the body's text.
  async function errorOf(res) {
    const text = await res.text().catch(() => "");
    let message = text.trim() || res.statusText || "no message";
    try {
      const j = JSON.parse(text);
      if (j && j.error && j.error.message) message = j.error.message;
    } catch (e) {
      /* not JSON: keep the text */
    }
    return new ApiError(res.status, message);
  }

  function showError(err) {
    if (err && err.name === "AbortError") return;
    const text =
      !(err instanceof ApiError) ? `Error: ${err && err.message ? err.message : err}`
      // A numeric status is the HTTP answer's; a code comes from an error event mid-stream.
      : typeof err.status === "number" ? `HTTP ${err.status}: ${err.message}`
      : `Error (${err.status}): ${err.message}`;
    $("errorText").textContent = text;
    $("error").hidden = false;
    console.error(text);
  }

  function clearError() {
    $("error").hidden = true;
    $("errorText").textContent = "";
  }

  function askKey() {
    $("keyPrompt").hidden = false;
    $("keyInput").value = "";
    $("keyInput").focus();
    return new Promise((resolve) => keyWaiters.push(resolve));
  }

  function saveKey(key) {
    localStorage.setItem(KEY, key);
    $("keyPrompt").hidden = true;
    $("changeKey").hidden = false;
    const w = keyWaiters;
    keyWaiters = [];
    w.forEach((f) => f());
  }

  // fetch() with the key; throws ApiError for any non-2xx answer. A 401 clears the stored key
  // and shows the prompt (the error is still reported: the user sees why).
  async function call(path, options = {}) {
    const res = await fetch(path, {...options, headers: headers(options.headers || {})});
    if (res.ok) return res;
    const err = await errorOf(res);
    if (res.status === 401) {
      localStorage.removeItem(KEY);
      askKey();
    }
    throw err;
  }

  async function json(path, body) {
    const options = body === undefined ? {} : {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
    };
    return (await call(path, options)).json();
  }

  // Server-sent events of a streamed completion: calls onEvent(obj) for each JSON event. An
  // {"error": ...} event (a failure after the headers were sent) is thrown as an ApiError.
  async function stream(res, onEvent) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") return;
          const obj = JSON.parse(data);
          if (obj.error) throw new ApiError(obj.error.code || "stream", obj.error.message || "stream error");
          onEvent(obj);
        }
      }
    }
    throw new Error("the stream ended without [DONE]: the server closed the connection");
  }

  const fmtBytes = (n) => {
    if (!(n > 0)) return "0 B";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
    return (n / 1024 ** i).toFixed(i ? 1 : 0) + " " + u[i];
  };

  function statusLine(s) {
    const parts = s.models.map((m) => {
      let t = `${m.id} (${m.task}${m.vision ? ", sees images" : ""}`;
      if (m.memory && m.memory.host_bytes !== undefined) {
        t += `; plan ${fmtBytes(m.memory.host_bytes)} RAM`;
        if (m.memory.gpu_bytes) t += ` + ${fmtBytes(m.memory.gpu_bytes)} ${m.memory.gpu_device}`;
        t += `, ${m.memory.verdict}`;
      } else if (m.memory && m.memory.loaded_bytes !== undefined) {
        t += `; ${fmtBytes(m.memory.loaded_bytes)} loaded`;
      }
      return t + ")";
    });
    const mem = s.memory ? ` · using ${fmtBytes(s.memory.host_current_bytes)}` : "";
    return `eight ${s.version} · ${parts.join(" · ")}${mem}`;
  }

  const dataUrl = (file) =>
    new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.readAsDataURL(file);
    });

  return {ApiError, call, json, stream, showError, clearError, askKey, saveKey, statusLine, fmtBytes, dataUrl,
          hasKey: () => !!localStorage.getItem(KEY)};
})();
