// The Music tab: a prompt, duration and seed to /v1/audio/generations (MAGNeT), answered with WAV
// bytes that play in an <audio> player and download.
"use strict";

const Music = (() => {
  let musicModel = null;

  async function generate(ev) {
    ev.preventDefault();
    Api.clearError();
    let seed = parseInt($("musicSeed").value, 10);
    // Chosen here rather than by the server, so the result line can always show it.
    if (!Number.isFinite(seed)) seed = Math.floor(Math.random() * 2 ** 31);
    const duration = parseFloat($("musicDuration").value);
    const params = {model: musicModel, prompt: $("musicPrompt").value, seed, response_format: "wav"};
    if (Number.isFinite(duration)) params.duration = duration;
    $("musicGenerate").disabled = true;
    $("musicInfo").textContent = "generating…";
    $("musicInfo").dataset.state = "running";
    try {
      const res = await Api.call("/v1/audio/generations", {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(params)});
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const player = $("musicPlayer");
      if (player.src.startsWith("blob:")) URL.revokeObjectURL(player.src);
      player.src = url;
      player.hidden = false;
      $("musicLink").href = url;
      $("musicLink").download = `eight-music-${seed}.wav`;
      $("musicLink").hidden = false;
      $("musicInfo").textContent = `seed ${seed}, ${Api.fmtBytes(blob.size)}, model ${musicModel}`;
      $("musicInfo").dataset.state = "done";
    } catch (err) {
      $("musicInfo").textContent = "";
      $("musicInfo").dataset.state = "error";
      Api.showError(err);
    } finally {
      $("musicGenerate").disabled = false;
    }
  }

  function setModels(list) {
    const m = list.find((x) => x.task === "music");
    musicModel = m ? m.id : null;
    return {music: !!musicModel};
  }

  function init() {
    $("musicForm").addEventListener("submit", generate);
  }

  return {init, setModels};
})();
