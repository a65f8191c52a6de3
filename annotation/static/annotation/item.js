// The labelling page: concept search, keyboard shortcuts, time on item, draft autosave, leave warning.
"use strict";
(function () {
  var form = document.getElementById("label-form");
  if (!form) { return; }
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
  var editable = !form.querySelector("fieldset[disabled]");

  // Time on the item: seconds while the page is visible, posted with the label.
  var seconds = 0;
  setInterval(function () { if (document.visibilityState === "visible") { seconds += 1; } }, 1000);

  // -- concept search: exact code or name first, then prefixes, then words inside, then synonyms --------
  function words(text) { return text.toLowerCase().split(/[\s\-\/(),.]+/).filter(Boolean); }
  options.forEach(function (o, i) {
    o.conceptOrder = i;
    o.conceptCode = (o.getAttribute("data-code") || "").toLowerCase();
    o.conceptName = (o.getAttribute("data-name") || "").toLowerCase();
    o.conceptSynonyms = (o.getAttribute("data-synonyms") || "").toLowerCase().split("|").filter(Boolean);
  });
  function rank(o, query) {
    // Lower is better; null: no match.
    var code = o.conceptCode, name = o.conceptName, synonyms = o.conceptSynonyms, terms = words(query);
    if (code === query || name === query) { return 0; }
    if (code.indexOf(query) === 0 || name.indexOf(query) === 0) { return 1; }
    var nameWords = words(name).concat([code]);
    var allPrefix = terms.every(function (t) { return nameWords.some(function (w) { return w.indexOf(t) === 0; }); });
    if (allPrefix) { return 2; }
    var own = code + " " + name;
    if (terms.every(function (t) { return own.indexOf(t) !== -1; })) { return 3; }
    if (synonyms.indexOf(query) !== -1) { return 4; }
    if (synonyms.some(function (s) { return s.indexOf(query) === 0; })) { return 5; }
    var all = own + " " + synonyms.join(" ");
    if (terms.every(function (t) { return all.indexOf(t) !== -1; })) { return 6; }
    return null;
  }
  function visibleOptions() {
    return Array.prototype.slice.call(list.querySelectorAll("label.concept")).filter(function (o) { return !o.hidden; });
  }
  function markChosen() { options.forEach(function (o) { o.classList.toggle("chosen", o.querySelector("input").checked); }); }
  list.addEventListener("change", markChosen);

  function filterConcepts() {
    var query = search.value.trim().toLowerCase();
    var ranked = options.map(function (o) { return { option: o, rank: query ? rank(o, query) : 0 }; });
    ranked.forEach(function (r) { r.option.hidden = r.rank === null; });
    // Best matches first while searching; the tree order when the search is empty.
    ranked.sort(function (a, b) {
      return query ? ((a.rank === null ? 99 : a.rank) - (b.rank === null ? 99 : b.rank)) || (a.option.conceptOrder - b.option.conceptOrder)
                   : a.option.conceptOrder - b.option.conceptOrder;
    });
    ranked.forEach(function (r) { list.insertBefore(r.option, empty); });
    list.classList.toggle("searching", !!query);
    empty.hidden = visibleOptions().length > 0;
  }
  search.addEventListener("input", filterConcepts);
  search.addEventListener("keydown", function (e) {
    var shown = visibleOptions();
    if (e.key === "Enter") {
      e.preventDefault();
      if (shown.length) { shown[0].querySelector("input").checked = true; markChosen(); freeText.focus(); saveDraft(); }
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

  // -- draft autosave: kept in this browser only, restored on return, cleared on save ----------------------
  var draftKey = form.getAttribute("data-draft-key");
  var notice = document.getElementById("draft-notice");
  function values() {
    var concept = form.querySelector("input[name=concept_code]:checked");
    var confidence = form.querySelector("input[name=confidence]:checked");
    return { concept: concept ? concept.value : "", free_text: freeText.value,
             confidence: confidence ? confidence.value : "", rationale: rationale.value };
  }
  function same(a, b) {
    return a.concept === b.concept && a.free_text === b.free_text && a.confidence === b.confidence && a.rationale === b.rationale;
  }
  var saved = values();  // what the server has (or the form as posted)
  var submitting = false;
  function dirty() { return editable && !submitting && !same(values(), saved); }
  function storage() { try { return window.localStorage; } catch (error) { return null; } }
  function saveDraft() {
    var store = storage();
    if (!store || !draftKey || !editable) { return; }
    var now = values();
    if (same(now, saved)) { store.removeItem(draftKey); return; }
    now.saved_at = new Date().toISOString();
    store.setItem(draftKey, JSON.stringify(now));
  }
  function apply(draft) {
    options.forEach(function (o) { var input = o.querySelector("input"); input.checked = input.value === draft.concept; });
    markChosen();
    freeText.value = draft.free_text || "";
    form.querySelectorAll("input[name=confidence]").forEach(function (r) { r.checked = r.value === draft.confidence; });
    rationale.value = draft.rationale || "";
  }
  (function restore() {
    var store = storage();
    if (!store || !draftKey || !editable || form.getAttribute("data-bound") === "true") { return; }
    var raw = store.getItem(draftKey);
    if (!raw) { return; }
    var draft;
    try { draft = JSON.parse(raw); } catch (error) { store.removeItem(draftKey); return; }
    if (same(draft, saved)) { store.removeItem(draftKey); return; }
    apply(draft);
    if (notice) {
      notice.hidden = false;
      document.getElementById("discard-draft").addEventListener("click", function () {
        store.removeItem(draftKey); apply(saved); updateCount(); notice.hidden = true;
      });
    }
  })();
  updateCount();
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);
  form.addEventListener("submit", function () {
    document.getElementById("id_time_spent_seconds").value = seconds;
    submitting = true;
    // A refused submission re-renders the form with what was posted, so nothing is lost by clearing here.
    var store = storage();
    if (store && draftKey) { store.removeItem(draftKey); }
  });

  // -- leave-page warning --------------------------------------------------------------------------------
  var leaving = false;
  window.addEventListener("beforeunload", function (e) {
    if (leaving || !dirty()) { return; }
    e.preventDefault();
    e.returnValue = "";
  });
  function leaveTo(url) {
    if (dirty() && !window.confirm("This label is not saved. Your draft stays in this browser; leave this item anyway?")) {
      return;
    }
    leaving = true;
    window.location.href = url;
  }
  [next, previous].forEach(function (link) {
    if (!link) { return; }
    link.addEventListener("click", function (e) { e.preventDefault(); leaveTo(link.href); });
  });

  // -- guidelines: open at the top, with the heading focused rather than the close button -----------------
  function openGuidelines() {
    if (guidelines.open) { return; }
    guidelines.showModal();
    var heading = guidelines.querySelector("h2");
    if (heading) { heading.focus({ preventScroll: true }); }
    guidelines.scrollTop = 0;
  }
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
    else if ((e.key === "j" || e.key === "n") && next) { leaveTo(next.href); }
    else if ((e.key === "k" || e.key === "p") && previous) { leaveTo(previous.href); }
    else if (/^[1-5]$/.test(e.key)) {
      var radio = form.querySelector('input[name="confidence"][value="' + e.key + '"]');
      if (radio && !radio.disabled) { radio.checked = true; saveDraft(); }
    }
    else if (e.key === "r") { rationale.focus(); }
    else if (e.key === "f") { freeText.focus(); }
    else if (e.key === "g") { openGuidelines(); }
    else if (e.key === "?") { var d = document.getElementById("shortcuts"); d.open = !d.open; }
    else { handled = false; }
    if (handled) { e.preventDefault(); }
  });
})();
