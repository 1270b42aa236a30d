/* The console's one script: "add a row" on the remittance form. The form works without it
   (it offers ten blank rows); this only adds more, numbered on from the last. */
(function () {
  "use strict";
  var button = document.getElementById("add-row");
  var body = document.querySelector("#items tbody");
  if (!button || !body) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    var rows = body.querySelectorAll("tr.item-row");
    var last = rows[rows.length - 1];
    var next = rows.length;
    var row = last.cloneNode(true);
    row.classList.remove("has-error");
    row.querySelector("td").textContent = String(next + 1);
    row.querySelectorAll(".field-error").forEach(function (p) { p.remove(); });
    row.querySelectorAll("td").forEach(function (td) { td.classList.remove("has-error"); });
    row.querySelectorAll("input, label").forEach(function (el) {
      ["id", "name", "for"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value) { el.setAttribute(attr, value.replace(/^items-\d+-/, "items-" + next + "-")); }
      });
      if (el.tagName === "INPUT") {
        el.value = "";
        el.removeAttribute("aria-invalid");
        el.removeAttribute("aria-describedby");
      }
    });
    body.appendChild(row);
    row.querySelector("input").focus();
  });
}());
