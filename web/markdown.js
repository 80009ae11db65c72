// A small markdown renderer for model output. It builds DOM nodes and puts every piece of text in
// a text node, so nothing the model writes is ever parsed as HTML (no innerHTML anywhere).
// Covers what chat models write: paragraphs, headings, bold/italic, inline code, fenced code
// blocks (with a copy button), bullet and numbered lists, block quotes and links.
"use strict";

const Markdown = (() => {
  const el = (tag, cls) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    return e;
  };

  // Only these link targets become links: a model must not be able to plant javascript: URLs.
  const safeUrl = (url) => /^(https?:|mailto:)/i.test(url.trim());

  // Inline spans: `code`, **bold**, __bold__, *italic*, _italic_, [text](url), bare URLs.
  const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*(?!\s)([^*]+?)\*|_(?!\s)([^_]+?)_(?!\w)|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/;

  function inline(parent, text) {
    while (text.length) {
      const m = INLINE.exec(text);
      if (!m) {
        parent.appendChild(document.createTextNode(text));
        return;
      }
      // _x_ inside a word (snake_case_names) is not emphasis. Checked here rather than with a
      // lookbehind, which older Safari cannot parse.
      if (m[6] !== undefined && m.index > 0 && /\w/.test(text[m.index - 1])) {
        parent.appendChild(document.createTextNode(text.slice(0, m.index + 1)));
        text = text.slice(m.index + 1);
        continue;
      }
      if (m.index > 0) parent.appendChild(document.createTextNode(text.slice(0, m.index)));
      if (m[1]) {
        const c = el("code");
        c.textContent = m[2].trim() || m[2];
        parent.appendChild(c);
      } else if (m[3] !== undefined || m[4] !== undefined) {
        inline(parent.appendChild(el("strong")), m[3] ?? m[4]);
      } else if (m[5] !== undefined || m[6] !== undefined) {
        inline(parent.appendChild(el("em")), m[5] ?? m[6]);
      } else if (m[7] !== undefined) {
        if (safeUrl(m[8])) {
          const a = el("a");
          a.href = m[8];
          a.target = "_blank";
          a.rel = "noopener noreferrer";
          inline(a, m[7]);
          parent.appendChild(a);
        } else {
          parent.appendChild(document.createTextNode(m[0]));
        }
      } else {
        const a = el("a");
        a.href = m[9];
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        a.textContent = m[9];
        parent.appendChild(a);
      }
      text = text.slice(m.index + m[0].length);
    }
  }

  function codeBlock(lang, code) {
    const wrap = el("div", "codeblock");
    const bar = el("div", "codebar");
    const label = el("span");
    label.textContent = lang || "code";
    const copy = el("button", "copy small");
    copy.type = "button";
    copy.textContent = "Copy";
    copy.addEventListener("click", () => {
      const done = () => {
        copy.textContent = "Copied";
        setTimeout(() => (copy.textContent = "Copy"), 1200);
      };
      // The clipboard API needs a secure context; a LAN address over http falls back to a
      // selection copy.
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(code).then(done, () => fallbackCopy(code) && done());
      } else if (fallbackCopy(code)) {
        done();
      }
    });
    bar.append(label, copy);
    const pre = el("pre");
    const c = el("code");
    if (lang) c.dataset.lang = lang;
    c.textContent = code;
    pre.appendChild(c);
    wrap.append(bar, pre);
    return wrap;
  }

  function fallbackCopy(text) {
    const t = el("textarea");
    t.value = text;
    t.style.position = "fixed";
    t.style.opacity = "0";
    document.body.appendChild(t);
    t.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    t.remove();
    return ok;
  }

  const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;

  // Renders `text` into a new <div class="md">. An unclosed fence (a reply still streaming) is
  // shown as a code block up to the end.
  function render(text) {
    const root = el("div", "md");
    const lines = text.replace(/\r\n?/g, "\n").split("\n");
    let para = [];
    const flush = () => {
      if (!para.length) return;
      const p = el("p");
      para.forEach((l, i) => {
        if (i) p.appendChild(el("br"));
        inline(p, l);
      });
      root.appendChild(p);
      para = [];
    };
    for (let i = 0; i < lines.length; ) {
      const line = lines[i];
      const fence = /^\s*(```+|~~~+)\s*([\w+#.-]*)\s*$/.exec(line);
      if (fence) {
        flush();
        const body = [];
        let j = i + 1;
        while (j < lines.length && !lines[j].trim().startsWith(fence[1])) body.push(lines[j++]);
        root.appendChild(codeBlock(fence[2], body.join("\n")));
        i = j + 1;
        continue;
      }
      const heading = /^(#{1,6})\s+(.*)$/.exec(line);
      if (heading) {
        flush();
        inline(root.appendChild(el("h" + Math.min(6, heading[1].length + 2))), heading[2]);
        i++;
        continue;
      }
      if (/^>\s?/.test(line)) {
        flush();
        const quote = [];
        while (i < lines.length && /^>\s?/.test(lines[i])) quote.push(lines[i++].replace(/^>\s?/, ""));
        const q = el("blockquote");
        q.appendChild(render(quote.join("\n")));
        root.appendChild(q);
        continue;
      }
      const item = LIST_ITEM.exec(line);
      if (item) {
        flush();
        const ordered = /\d/.test(item[2]);
        const list = el(ordered ? "ol" : "ul");
        if (ordered && parseInt(item[2], 10) !== 1) list.start = parseInt(item[2], 10);
        let li = null;
        while (i < lines.length) {
          const m = LIST_ITEM.exec(lines[i]);
          if (m && /\d/.test(m[2]) === ordered) {
            li = el("li");
            inline(li, m[3]);
            list.appendChild(li);
          } else if (li && /^\s+\S/.test(lines[i])) {
            li.appendChild(document.createTextNode(" "));
            inline(li, lines[i].trim());
          } else {
            break;
          }
          i++;
        }
        root.appendChild(list);
        continue;
      }
      if (!line.trim()) flush();
      else para.push(line);
      i++;
    }
    flush();
    return root;
  }

  return {render, inline, safeUrl};
})();
