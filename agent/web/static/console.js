// facility-agent console: error flash for htmx, the trend chart (uPlot), the chat panel.
// No build step; served as is.
"use strict";

function csrfToken() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.content : "";
}

function flash(text) {
  const el = document.getElementById("flash");
  if (!el) return;
  el.textContent = text;
  el.hidden = !text;
}

document.body.addEventListener("htmx:responseError", (ev) => {
  const xhr = ev.detail.xhr;
  let text = xhr.status + " " + xhr.statusText;
  try { text = xhr.status + ": " + JSON.parse(xhr.responseText).detail; } catch (e) { /* not JSON */ }
  flash(text);
});
document.body.addEventListener("htmx:afterRequest", (ev) => {
  if (ev.detail.successful && ev.detail.requestConfig && ev.detail.requestConfig.verb !== "get") flash("");
});

// ---- trends -------------------------------------------------------------------------------
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

function marksPlugin(marks) {
  return {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        for (const m of marks) {
          const x = u.valToPos(m.t, "x", true);
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.strokeStyle = m.kind === "write" ? "#d62728" : "#888";
          ctx.setLineDash(m.kind === "write" ? [] : [4, 4]);
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.fillStyle = ctx.strokeStyle;
          ctx.fillText(m.kind === "write" ? "◆" : "▲", x - 4, u.bbox.top + 10);
        }
        ctx.restore();
      }],
    },
  };
}

async function consoleTrend(el) {
  const tags = el.dataset.tags, span = el.dataset.span;
  const r = await fetch("/ui/trends/data?tags=" + encodeURIComponent(tags) + "&span=" + encodeURIComponent(span));
  if (!r.ok) { flash("trend: " + r.status); return; }
  const d = await r.json();
  if (d.unknown.length) flash("unknown points: " + d.unknown.join(", "));
  const units = [...new Set(d.series.map((s) => s.unit))];
  const series = [{}].concat(d.series.map((s, i) => ({
    label: s.tag + " [" + s.unit + "]", stroke: PALETTE[i % PALETTE.length], width: 1.5,
    scale: s.unit, spanGaps: false,
  })));
  const axes = [{}].concat(units.slice(0, 2).map((u, i) => ({ scale: u, label: u, side: i ? 1 : 3, grid: { show: i === 0 } })));
  const opts = {
    width: Math.max(600, el.clientWidth || 900), height: 380, series, axes,
    scales: { x: { time: true } }, plugins: [marksPlugin(d.marks)],
  };
  el.innerHTML = "";
  el.dataset.points = String(d.t.length);
  new uPlot(opts, [d.t].concat(d.series.map((s) => s.values)), el);
  const ul = document.getElementById("marks");
  if (ul) {
    ul.innerHTML = "";
    for (const m of d.marks) {
      const li = document.createElement("li");
      li.textContent = new Date(m.t * 1000).toISOString().slice(0, 19).replace("T", " ") + " " + (m.kind === "write" ? "◆ " : "▲ ") + m.label;
      ul.appendChild(li);
    }
  }
}

// ---- chat ---------------------------------------------------------------------------------
function chatEntry(log, who, text, cls) {
  const div = document.createElement("div");
  div.className = "msg " + cls;
  const h = document.createElement("b");
  h.textContent = who;
  const pre = document.createElement("pre");
  pre.textContent = text;
  div.appendChild(h);
  div.appendChild(pre);
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return pre;
}

function consoleChat(form, log) {
  let conversation = null;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = form.querySelector("textarea");
    const message = input.value.trim();
    if (!message) return;
    input.value = "";
    chatEntry(log, "you", message, "mine");
    const out = chatEntry(log, "agent", "…", "theirs");
    const body = { message };
    if (conversation) body.conversation = conversation;
    const r = await fetch("/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream, application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body),
    });
    if (!r.ok) {
      let t = r.status + "";
      try { t += ": " + (await r.json()).detail; } catch (e) { /* not JSON */ }
      out.textContent = t;
      out.parentElement.classList.add("error");
      return;
    }
    let result;
    if ((r.headers.get("content-type") || "").startsWith("text/event-stream")) {
      result = await readStream(r, out);
    } else {
      result = await r.json();
    }
    out.textContent = result.text || "";
    conversation = result.conversation || conversation;
    for (const p of result.proposals || []) {
      chatEntry(log, "proposal", JSON.stringify(p, null, 1), "proposal");
    }
    out.parentElement.dataset.done = "1";
  });
}

async function readStream(r, out) {
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "", text = "", result = null;
  out.textContent = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "message", data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (event === "token") { text += data.join("\n"); out.textContent = text; }
      else if (event === "done") { result = JSON.parse(data.join("\n")); }
    }
  }
  return result || { text };
}
