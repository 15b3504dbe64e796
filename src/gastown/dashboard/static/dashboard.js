// gt dashboard: live updates over server-sent events (plain EventSource, no library).
// On every event the page re-asks its own URL with "X-Fragment: 1" and swaps in the
// live part; the feed page adds the event as a row instead.  EventSource reconnects by
// itself and sends Last-Event-ID, so nothing is missed across a reconnect.
(function () {
  "use strict";
  var body = document.body;
  var live = document.getElementById("live");
  var state = document.getElementById("live-state");
  var timer = null;
  var busy = false, again = false;

  function setState(text, cls) {
    if (state) { state.textContent = text; state.className = "live-state " + cls; }
  }

  function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.pathname + location.search, {headers: {"X-Fragment": "1"}, cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && live) {
          live.innerHTML = html;
          body.dataset.refreshed = String(Date.now());
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() { if (!timer) { timer = setTimeout(refresh, 100); } }

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
    return td;
  }

  function addRow(ev) {
    var table = document.querySelector("#feed table tbody");
    if (!table || table.querySelector('tr[data-seq="' + ev.seq + '"]')) { return; }
    var row = document.createElement("tr");
    row.dataset.seq = ev.seq;
    cell(row, String(ev.seq), "seq");
    cell(row, String(ev.ts || "").slice(11, 19), "ts");
    cell(row, ev.type, "type");
    cell(row, ev.actor || "");
    var b = cell(row, "");
    if (ev.bead_id) {
      var a = document.createElement("a");
      a.href = "/beads/" + encodeURIComponent(ev.bead_id);
      a.textContent = ev.bead_id;
      b.appendChild(a);
    }
    var bits = [], p = ev.payload || {};
    ["title", "agent", "status", "reason", "to", "branch", "detail"].forEach(function (k) {
      if (p[k]) { bits.push(k + "=" + String(p[k]).slice(0, 80)); }
    });
    cell(row, bits.join(" "), "payload");
    table.insertBefore(row, table.firstChild);
    while (table.rows.length > 500) { table.deleteRow(-1); }
  }

  function connect() {
    var after = body.dataset.lastSeq || "";
    var es = new EventSource("/api/stream" + (after ? "?after=" + encodeURIComponent(after) : ""));
    es.onopen = function () { setState("live", "is-ok"); };
    es.onerror = function () { setState("reconnecting…", "is-warn"); };
    es.onmessage = function (msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      body.dataset.lastSeq = String(ev.seq);
      if (document.getElementById("feed")) { addRow(ev); } else { schedule(); }
    };
  }

  function post(url, data) {
    return fetch(url, {method: "POST", credentials: "same-origin",
                       headers: {"Content-Type": "application/json"},
                       body: JSON.stringify(data || {})})
      .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, body: j}; }); });
  }

  document.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest("button[data-action]") : null;
    if (!btn) { return; }
    var box = btn.closest("[data-bead]");
    var input = box.querySelector("input[name=text]");
    var data = btn.dataset.action === "comment" ? {text: input ? input.value : ""} : {};
    post("/api/beads/" + encodeURIComponent(box.dataset.bead) + "/" + btn.dataset.action, data)
      .then(function (res) {
        var out = box.querySelector(".result");
        if (out) { out.textContent = res.ok ? "done" : (res.body.error || "refused"); }
      });
  });

  document.addEventListener("submit", function (e) {
    if (e.target.id !== "login") { return; }
    e.preventDefault();
    post("/api/login", {token: e.target.token.value}).then(function (res) {
      if (res.ok) { location.reload(); } else { e.target.token.value = ""; setState(res.body.error, "is-warn"); }
    });
  });

  connect();
  // what is no event (an agent's last line of output) is looked at again every data-poll
  // seconds: 2 on the overview, 30 elsewhere (a safety net should a stream stall unnoticed)
  var poll = live ? parseFloat(live.dataset.poll || "30") : 30;
  setInterval(schedule, Math.max(1, poll) * 1000);
})();
