// The console's one script: a page with a [data-live] block follows the
// server over server-sent events on its own URL, which sends the block again
// whenever it changes.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const block = document.querySelector("[data-live]");
  if (!block || !window.EventSource) return;
  const source = new EventSource(location.href);
  source.addEventListener("live", (e) => {
    // The server renders the block with html/template: escaped, same origin.
    block.innerHTML = e.data;
    block.dataset.updated = String(Date.now());
  });
  window.addEventListener("pagehide", () => source.close());
});
