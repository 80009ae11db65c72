// Start-up: ask /v1/eight/status what the server serves (asking for the API key first when it
// answers 401), then show the tabs for it and keep the status line current.
"use strict";

(() => {
  function showTab(name) {
    for (const b of document.querySelectorAll("#tabs button")) {
      b.setAttribute("aria-selected", b.dataset.tab === name);
      $("panel-" + b.dataset.tab).hidden = b.dataset.tab !== name;
    }
    localStorage.setItem("eight.tab", name);
  }

  async function status() {
    const s = await Api.json("/v1/eight/status");
    $("status").textContent = Api.statusLine(s);
    $("status").dataset.ready = "1";
    return s;
  }

  async function start() {
    let s;
    for (;;) {
      try {
        s = await status();
        break;
      } catch (err) {
        if (!(err instanceof Api.ApiError && err.status === 401)) throw err;
        Api.showError(err);
        $("status").textContent = "waiting for the API key";
        await new Promise((resolve) => {
          const wait = setInterval(() => {
            if (Api.hasKey()) {
              clearInterval(wait);
              resolve();
            }
          }, 100);
        });
      }
    }
    Api.clearError();
    // The ids /v1/models lists, with the task and vision the status reports for each.
    const listed = (await Api.json("/v1/models")).data.map((m) => m.id);
    const info = new Map(s.models.map((m) => [m.id, m]));
    const models = listed.map((id) => info.get(id) || {id, task: "unknown", vision: false});
    Chat.setModels(models);
    const has = {chat: models.some((m) => m.task === "chat" || m.task === "caption"),
                 ...Media.setModels(models), ...Music.setModels(models)};
    const shown = Object.keys(has).filter((k) => has[k]);
    for (const k of shown) $("tab-" + k).hidden = false;
    const want = localStorage.getItem("eight.tab");
    showTab(shown.includes(want) ? want : shown[0] || "chat");
    document.body.dataset.ready = "1";
    setInterval(() => status().catch(() => {}), 10000);
  }

  Chat.init();
  Media.init();
  Music.init();
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("errorClose").addEventListener("click", Api.clearError);
  $("keyForm").addEventListener("submit", (e) => {
    e.preventDefault();
    Api.saveKey($("keyInput").value.trim());
  });
  $("changeKey").hidden = !Api.hasKey();
  $("changeKey").addEventListener("click", () => Api.askKey());
  start().catch((err) => {
    $("status").textContent = "not connected";
    Api.showError(err);
  });
})();
