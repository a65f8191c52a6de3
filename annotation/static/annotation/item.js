// The labelling page: concept search, rationale counter, time on item, keyboard shortcuts.
(function () {
  "use strict";
  var form = document.getElementById("label-form");
  var search = document.getElementById("concept-search");
  var list = document.getElementById("concept-list");
  var options = Array.prototype.slice.call(list.querySelectorAll("label.concept"));
  var empty = document.getElementById("no-concept");
  var freeText = document.getElementById("id_free_text");
  var rationale = document.getElementById("id_rationale");
  var counter = document.getElementById("rationale-count");
  var guidelines = document.getElementById("guidelines");
  var minimum = parseInt(rationale.getAttribute("minlength"), 10);
  var next = document.getElementById("next"), previous = document.getElementById("previous");

  // Time on the item: seconds while the page is visible, posted with the label.
  var seconds = 0;
  setInterval(function () { if (document.visibilityState === "visible") { seconds += 1; } }, 1000);
  form.addEventListener("submit", function () { document.getElementById("id_time_spent_seconds").value = seconds; });

  function visibleOptions() { return options.filter(function (o) { return !o.hidden; }); }
  function markChosen() { options.forEach(function (o) { o.classList.toggle("chosen", o.querySelector("input").checked); }); }
  list.addEventListener("change", markChosen);

  search.addEventListener("input", function () {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    options.forEach(function (o) {
      var text = o.getAttribute("data-search");
      o.hidden = !words.every(function (w) { return text.indexOf(w) !== -1; });
    });
    empty.hidden = visibleOptions().length > 0;
  });
  search.addEventListener("keydown", function (e) {
    var shown = visibleOptions();
    if (e.key === "Enter") {
      e.preventDefault();
      if (shown.length) { shown[0].querySelector("input").checked = true; markChosen(); freeText.focus(); }
    } else if (e.key === "ArrowDown" && shown.length) {
      e.preventDefault();
      shown[0].querySelector("input").focus();
    }
  });

  function updateCount() {
    var missing = minimum - rationale.value.trim().length;
    counter.textContent = missing > 0 ? missing + " more character" + (missing === 1 ? "" : "s") + " needed" : "✓ long enough";
  }
  rationale.addEventListener("input", updateCount);
  updateCount();

  function openGuidelines() { if (!guidelines.open) { guidelines.showModal(); } }
  document.getElementById("open-guidelines").addEventListener("click", openGuidelines);

  function typing(target) {
    return target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && ["text", "search"].indexOf(target.type) !== -1);
  }
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); if (!guidelines.open) { form.requestSubmit(); } return; }
    if (e.key === "Escape" && typing(e.target)) { e.target.blur(); return; }
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey || guidelines.open) { return; }
    var handled = true;
    if (e.key === "/") { search.focus(); search.select(); }
    else if ((e.key === "j" || e.key === "n") && next) { window.location.href = next.href; }
    else if ((e.key === "k" || e.key === "p") && previous) { window.location.href = previous.href; }
    else if (/^[1-5]$/.test(e.key)) {
      var radio = form.querySelector('input[name="confidence"][value="' + e.key + '"]');
      if (radio && !radio.disabled) { radio.checked = true; }
    }
    else if (e.key === "r") { rationale.focus(); }
    else if (e.key === "f") { freeText.focus(); }
    else if (e.key === "g") { openGuidelines(); }
    else if (e.key === "?") { var d = document.getElementById("shortcuts"); d.open = !d.open; }
    else { handled = false; }
    if (handled) { e.preventDefault(); }
  });
})();
