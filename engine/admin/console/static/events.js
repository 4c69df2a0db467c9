// Follows the recorded events on the Events page: each event the page's
// filters select is added at the top of the table as it is stored. Every
// value is set with textContent: nothing a caller sent becomes markup.
"use strict";
(function () {
  const table = document.getElementById("events");
  const follow = document.getElementById("follow");
  if (!table || !follow || !table.dataset.live || !window.EventSource) {
    if (follow) follow.parentElement.hidden = true;
    return;
  }
  const body = table.tBodies[0];
  const maxRows = 500;
  let source = null;

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function when(s) {
    const d = new Date(s);
    return isNaN(d) ? "" : d.toISOString().replace("T", " ");
  }

  function add(e) {
    const empty = body.querySelector("td[colspan]");
    if (empty) empty.parentElement.remove();
    const row = body.insertRow(0);
    const id = row.insertCell();
    const a = document.createElement("a");
    a.className = "event-link";
    a.href = "/ui/events/" + encodeURIComponent(String(e.id));
    a.textContent = String(e.id);
    id.appendChild(a);
    cell(row, when(e.received));
    cell(row, e.command || "");
    cell(row, (e.from || "") + " \u2192 " + (e.to || ""));
    cell(row, (e.matched || []).join(", "));
    const d = e.decision;
    cell(row, d ? (d.ResultCode ? "deny " + d.ResultCode : "allow") : (e.store_error ? "not stored" : ""), d && d.ResultCode ? "bad" : "");
    const jobs = row.insertCell();
    for (const j of e.jobs || []) {
      const span = document.createElement("span");
      span.className = "tag";
      span.textContent = j.action;
      jobs.appendChild(span);
      jobs.appendChild(document.createTextNode(" "));
    }
    for (const s of e.once_skipped || []) {
      const span = document.createElement("span");
      span.className = "tag once";
      span.textContent = s.rule + ": skipped by once";
      jobs.appendChild(span);
    }
    while (body.rows.length > maxRows) body.deleteRow(body.rows.length - 1);
  }

  function start() {
    source = new EventSource(table.dataset.live);
    source.addEventListener("event", function (m) {
      try { add(JSON.parse(m.data)); } catch (_) { /* not an event */ }
    });
  }

  function stop() {
    if (source) source.close();
    source = null;
  }

  follow.addEventListener("change", function () { follow.checked ? start() : stop(); });
  if (follow.checked) start();
})();
