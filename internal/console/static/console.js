// The console's one script: a page with a [data-live] block follows the
// server over server-sent events on its own URL, which sends the block again
// whenever it changes.
"use strict";

// morph makes from's children like to's, keeping the nodes that are alike
// (same kind and tag, in the same place) and changing only their text and
// attributes: a link being clicked while the block updates stays the same
// element, so the click is not lost, and focus and selection stay.
function morph(from, to) {
  const a = Array.from(from.childNodes), b = Array.from(to.childNodes);
  b.forEach((y, i) => {
    const x = a[i];
    if (!x) {
      from.appendChild(y);
    } else if (x.nodeType !== y.nodeType || x.nodeName !== y.nodeName) {
      from.replaceChild(y, x);
    } else if (x.nodeType === Node.TEXT_NODE) {
      if (x.data !== y.data) x.data = y.data;
    } else if (x.nodeType === Node.ELEMENT_NODE) {
      for (const at of Array.from(x.attributes)) if (!y.hasAttribute(at.name)) x.removeAttribute(at.name);
      for (const at of Array.from(y.attributes)) if (x.getAttribute(at.name) !== at.value) x.setAttribute(at.name, at.value);
      morph(x, y);
    }
  });
  for (let i = a.length - 1; i >= b.length; i--) from.removeChild(a[i]);
}

document.addEventListener("DOMContentLoaded", () => {
  const block = document.querySelector("[data-live]");
  if (!block || !window.EventSource) return;
  const source = new EventSource(location.href);
  source.addEventListener("live", (e) => {
    // The server renders the block with html/template: escaped, same origin.
    const next = document.createElement("template");
    next.innerHTML = e.data;
    morph(block, next.content);
    block.dataset.updated = String(Date.now());
  });
  window.addEventListener("pagehide", () => source.close());
});
