// The Chat tab: conversations kept in local storage, a model picker, sampling settings, streamed
// replies rendered as markdown, a stop button and image parts for models that see.
"use strict";

const Chat = (() => {
  const STORE = "eight.conversations";
  let models = []; // {id, task, vision}
  let conversations = [];
  let current = null;
  let pendingImage = null; // data: URL of the image for the next message
  let controller = null;

  function load() {
    try {
      conversations = JSON.parse(localStorage.getItem(STORE) || "[]");
      if (!Array.isArray(conversations)) conversations = [];
    } catch (e) {
      conversations = [];
    }
  }

  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify(conversations));
    } catch (e) {
      // Quota: images are stored inline; say so instead of losing the chat silently.
      Api.showError(new Error("could not save the conversation in local storage (" + e.message + ")"));
    }
  }

  function newConversation() {
    current = {id: Date.now().toString(36) + Math.random().toString(36).slice(2, 6), title: "New chat",
               messages: [], updated: Date.now()};
    conversations.unshift(current);
    save();
    renderList();
    renderMessages();
  }

  function renderList() {
    const ul = $("conversations");
    ul.replaceChildren();
    for (const c of conversations) {
      const li = document.createElement("li");
      li.className = c === current ? "active" : "";
      li.dataset.id = c.id;
      const open = document.createElement("button");
      open.className = "open";
      open.textContent = c.title;
      open.title = new Date(c.updated).toLocaleString();
      open.addEventListener("click", () => {
        current = c;
        renderList();
        renderMessages();
      });
      const del = document.createElement("button");
      del.className = "delete small";
      del.textContent = "×";
      del.title = "delete this conversation";
      del.addEventListener("click", () => {
        conversations = conversations.filter((x) => x !== c);
        if (current === c) current = conversations[0] || null;
        save();
        if (!current) newConversation();
        else {
          renderList();
          renderMessages();
        }
      });
      li.append(open, del);
      ul.appendChild(li);
    }
  }

  function messageElement(m) {
    const div = document.createElement("div");
    div.className = "msg " + m.role + (m.error ? " failed" : "");
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = m.role === "user" ? "you" : m.model || "assistant";
    div.appendChild(who);
    if (m.image) {
      const img = document.createElement("img");
      img.className = "thumb";
      img.src = m.image;
      img.alt = "uploaded image";
      div.appendChild(img);
    }
    const body = document.createElement("div");
    body.className = "body";
    body.appendChild(m.role === "assistant" ? Markdown.render(m.content) : plain(m.content));
    div.appendChild(body);
    return div;
  }

  function plain(text) {
    const p = document.createElement("p");
    p.className = "plain";
    p.textContent = text;
    return p;
  }

  function renderMessages() {
    const box = $("messages");
    box.replaceChildren(...(current ? current.messages.map(messageElement) : []));
    box.scrollTop = box.scrollHeight;
  }

  function selected() {
    return models.find((m) => m.id === $("model").value);
  }

  function setModels(list) {
    models = list;
    const sel = $("model");
    const keep = localStorage.getItem("eight.model");
    sel.replaceChildren();
    for (const m of list) {
      const o = document.createElement("option");
      o.value = m.id;
      const chat = m.task === "chat" || m.task === "caption";
      o.textContent = chat ? `${m.id}${m.vision ? " (sees images)" : ""}` : `${m.id} (${m.task}: not for chat)`;
      o.disabled = !chat;
      sel.appendChild(o);
    }
    const usable = list.filter((m) => m.task === "chat" || m.task === "caption");
    if (keep && usable.some((m) => m.id === keep)) sel.value = keep;
    else if (usable.length) sel.value = usable[0].id;
    modelChanged();
  }

  function modelChanged() {
    const m = selected();
    if (m) localStorage.setItem("eight.model", m.id);
    $("imageLabel").hidden = !(m && m.vision);
    if (!(m && m.vision)) clearImage();
  }

  function clearImage() {
    pendingImage = null;
    $("image").value = "";
    $("imagePreview").replaceChildren();
  }

  async function pickImage() {
    const f = $("image").files[0];
    if (!f) return clearImage();
    pendingImage = await Api.dataUrl(f);
    const img = document.createElement("img");
    img.className = "thumb";
    img.src = pendingImage;
    img.alt = f.name;
    $("imagePreview").replaceChildren(img);
  }

  function number(id, parse) {
    const v = $(id).value.trim();
    if (v === "") return undefined;
    const n = parse(v);
    return Number.isFinite(n) ? n : undefined;
  }

  function requestBody(model) {
    const msgs = [];
    const system = $("system").value.trim();
    if (system) msgs.push({role: "system", content: system});
    for (const m of current.messages) {
      if (m.error) continue;
      msgs.push(m.image ? {role: m.role, content: [{type: "text", text: m.content},
                                                   {type: "image_url", image_url: {url: m.image}}]}
                        : {role: m.role, content: m.content});
    }
    const body = {model, messages: msgs, stream: true};
    const settings = {temperature: number("temperature", parseFloat), top_p: number("top_p", parseFloat),
                      max_tokens: number("max_tokens", (s) => parseInt(s, 10)), seed: number("seed", (s) => parseInt(s, 10))};
    for (const [k, v] of Object.entries(settings)) if (v !== undefined) body[k] = v;
    return body;
  }

  async function send(ev) {
    ev.preventDefault();
    const text = $("prompt").value;
    const m = selected();
    if (controller || (!text.trim() && !pendingImage)) return;
    if (!m) return Api.showError(new Error("no chat model is served"));
    Api.clearError();
    if (!current) newConversation();
    const user = {role: "user", content: text};
    if (pendingImage) user.image = pendingImage;
    current.messages.push(user);
    if (current.title === "New chat") current.title = text.trim().slice(0, 40) || "image";
    current.updated = Date.now();
    $("prompt").value = "";
    clearImage();
    const request = JSON.stringify(requestBody(m.id)); // the history before the reply
    const reply = {role: "assistant", content: "", model: m.id};
    current.messages.push(reply);
    renderList();
    renderMessages();
    const el = $("messages").lastElementChild;
    const body = el.querySelector(".body");
    el.dataset.state = "streaming";
    let chunks = 0;
    let scheduled = false;
    const paint = () => {
      scheduled = false;
      body.replaceChildren(Markdown.render(reply.content));
      $("messages").scrollTop = $("messages").scrollHeight;
    };
    controller = new AbortController();
    $("send").disabled = true;
    $("stop").disabled = false;
    try {
      const res = await Api.call("/v1/chat/completions", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: request, signal: controller.signal});
      const onText = (t) => {
        if (!t) return;
        reply.content += t;
        el.dataset.chunks = ++chunks;
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(paint);
        }
      };
      if ((res.headers.get("Content-Type") || "").startsWith("text/event-stream"))
        await Api.stream(res, (e) => e.choices && e.choices[0] && e.choices[0].delta && onText(e.choices[0].delta.content));
      else onText((await res.json()).choices[0].message.content);
      el.dataset.state = "done";
    } catch (err) {
      if (err.name === "AbortError") {
        el.dataset.state = "stopped";
        reply.content += reply.content ? "\n\n*(stopped)*" : "*(stopped)*";
      } else {
        el.dataset.state = "error";
        reply.error = true;
        if (!reply.content) reply.content = "*(failed: see the error above)*";
        el.classList.add("failed");
        Api.showError(err);
      }
    } finally {
      controller = null;
      $("send").disabled = false;
      $("stop").disabled = true;
      current.updated = Date.now();
      save();
      paint();
    }
  }

  function init() {
    load();
    current = conversations[0] || null;
    if (!current) newConversation();
    renderList();
    renderMessages();
    $("newChat").addEventListener("click", newConversation);
    $("composer").addEventListener("submit", send);
    $("prompt").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("stop").addEventListener("click", () => controller && controller.abort());
    $("model").addEventListener("change", modelChanged);
    $("image").addEventListener("change", () => pickImage().catch(Api.showError));
  }

  return {init, setModels};
})();
