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

  function drawChart(canvas, series) {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, pad = 28;
    ctx.clearRect(0, 0, w, h);
    const all = series.completed.concat(series.failed);
    // A multiple of 4, so the four gridlines get whole-number labels.
    const top = Math.max(4, Math.ceil(Math.max(...all) / 4) * 4);
    ctx.strokeStyle = "#d0d4da";
    ctx.fillStyle = "#666";
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
    ctx.fillStyle = "#666";
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
    });
    if (queues.length === 1) {
      const tabs = document.querySelectorAll("#state-tabs a[data-state] .count");
      tabs.forEach(function (span) {
        span.textContent = String(queues[0].counts[span.parentElement.dataset.state]);
      });
      const workers = document.getElementById("workers");
      if (workers) workers.textContent = String(queues[0].workers);
    }
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
