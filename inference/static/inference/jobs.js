// Live progress for every element with data-job-id: polls the JSON endpoint until all jobs finish.
(function () {
  "use strict";
  var script = document.getElementById("jobs-script");
  if (!script) { return; }
  var url = script.getAttribute("data-progress-url");
  var FINISHED = { succeeded: true, failed: true, cancelled: true };

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-job-id]")); }

  function setText(row, selector, text) {
    var el = row.querySelector(selector);
    if (el) { el.textContent = text; }
  }

  function apply(job) {
    rows().forEach(function (row) {
      if (row.getAttribute("data-job-id") !== String(job.id)) { return; }
      var bar = row.querySelector(".job-progress");
      if (bar) { bar.value = job.progress; }
      setText(row, ".job-message", job.message);
      setText(row, ".job-attempts", String(job.attempts));
      setText(row, ".job-seconds", job.device_seconds.toFixed(1) + " s");
      setText(row, ".job-energy", job.energy_kwh.toFixed(6));
      setText(row, ".job-co2", job.co2_kg.toFixed(6));
      setText(row, ".job-method", job.energy_method_label);
      setText(row, ".job-cost", job.cost.toFixed(4));
      var status = row.querySelector(".job-status");
      if (status) { status.textContent = job.status; status.className = "job-status status-" + job.status; }
      row.setAttribute("data-status", job.status);
    });
    var log = document.getElementById("job-log");
    var detail = document.getElementById("job");
    if (log && detail && detail.getAttribute("data-job-id") === String(job.id)) { log.textContent = job.log_tail; }
    if (FINISHED[job.status]) {
      var cancel = document.getElementById("cancel-form");
      if (cancel && detail && detail.getAttribute("data-job-id") === String(job.id)) { cancel.remove(); }
    }
  }

  function poll() {
    var pending = rows().filter(function (row) {
      var status = row.getAttribute("data-status") || (row.querySelector(".job-status") || {}).textContent;
      return !FINISHED[(status || "").trim()];
    }).map(function (row) { return row.getAttribute("data-job-id"); });
    if (pending.length === 0) { return; }
    fetch(url + "?ids=" + pending.join(","), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { jobs: [] }; })
      .then(function (data) { data.jobs.forEach(apply); })
      .catch(function () { /* a missed poll is retried on the next tick */ })
      .then(function () { window.setTimeout(poll, 1500); });
  }

  poll();
}());
