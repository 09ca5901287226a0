// The job page: one EventSource on the job's event stream (replayed from the start),
// one render per event. The bar only moves forward and is redrawn only when its
// whole-number percentage changes. window.vpsweb counts events and renders (tests).
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

  function stageRow(name) {
    return document.querySelector('#stages li[data-stage="' + CSS.escape(name) + '"]');
  }

  // A stage that fell back (no judge's verdict): said as a warning, kept to the end.
  function addWarning(text) {
    var list = document.getElementById("warnings");
    if (!list) { return; }
    var seen = Array.prototype.some.call(list.children, function (li) { return li.textContent === text; });
    if (seen) { return; }
    var li = document.createElement("li");
    li.textContent = text;
    list.appendChild(li);
    list.hidden = false;
  }

  // The follower's own warning: no live worker consumes a queue the job needs. Shown
  // while true, withdrawn (status "resolved") when a worker comes.
  function followerWarning(e) {
    var list = document.getElementById("warnings");
    if (!list) { return false; }
    var existing = Array.prototype.filter.call(list.children, function (li) {
      return li.dataset.follower === "1" && li.textContent === e.message;
    });
    if (e.status === "resolved") {
      existing.forEach(function (li) { list.removeChild(li); });
    } else if (existing.length === 0) {
      var li = document.createElement("li");
      li.dataset.follower = "1";
      li.className = "no-worker";
      li.textContent = e.message;
      list.appendChild(li);
    }
    list.hidden = list.children.length === 0;
    return true;
  }

  function setStage(e) {
    var row = stageRow(e.stage);
    if (!row) { return false; }
    var state = { stage_started: "running", stage_completed: "done", stage_failed: "failed",
                  waiting_for_answer: "waiting for you" }[e.event];
    if (!state) { return false; }
    row.className = "stage " + state.replace(/ /g, "-");
    row.querySelector(".state").textContent = state;
    row.querySelector(".msg").textContent = e.message || e.error || "";
    if (e.warning) { addWarning(e.warning); }
    if (state === "running" || state === "waiting for you") {
      statusEl.className = "status-running";
      statusEl.textContent = (state === "running" ? "Running: " : "Waiting for your answer: ") + e.stage;
    }
    return true;
  }

  function setCandidate(e) {
    var row = document.querySelector('#candidates tr[data-index="' + e.index + '"]');
    if (!row) { return false; }
    var ok = e.status !== "failed";
    row.className = "cand " + (ok ? "done" : "failed");
    row.querySelector(".state").textContent = ok ? "✓ succeeded" : "✗ " + (e.error || "failed");
    row.querySelector(".time").textContent = e.duration_s ? Number(e.duration_s).toFixed(1) + " s" : "";
    return true;
  }

  function finish(e) {
    stats.ended = true;
    var list = document.getElementById("warnings");  // no worker is needed any more
    Array.prototype.slice.call(list ? list.children : []).forEach(function (li) {
      if (li.dataset.follower === "1") { list.removeChild(li); }
    });
    if (list) { list.hidden = list.children.length === 0; }
    document.getElementById("cancel").hidden = true;
    statusEl.className = "status-" + e.status;
    statusEl.textContent = "Job " + e.status + (e.error ? ": " + e.error : (e.message ? " — " + e.message : ""));
    if (e.status === "succeeded") {
      fetch("/jobs/" + jobId + "/result").then(function (r) { return r.text(); })
        .then(function (html) { document.getElementById("result").innerHTML = html; });
    }
    return true;
  }

  function render(e) {
    stats.events += 1;
    var changed = false;
    if (e.progress_percent !== undefined) { changed = setBar(e.progress_percent) || changed; }
    if (e.event === "candidate_finished") { changed = setCandidate(e) || changed; }
    else if (e.event === "job_finished") { changed = finish(e) || changed; }
    else if (e.event === "warning") { changed = followerWarning(e) || changed; }
    else if (e.event === "waiting_for_answer") { changed = setStage(e) || changed; loadPrompts(); }
    else if (e.event === "answer_received") { loadPrompts(); }
    else if (e.stage) { changed = setStage(e) || changed; }
    if (changed) { stats.renders += 1; }
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
      if (e.event === "job_finished") { source.close(); }
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
