// The job page: one EventSource on the job's event stream (replayed from the start).
// Each message carries the job's view (vpsweb.view.JobView, built by the server):
// the page draws it and decides nothing (a candidate's status and its words come
// from the server). The bar only moves forward and is redrawn only when its
// whole-number percentage changes. window.vpsweb counts events and renders (tests).
// A call waiting for its provider's quota is one more status drawn as the server says
// (its label and message, class waiting-for-quota): the job is still running.
(function () {
  "use strict";
  var root = document.getElementById("job");
  if (!root) { return; }
  var jobId = root.dataset.job;
  var bar = document.getElementById("bar");
  var barText = document.getElementById("bar-text");
  var statusEl = document.getElementById("status");
  var stats = window.vpsweb = { events: 0, renders: 0, values: [], ended: false };
  var shown = Number(bar.getAttribute("aria-valuenow")) || 0;
  bar.firstElementChild.style.width = shown + "%";  // here, not inline: the CSP allows no inline style
  // Every POST carries the page's CSRF token (see vpsweb.web.guard).
  var token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  function post(url, body) {
    return fetch(url, { method: "POST", body: body, headers: { "X-CSRF-Token": token } });
  }

  function refusal(r) {  // a refused POST says why in plain text ("reload the page")
    return r.text().then(function (text) { return { ok: false, error: text }; });
  }

  function setBar(percent) {
    var value = Math.floor(Math.min(100, Math.max(0, percent)));
    if (value <= shown) { return false; }  // never backwards, no redraw without change
    shown = value;
    bar.setAttribute("aria-valuenow", String(value));
    bar.firstElementChild.style.width = value + "%";
    barText.textContent = value + "%";
    stats.values.push(value);
    return true;
  }

  // Set a property only when it differs: a render counts only real changes.
  function put(el, prop, value) {
    if (!el || el[prop] === value) { return false; }
    el[prop] = value;
    return true;
  }

  function drawStages(rows) {
    var changed = false;
    rows.forEach(function (s) {
      var li = document.querySelector('#stages li[data-stage="' + CSS.escape(s.name) + '"]');
      if (!li) { return; }
      changed = put(li, "className", "stage " + s.css) || changed;
      changed = put(li.querySelector(".state"), "textContent", s.label) || changed;
      changed = put(li.querySelector(".msg"), "textContent", s.message) || changed;
    });
    return changed;
  }

  function drawCandidates(rows) {
    var changed = false;
    rows.forEach(function (c) {
      var tr = document.querySelector('#candidates tr[data-index="' + c.index + '"]');
      if (!tr) { return; }
      changed = put(tr, "className", "cand " + c.css) || changed;
      changed = put(tr.querySelector(".state"), "textContent", c.label) || changed;
      changed = put(tr.querySelector(".time"), "textContent", c.time) || changed;
    });
    return changed;
  }

  // Warnings (a stage fell back: kept to the end) and notices (no worker: come and go).
  function drawWarnings(warnings, notices) {
    var list = document.getElementById("warnings");
    var texts = warnings.concat(notices);
    var now = Array.prototype.map.call(list.children, function (li) { return li.textContent; });
    if (now.join("\n") === texts.join("\n")) { return false; }
    list.textContent = "";
    texts.forEach(function (text, i) {
      var li = document.createElement("li");
      li.textContent = text;
      if (i >= warnings.length) { li.className = "no-worker"; }
      list.appendChild(li);
    });
    list.hidden = texts.length === 0;
    return true;
  }

  // Flags (a text judged or delivered with a glossary miss): kept to the end.
  function drawFlags(flags) {
    var list = document.getElementById("flags");
    var texts = flags.map(function (f) { return "\u2691 " + f; });
    var now = Array.prototype.map.call(list.children, function (li) { return li.textContent; });
    if (now.join("\n") === texts.join("\n")) { return false; }
    list.textContent = "";
    texts.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
    list.hidden = texts.length === 0;
    return true;
  }

  // The server's view of the job (vpsweb.view.JobView) says what every row shows;
  // the page only draws it.
  function draw(view) {
    var changed = setBar(view.percent);
    changed = put(statusEl, "className", "status-" + view.status) || changed;
    changed = put(statusEl, "textContent", view.status_text) || changed;
    changed = drawStages(view.stages) || changed;
    changed = drawCandidates(view.candidates) || changed;
    changed = drawWarnings(view.warnings, view.notices) || changed;
    changed = drawFlags(view.flags || []) || changed;
    return changed;
  }

  function finish(view) {
    stats.ended = true;
    document.getElementById("cancel").hidden = true;
    if (view.result_ready) {
      fetch("/jobs/" + jobId + "/result").then(function (r) { return r.text(); })
        .then(function (html) { document.getElementById("result").innerHTML = html; });
    }
  }

  function render(e) {
    stats.events += 1;
    if (draw(e.view)) { stats.renders += 1; }
    if (e.event === "waiting_for_answer" || e.event === "answer_received") { loadPrompts(); }
    if (e.view.ended_job) { finish(e.view); }
  }

  function loadPrompts() {
    fetch("/jobs/" + jobId + "/pending").then(function (r) { return r.json(); }).then(function (list) {
      var box = document.getElementById("prompts");
      document.getElementById("manual").hidden = list.length === 0;
      var keep = {};
      list.forEach(function (p) {
        keep[p.key] = true;
        if (document.getElementById("prompt-" + p.key)) { return; }
        box.appendChild(promptForm(p));
      });
      Array.prototype.slice.call(box.children).forEach(function (el) {
        if (!keep[el.dataset.key]) { box.removeChild(el); }
      });
    });
  }

  function promptForm(p) {
    var el = document.createElement("article");
    el.id = "prompt-" + p.key; el.dataset.key = p.key; el.className = "prompt";
    var h = document.createElement("h3"); h.textContent = p.display_name + " — " + p.key;
    var pre = document.createElement("pre"); pre.textContent = p.text;
    var copy = document.createElement("button"); copy.type = "button"; copy.textContent = "Copy prompt";
    copy.onclick = function () { if (navigator.clipboard) { navigator.clipboard.writeText(p.text); } };
    var label = document.createElement("label"); label.textContent = "Answer";
    label.htmlFor = "answer-" + p.key;
    var area = document.createElement("textarea"); area.id = "answer-" + p.key; area.rows = 8;
    var err = document.createElement("p"); err.className = "error"; err.setAttribute("role", "alert");
    var send = document.createElement("button"); send.type = "button"; send.textContent = "Send answer";
    send.onclick = function () {
      var body = new URLSearchParams({ key: p.key, text: area.value });
      post("/jobs/" + jobId + "/answer", body)
        .then(function (r) { return r.status === 403 ? refusal(r) : r.json(); })
        .then(function (res) { err.textContent = res.ok ? "" : res.error; if (res.ok) { loadPrompts(); } });
    };
    [h, copy, pre, label, area, err, send].forEach(function (c) { el.appendChild(c); });
    return el;
  }

  document.getElementById("cancel").onclick = function () {
    post("/jobs/" + jobId + "/cancel").then(function (r) {
      if (r.status === 403) { refusal(r).then(function (res) { statusEl.textContent = res.error; }); }
    });
  };

  var source;
  function follow() {
    source = new EventSource("/jobs/" + jobId + "/events");
    source.onmessage = function (msg) {
      var e = JSON.parse(msg.data);
      render(e);
      if (e.view.ended_job) { source.close(); }
    };
    source.addEventListener("gone", function (msg) {
      statusEl.textContent = msg.data; source.close();
    });
    // A dropped stream reconnects by itself, but one refused with 503 (the server
    // is at its stream limit, Retry-After: 5) is closed for good: ask again later.
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED && !stats.ended) { setTimeout(follow, 5000); }
    };
  }
  follow();
})();
