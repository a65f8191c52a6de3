// The round dashboard: closing asks first (showing how much is done); deleting a draft asks first.
"use strict";
(function () {
  var form = document.getElementById("close-form");
  var dialog = document.getElementById("close-dialog");
  if (form && dialog) {
    form.addEventListener("submit", function (e) {
      if (document.getElementById("close-confirmed").value === "yes") { return; }
      e.preventDefault();
      dialog.showModal();
      dialog.querySelector("h2").focus();
    });
    document.getElementById("close-cancel").addEventListener("click", function () { dialog.close(); });
    document.getElementById("close-confirm").addEventListener("click", function () {
      document.getElementById("close-confirmed").value = "yes";
      dialog.close();
      form.submit();
    });
  }
  var remove = document.getElementById("delete-round");
  if (remove) {
    remove.addEventListener("click", function (e) {
      if (!window.confirm(remove.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  }
})();
