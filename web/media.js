// The Images, Speech and Vision tabs: image generation with a gallery of each image's parameters,
// transcription of an uploaded or recorded file (with .srt/.vtt downloads), and tags, zero-shot
// labels and captions of an image.
"use strict";

const Media = (() => {
  let imageModel = null;
  let speechModel = null;

  // ---- Images ---------------------------------------------------------------------------------
  async function generate(ev) {
    ev.preventDefault();
    Api.clearError();
    const steps = parseInt($("imgSteps").value, 10);
    let seed = parseInt($("imgSeed").value, 10);
    // A seed chosen here rather than by the server, so the gallery can always show it.
    if (!Number.isFinite(seed)) seed = Math.floor(Math.random() * 2 ** 31);
    const params = {model: imageModel, prompt: $("imgPrompt").value, negative_prompt: $("imgNegative").value,
                    size: $("imgSize").value, seed, n: 1, response_format: "b64_json"};
    if (Number.isFinite(steps)) params.steps = steps;
    const card = document.createElement("figure");
    card.className = "card pending";
    card.textContent = "generating…";
    $("gallery").prepend(card);
    $("imgGenerate").disabled = true;
    try {
      const out = await Api.json("/v1/images/generations", params);
      card.className = "card";
      card.replaceChildren();
      const img = document.createElement("img");
      img.src = "data:image/png;base64," + out.data[0].b64_json;
      img.alt = params.prompt;
      const cap = document.createElement("figcaption");
      const lines = [`prompt: ${params.prompt}`, params.negative_prompt && `negative: ${params.negative_prompt}`,
                     `size: ${params.size}`, `steps: ${params.steps ?? "default"}`, `seed: ${seed}`,
                     `model: ${imageModel}`];
      for (const l of lines.filter(Boolean)) {
        const d = document.createElement("div");
        d.textContent = l;
        cap.appendChild(d);
      }
      const save = document.createElement("a");
      save.href = img.src;
      save.download = `eight-${seed}.png`;
      save.textContent = "Download";
      cap.appendChild(save);
      card.append(img, cap);
    } catch (err) {
      card.remove();
      Api.showError(err);
    } finally {
      $("imgGenerate").disabled = false;
    }
  }

  // ---- Speech ---------------------------------------------------------------------------------
  let audio = null; // {blob, name}
  let recorder = null;

  // 16-bit mono WAV of an AudioBuffer: what the browser records (WebM/Opus in Chromium) is decoded
  // here, so the server only ever receives a format it reads.
  function wavOf(buffer) {
    const n = buffer.length;
    const mono = new Float32Array(n);
    for (let c = 0; c < buffer.numberOfChannels; c++) {
      const ch = buffer.getChannelData(c);
      for (let i = 0; i < n; i++) mono[i] += ch[i] / buffer.numberOfChannels;
    }
    const out = new DataView(new ArrayBuffer(44 + 2 * n));
    const str = (o, s) => [...s].forEach((ch, i) => out.setUint8(o + i, ch.charCodeAt(0)));
    str(0, "RIFF");
    out.setUint32(4, 36 + 2 * n, true);
    str(8, "WAVEfmt ");
    out.setUint32(16, 16, true);
    out.setUint16(20, 1, true);
    out.setUint16(22, 1, true);
    out.setUint32(24, buffer.sampleRate, true);
    out.setUint32(28, 2 * buffer.sampleRate, true);
    out.setUint16(32, 2, true);
    out.setUint16(34, 16, true);
    str(36, "data");
    out.setUint32(40, 2 * n, true);
    for (let i = 0; i < n; i++) out.setInt16(44 + 2 * i, Math.max(-1, Math.min(1, mono[i])) * 32767, true);
    return new Blob([out.buffer], {type: "audio/wav"});
  }

  async function toggleRecord() {
    if (recorder) {
      recorder.stop();
      return;
    }
    if (!navigator.mediaDevices || !window.MediaRecorder)
      throw new Error("this browser cannot record here (the microphone needs https or localhost)");
    const stream = await navigator.mediaDevices.getUserMedia({audio: true});
    const parts = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => e.data.size && parts.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      $("record").textContent = "Record";
      try {
        const ctx = new AudioContext();
        const decoded = await ctx.decodeAudioData(await new Blob(parts).arrayBuffer());
        ctx.close();
        audio = {blob: wavOf(decoded), name: "recording.wav"};
        $("audioInfo").textContent = `recorded ${decoded.duration.toFixed(1)} s`;
      } catch (err) {
        Api.showError(err);
      }
    };
    recorder.start();
    $("record").textContent = "Stop recording";
    $("audioInfo").textContent = "recording…";
  }

  const stamp = (t, sep) => {
    const ms = Math.round(t * 1000);
    const p = (v, w) => String(v).padStart(w, "0");
    return `${p(Math.floor(ms / 3600000), 2)}:${p(Math.floor(ms / 60000) % 60, 2)}:${p(Math.floor(ms / 1000) % 60, 2)}${sep}${p(ms % 1000, 3)}`;
  };
  // The cues the server writes for response_format srt/vtt: empty segments left out, and "-->"
  // in the text shortened (it would end a cue line early in players).
  const subtitles = (segments, vtt) =>
    (vtt ? "WEBVTT\n\n" : "") +
    segments.map((s) => ({...s, text: s.text.trim().replaceAll("-->", "->")})).filter((s) => s.text)
      .map((s, i) => `${vtt ? "" : i + 1 + "\n"}${stamp(s.start, vtt ? "." : ",")} --> ${stamp(s.end, vtt ? "." : ",")}\n${s.text}\n\n`)
      .join("");

  function link(id, text, type) {
    const a = $(id);
    if (a.href && a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(new Blob([text], {type}));
    a.hidden = false;
  }

  async function transcribe() {
    Api.clearError();
    const file = $("audioFile").files[0];
    const input = file ? {blob: file, name: file.name} : audio;
    if (!input) throw new Error("choose an audio file or record one first");
    const form = new FormData();
    form.append("file", input.blob, input.name);
    form.append("model", speechModel);
    form.append("response_format", "verbose_json");
    const lang = $("language").value.trim();
    if (lang && $("speechTask").value === "transcriptions") form.append("language", lang);
    $("transcribe").disabled = true;
    $("transcript").textContent = "transcribing…";
    $("transcript").dataset.state = "running";
    try {
      const res = await Api.call("/v1/audio/" + $("speechTask").value, {method: "POST", body: form});
      const out = await res.json();
      $("transcript").textContent = out.text.trim();
      $("transcript").dataset.state = "done";
      const segs = out.segments || [];
      link("srtLink", subtitles(segs, false), "application/x-subrip");
      link("vttLink", subtitles(segs, true), "text/vtt");
    } catch (err) {
      $("transcript").textContent = "";
      $("transcript").dataset.state = "error";
      throw err;
    } finally {
      $("transcribe").disabled = false;
    }
  }

  // ---- Vision ---------------------------------------------------------------------------------
  let visionImage = null;

  function resultList(title, rows) {
    const box = document.createElement("div");
    const h = document.createElement("h3");
    h.textContent = title;
    const ul = document.createElement("ul");
    for (const [name, score] of rows) {
      const li = document.createElement("li");
      li.textContent = `${name}: ${Number(score).toFixed(3)}`;
      ul.appendChild(li);
    }
    box.append(h, ul);
    $("visionResult").replaceChildren(box);
  }

  async function withImage(f) {
    Api.clearError();
    if (!visionImage) throw new Error("choose an image first");
    await f(visionImage);
  }

  const tag = () => withImage(async (image) => {
    const out = await Api.json("/v1/tags", {image, threshold: parseFloat($("tagThreshold").value)});
    const rows = [...Object.entries(out.rating || {}), ...(out.general || []).map((t) => [t.name, t.score]),
                  ...(out.character || []).map((t) => [t.name, t.score])];
    resultList(`tags (${out.model})`, rows);
  });

  const classify = () => withImage(async (image) => {
    const labels = $("labels").value.split(",").map((s) => s.trim()).filter(Boolean);
    const out = await Api.json("/v1/classify", {image, labels});
    resultList(`labels (${out.model})`, out.data[0].labels.map((l) => [l.label, l.probability]));
  });

  const caption = () => withImage(async (image) => {
    const out = await Api.json("/v1/chat/completions", {
      model: $("captionModel").value,
      messages: [{role: "user", content: [{type: "image_url", image_url: {url: image}}]}]});
    const p = document.createElement("p");
    p.className = "caption";
    p.textContent = out.choices[0].message.content;
    $("visionResult").replaceChildren(p);
  });

  function setModels(list) {
    const by = (task) => list.filter((m) => m.task === task);
    imageModel = by("images")[0] ? by("images")[0].id : null;
    speechModel = by("speech")[0] ? by("speech")[0].id : null;
    $("tagRow").hidden = !by("tags").length;
    $("classifyRow").hidden = !by("clip").length;
    $("captionRow").hidden = !by("caption").length;
    $("captionModel").replaceChildren(...by("caption").map((m) => {
      const o = document.createElement("option");
      o.value = o.textContent = m.id;
      return o;
    }));
    return {images: !!imageModel, speech: !!speechModel,
            vision: !!(by("tags").length || by("clip").length || by("caption").length)};
  }

  function init() {
    const report = (f) => () => f().catch(Api.showError);
    $("imageForm").addEventListener("submit", generate);
    $("record").addEventListener("click", report(toggleRecord));
    $("transcribe").addEventListener("click", report(transcribe));
    $("audioFile").addEventListener("change", () => {
      audio = null;
      const f = $("audioFile").files[0];
      $("audioInfo").textContent = f ? `${f.name}, ${Api.fmtBytes(f.size)}` : "";
    });
    $("visionFile").addEventListener("change", report(async () => {
      const f = $("visionFile").files[0];
      visionImage = f ? await Api.dataUrl(f) : null;
      $("visionPreview").hidden = !visionImage;
      if (visionImage) $("visionPreview").src = visionImage;
    }));
    $("tagButton").addEventListener("click", report(tag));
    $("classifyButton").addEventListener("click", report(classify));
    $("captionButton").addEventListener("click", report(caption));
  }

  return {init, setModels};
})();
