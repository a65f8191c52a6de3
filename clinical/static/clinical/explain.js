// Concept filter of the explain page: shade only the tokens of the chosen concept.
document.querySelectorAll(".concept-filter button").forEach(function (button) {
  button.addEventListener("click", function () {
    var code = button.dataset.code;
    document.querySelectorAll(".concept-filter button").forEach(function (b) { b.classList.toggle("active", b === button); });
    document.querySelectorAll("#note .tok").forEach(function (token) {
      var shade = token.dataset.a;
      if (code) {
        shade = "0";
        token.dataset.codes.split(" ").forEach(function (pair) {
          var parts = pair.split(":");
          if (parts[0] === code) { shade = parts[1]; }
        });
      }
      token.style.setProperty("--a", shade);
    });
    document.querySelectorAll("#concepts li.concept").forEach(function (item) {
      item.hidden = Boolean(code) && item.dataset.code !== code;
    });
  });
});
