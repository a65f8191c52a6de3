// A steering run's page while a worker runs it: poll the run's JSON, move the progress bar, and reload
// the page once the run has finished (the server renders the result or the error).
(function () {
  "use strict";
  var card = document.getElementById("steering-job");
  if (!card) { return; }
  var url = card.getAttribute("data-status-url");
  var FINISHED = { succeeded: true, failed: true, cancelled: true };

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (!job) { return; }
        if (FINISHED[job.status]) { window.location.reload(); return true; }
        var bar = card.querySelector(".job-progress");
        if (bar) { bar.value = job.progress; }
        var status = card.querySelector(".job-status");
        if (status) { status.textContent = job.status; status.className = "job-status status-" + job.status; }
        var message = card.querySelector(".job-message");
        if (message) { message.textContent = job.message; }
      })
      .catch(function () { /* a missed poll is retried on the next tick */ })
      .then(function (done) { if (!done) { window.setTimeout(poll, 1000); } });
  }

  window.setTimeout(poll, 500);
}());
