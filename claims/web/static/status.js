// The status page works without this file; with it, the two ways of asking switch in place
// and the result offers a print button.
(function () {
  "use strict";
  var tabs = document.querySelectorAll(".tabs [data-tab]");
  var panels = document.querySelectorAll("form[data-panel]");

  function show(name, focus) {
    tabs.forEach(function (tab) {
      if (tab.getAttribute("data-tab") === name) {
        tab.setAttribute("aria-current", "true");
      } else {
        tab.removeAttribute("aria-current");
      }
    });
    panels.forEach(function (panel) {
      panel.hidden = panel.getAttribute("data-panel") !== name;
      if (!panel.hidden && focus) {
        var first = panel.querySelector("input:not([type=hidden])");
        if (first) first.focus();
      }
    });
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", "?by=" + name);
    }
  }

  tabs.forEach(function (tab) {
    tab.addEventListener("click", function (event) {
      event.preventDefault();
      show(tab.getAttribute("data-tab"), true);
    });
  });

  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
