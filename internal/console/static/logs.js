// An instance's log panel: follows a container's log over server-sent
// events. Lines are text: they go in with textContent, never as HTML.
"use strict";

const maxLines = 2000;

document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("log");
  if (!panel || !window.EventSource) return;
  const state = document.getElementById("log-state");
  const picker = document.getElementById("log-container");
  const download = document.getElementById("log-download");
  let source = null;

  const add = (text, cls) => {
    // Scroll along only when the reader is at the bottom already.
    const atBottom = panel.scrollTop + panel.clientHeight >= panel.scrollHeight - 4;
    const line = document.createElement("div");
    line.textContent = text;
    if (cls) line.className = cls;
    panel.appendChild(line);
    while (panel.childElementCount > maxLines) panel.removeChild(panel.firstElementChild);
    if (atBottom) panel.scrollTop = panel.scrollHeight;
    panel.dataset.lines = String(panel.childElementCount);
  };

  const follow = (container) => {
    if (source) source.close();
    const url = panel.dataset.log + "?container=" + encodeURIComponent(container);
    download.href = url;
    source = new EventSource(url);
    // The server starts each stream with the last lines again: start afresh.
    source.addEventListener("open", () => { panel.replaceChildren(); state.textContent = "following"; });
    source.addEventListener("message", (e) => add(e.data));
    source.addEventListener("end", (e) => { source.close(); add("— " + e.data + " —", "log-end"); state.textContent = "ended"; });
    source.addEventListener("error", () => { state.textContent = source.readyState === EventSource.CLOSED ? "closed" : "reconnecting"; });
  };

  if (picker) picker.addEventListener("change", () => follow(picker.value));
  follow(picker ? picker.value : panel.dataset.container);
  window.addEventListener("pagehide", () => source && source.close());
});
