// The batch pages. The form: its button is disabled once sent (a double click makes
// one batch, not two). The batch page: one EventSource on the batch's stream; each
// message carries what changed (the whole state first): the summary (bar, counts,
// cost, times, said by the server) and the rows that changed. The page draws them and
// decides nothing; the bar only moves forward. window.vpsweb counts messages (tests).
(function () {
  "use strict";
  var form = document.getElementById("batch-form");
  if (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      setTimeout(function () { button.disabled = true; button.textContent = "Checking the collection…"; }, 0);
    });
  }
  var root = document.getElementById("batch");
  if (!root) { return; }
  var batchId = root.dataset.batch;
  var bar = document.getElementById("bar");
  var barText = document.getElementById("bar-text");
  var statusEl = document.getElementById("status");
  var stats = window.vpsweb = { messages: 0, values: [], ended: false };
  var shown = Number(bar.getAttribute("aria-valuenow")) || 0;
  bar.firstElementChild.style.width = shown + "%";  // here, not inline: the CSP allows no inline style

  function setBar(percent) {
    var value = Math.floor(Math.min(100, Math.max(0, percent)));
    if (value <= shown) { return; }  // never backwards
    shown = value;
    bar.setAttribute("aria-valuenow", String(value));
    bar.firstElementChild.style.width = value + "%";
    barText.textContent = value + "%";
    stats.values.push(value);
  }

  function put(el, prop, value) {
    if (el && el[prop] !== value) { el[prop] = value; }
  }

  function drawSummary(s) {
    setBar(s.percent);
    put(statusEl, "textContent", s.status_text);
    Object.keys(s.counts).forEach(function (name) {
      put(document.querySelector('#counts dd[data-count="' + name + '"]'), "textContent", String(s.counts[name]));
    });
    put(document.getElementById("cost"), "textContent", s.cost);
    put(document.getElementById("elapsed"), "textContent", s.elapsed);
    put(document.getElementById("eta"), "textContent", s.eta);
    if (s.ended) {
      stats.ended = true;
      document.getElementById("cancel-form").hidden = true;
    }
  }

  function drawRow(r) {
    var tr = document.querySelector('#poems tr[data-index="' + r.index + '"]');
    if (!tr) { return; }
    put(tr, "className", "poem " + r.css);
    var link = tr.querySelector("a");
    var href = "/jobs/" + r.job_id;
    if (link.getAttribute("href") !== href) { link.setAttribute("href", href); }
    put(tr.querySelector(".state"), "textContent", r.label);
    put(tr.querySelector(".notes"), "textContent", r.notes.length ? "⚑ " + r.notes.join("; ") : "");
    put(tr.querySelector(".cost"), "textContent", r.cost);
  }

  var source;
  function follow() {
    source = new EventSource("/batches/" + batchId + "/events");
    source.onmessage = function (msg) {
      var m = JSON.parse(msg.data);
      stats.messages += 1;
      m.rows.forEach(drawRow);
      if (m.summary) { drawSummary(m.summary); }
      if (stats.ended) { source.close(); }
    };
    // A dropped stream reconnects by itself, but one refused with 503 (the server is
    // at its stream limit, Retry-After: 5) is closed for good: ask again later.
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED && !stats.ended) { setTimeout(follow, 5000); }
    };
  }
  follow();  // an ended batch too: its stream gives each poem's cost, then says "ended"
})();
