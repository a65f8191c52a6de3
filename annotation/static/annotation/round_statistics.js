// The round dashboard while its statistics job runs: poll the job's state, show its progress and message,
// and reload the page (which then shows the results) when the job ends.
(function () {
  "use strict";
  var box = document.getElementById("stats-status");
  if (!box || box.dataset.status === "failed") { return; }
  var percent = document.getElementById("stats-percent");
  var bar = document.getElementById("stats-progress");
  var message = document.getElementById("stats-message");
  function poll() {
    fetch(box.dataset.statusUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state) { window.setTimeout(poll, 5000); return; }
        if (!state.pending) { window.location.reload(); return; }
        if (percent) { percent.textContent = Math.round(state.progress * 100) + "%"; }
        if (bar) { bar.value = state.progress; }
        if (message) { message.textContent = state.message; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
