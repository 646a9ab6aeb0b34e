// pyqueue dashboard: confirmation prompts and the live overview (counts and the
// throughput chart). Text from the server is only ever set with textContent,
// never parsed as HTML.
"use strict";

(function () {
  const POLL_MS = 3000;

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // The theme's colours (light or dark, as the browser prefers), from the stylesheet.
  function themed(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function drawChart(canvas, series) {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, pad = 28;
    ctx.clearRect(0, 0, w, h);
    const all = series.completed.concat(series.failed);
    // A multiple of 4, so the four gridlines get whole-number labels.
    const top = Math.max(4, Math.ceil(Math.max(...all) / 4) * 4);
    const label = themed("--label", "#666");
    ctx.strokeStyle = themed("--grid", "#d0d4da");
    ctx.fillStyle = label;
    ctx.font = "11px sans-serif";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = h - pad - ((h - 2 * pad) * i) / 4;
      ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w - 6, y); ctx.stroke();
      ctx.fillText(String((top * i) / 4), 2, y + 4);
    }
    const n = series.completed.length;
    const x = function (i) { return pad + ((w - pad - 6) * i) / Math.max(1, n - 1); };
    const y = function (v) { return h - pad - ((h - 2 * pad) * v) / top; };
    [["completed", "#2f9e44"], ["failed", "#e03131"]].forEach(function (pair) {
      const points = series[pair[0]];
      ctx.strokeStyle = pair[1];
      ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach(function (v, i) { if (i === 0) ctx.moveTo(x(i), y(v)); else ctx.lineTo(x(i), y(v)); });
      ctx.stroke();
    });
    ctx.fillStyle = label;
    ctx.fillText("-60 min", pad, h - 8);
    ctx.fillText("now", w - 30, h - 8);
  }

  function updateRows(queues) {
    const rows = document.querySelectorAll("tr[data-queue]");
    rows.forEach(function (row) {
      const q = queues.find(function (item) { return item.name === row.dataset.queue; });
      if (!q) return;
      row.querySelectorAll("[data-state]").forEach(function (cell) {
        cell.textContent = String(q.counts[cell.dataset.state]);
      });
      const paused = row.querySelector("[data-field=paused]");
      if (paused) paused.textContent = q.paused ? "yes" : "no";
      const workers = row.querySelector("[data-field=workers]");
      if (workers) workers.textContent = String(q.workers);
      const flags = row.querySelector("[data-field=flags]");
      if (flags) renderFlags(flags, q);
    });
    if (queues.length === 1) {
      const tabs = document.querySelectorAll("#state-tabs a[data-state] .count");
      tabs.forEach(function (span) {
        span.textContent = String(queues[0].counts[span.parentElement.dataset.state]);
      });
      const workers = document.getElementById("workers");
      if (workers) workers.textContent = String(queues[0].workers);
      const findings = document.getElementById("findings");
      if (findings) renderFindings(findings, queues[0].findings);
      const list = document.getElementById("workers-list");
      if (list) renderWorkers(list.querySelector("tbody"), queues[0].workerList, queues[0].heldByOthers);
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderFlags(cell, q) {
    cell.replaceChildren();
    q.findings.forEach(function (f) {
      const flag = el("span", "flag sev-" + f.severity, f.code.replace(/-/g, " "));
      flag.dataset.flag = f.code;
      flag.title = f.summary;
      cell.append(flag, " ");
    });
    if (!q.findings.length && !q.error) cell.append(el("span", "muted", "ok"));
  }

  function renderFindings(box, list) {
    box.replaceChildren();
    if (!list.length) {
      const ok = el("p", "ok", "Nothing holds this queue back.");
      ok.id = "all-clear";
      box.append(ok);
      return;
    }
    const ul = el("ul", "findings");
    list.forEach(function (f) {
      const li = el("li", "finding sev-" + f.severity);
      li.dataset.flag = f.code;
      li.append(el("strong", "summary", f.summary), el("div", "detail", f.detail));
      if (f.fix) {
        const fix = el("div", "fix", "Fix: ");
        fix.append(el("code", "", f.fix));
        li.append(fix);
      }
      ul.append(li);
    });
    box.append(ul);
  }

  function ago(ms) {
    if (!ms) return "—";
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
  }

  function renderWorkers(body, workers, held) {
    if (!body) return;
    body.replaceChildren();
    if (!workers.length) {
      const row = el("tr", "none");
      const cell = el("td", "empty", "No live worker.");
      cell.colSpan = 7;
      cell.id = "no-workers";
      row.append(cell);
      body.append(row);
      return;
    }
    const nodes = workers.filter(function (w) { return w.kind === "node"; }).length;
    workers.forEach(function (w) {
      const row = el("tr");
      row.dataset.worker = w.name;
      row.dataset.kind = w.kind;
      const name = el("td", "", w.name);
      if (w.id) name.append(" ", el("span", "muted", "(" + w.id.slice(0, 8) + ")"));
      const beat = w.lastHeartbeat ? ago(w.lastHeartbeat) + " ago"
        : (w.idleSeconds !== null ? "idle " + w.idleSeconds + " s" : "—");
      const up = w.startedOn ? ago(w.startedOn) : (w.ageSeconds !== null ? w.ageSeconds + " s" : "—");
      row.append(el("td", "", w.kind), name, el("td", "", w.version || "—"),
        el("td", "num", w.concurrency === null ? "—" : String(w.concurrency)),
        el("td", "ids", w.kind === "pyqueue" ? (w.jobs.join(", ") || "—")
          : (nodes === 1 && held.length ? held.join(", ") : "—")),
        el("td", "time", beat), el("td", "time", up));
      body.append(row);
    });
  }

  function poll(canvas) {
    fetch(canvas.dataset.feed, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body || !body.throughput) return;
        drawChart(canvas, body.throughput);
        canvas.dataset.updated = String(Date.now());
        canvas.dataset.completedTotal = String(body.throughput.completed.reduce(function (a, b) { return a + b; }, 0));
        const source = document.getElementById("throughput-source");
        if (source) source.textContent = "(from " + body.throughput.source + ")";
        updateRows(body.queues);
      })
      .catch(function () { /* the next poll tries again */ })
      .finally(function () { setTimeout(function () { poll(canvas); }, POLL_MS); });
  }

  // A job page whose job is still to finish reloads itself once its state changes,
  // so a retried job is seen completing without touching the page.
  const UNFINISHED = ["waiting", "active", "delayed", "paused", "stuck"];

  function watchJob(badge) {
    if (UNFINISHED.indexOf(badge.dataset.state) < 0) return;
    fetch(badge.dataset.feed, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body.state !== badge.dataset.state) {
          window.location.replace(window.location.href);
          return;
        }
        setTimeout(function () { watchJob(badge); }, 1000);
      })
      .catch(function () { setTimeout(function () { watchJob(badge); }, POLL_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const canvas = document.getElementById("throughput");
    if (canvas && canvas.dataset.feed) poll(canvas);
    const badge = document.getElementById("job-state");
    if (badge && badge.dataset.feed) watchJob(badge);
  });
})();
