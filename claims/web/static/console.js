/* The console's one script. Every form works without it; it only adds conveniences:
   a question before a form that moves many claims at once (data-confirm), "add a row" on
   the remittance form (which offers ten blank rows), and the claim form's
   estimate shown as the clerk types (the server computes it exactly as logging would, and
   names the documents in the page's language; the page carries the words around them). */
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
}());

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

(function () {
  "use strict";
  var form = document.querySelector("form[data-estimate-url]");
  var box = document.getElementById("estimate-preview");
  if (!form || !box || !window.fetch) { return; }
  var output = document.getElementById("estimate");
  var note = document.getElementById("estimate-note");
  var timer = null;
  var asked = 0;
  box.hidden = false;
  function show(answer) {
    if (answer.estimate === null) {
      output.textContent = "—";
      note.textContent = box.dataset.incomplete;
      return;
    }
    // The page's wording (data- attributes, in its language) around the server's figures.
    output.textContent = box.dataset.amount.replace("%(amount)s", answer.estimate);
    var notes = answer.warnings.slice();
    if (answer.missing_documents.length) {
      notes.unshift(box.dataset.missing.replace(
        "%(documents)s", answer.missing_documents.join(box.dataset.separator)));
    }
    note.textContent = notes.join(" ");
  }
  function ask() {
    var mine = ++asked;
    fetch(form.dataset.estimateUrl, {method: "POST", body: new FormData(form),
                                     credentials: "same-origin",
                                     headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) { if (answer && mine === asked) { show(answer); } })
      .catch(function () { /* the form still works: the claim page shows the estimate */ });
  }
  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 300);
  }
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  ask();
}());
