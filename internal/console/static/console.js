// The console's script: a page with a [data-live] block follows the server
// over server-sent events on its own URL, which sends the block again
// ("live") or, on a list, the rows that changed ("rows").
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

// patchRows puts the rows of a "rows" event in place in the block's
// tbody[data-rows]: a row replaces the one with its data-id, one made since
// the list was drawn goes first (the list is newest first) on the first
// page, one marked data-gone leaves.
function patchRows(block, html) {
  const body = block.querySelector("tbody[data-rows]");
  if (!body) return;
  const next = document.createElement("template");
  next.innerHTML = "<table><tbody>" + html + "</tbody></table>";
  for (const row of Array.from(next.content.querySelectorAll("tr[data-id]"))) {
    const old = body.querySelector('tr[data-id="' + CSS.escape(row.dataset.id) + '"]');
    if (row.hasAttribute("data-gone")) {
      if (old) old.remove();
    } else if (old) {
      morph(old, row);
    } else if (body.dataset.rows === "new first" && Number(row.dataset.created) >= Number(body.dataset.listed)) {
      // Made after the list was drawn: a row not here that is older
      // belongs on another page.
      body.prepend(row);
    }
  }
  if (body.querySelector("tr[data-id]")) body.querySelector("tr.empty")?.remove();
}

document.addEventListener("DOMContentLoaded", () => {
  const block = document.querySelector("[data-live]");
  if (!block || !window.EventSource) return;
  // The stream starts where the page was drawn (data-since); on a
  // reconnect the browser sends the last event's id instead.
  const url = new URL(location.href);
  if (block.dataset.since) url.searchParams.set("since", block.dataset.since);
  const source = new EventSource(url);
  // The server renders with html/template: escaped, same origin.
  source.addEventListener("live", (e) => {
    const next = document.createElement("template");
    next.innerHTML = e.data;
    morph(block, next.content);
    block.dataset.updated = String(Date.now());
  });
  source.addEventListener("rows", (e) => {
    patchRows(block, e.data);
    block.dataset.updated = String(Date.now());
  });
  window.addEventListener("pagehide", () => source.close());
});
