// Progressive enhancement only: every page works without this file.
"use strict";

function enhanceRows(fieldset) {
  const list = fieldset.querySelector(".row-list");
  const template = fieldset.querySelector("template");
  const addButton = fieldset.querySelector(".add-row");
  let next = list.querySelectorAll(".row").length;

  function addRemoveButton(row) {
    const checkbox = row.querySelector(".remove");
    if (checkbox) checkbox.remove();
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button small link remove-row";
    button.textContent = "删除";
    button.addEventListener("click", () => row.remove());
    row.appendChild(button);
  }

  list.querySelectorAll(".row").forEach(addRemoveButton);
  addButton.addEventListener("click", (event) => {
    event.preventDefault();
    const row = document.createElement("div");
    row.className = "row";
    row.innerHTML = template.innerHTML.replaceAll("__i__", String(next));
    next += 1;
    addRemoveButton(row);
    list.appendChild(row);
    const first = row.querySelector("input, textarea, select");
    if (first) first.focus();
  });
}

// The phone menu: the link opens #site-menu by its fragment without JavaScript; here it toggles.
function enhanceMenu(toggle) {
  const bar = toggle.closest(".topbar");
  toggle.addEventListener("click", (event) => {
    event.preventDefault();
    const open = bar.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
}

// A submitted form shows that it is working: its button is disabled and says 处理中…, so a slow
// import, analysis or search is not clicked twice. Disabled on the next tick: a button disabled
// before submission would drop its own name=value from the request.
const BUSY_LABEL = "处理中…";

function markBusy(event) {
  const form = event.target;
  if (event.defaultPrevented || form.hasAttribute("data-no-busy")) return;
  const button = event.submitter || form.querySelector("button[type=submit], button:not([type])");
  if (!button || button.classList.contains("link")) return;
  window.setTimeout(() => {
    button.dataset.label = button.textContent;
    button.textContent = BUSY_LABEL;
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
  }, 0);
}

function clearBusy() {
  document.querySelectorAll("form[aria-busy=true]").forEach((form) => {
    form.removeAttribute("aria-busy");
    form.querySelectorAll("button[data-label]").forEach((button) => {
      button.textContent = button.dataset.label;
      button.disabled = false;
      delete button.dataset.label;
    });
  });
}

// Coming back with the browser's back button shows the page as it was left: ready again.
window.addEventListener("pageshow", clearBusy);

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".menu-toggle").forEach(enhanceMenu);
  document.querySelectorAll("fieldset.rows").forEach(enhanceRows);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  // Listening on the document runs after the forms' own handlers (the data-confirm check).
  document.addEventListener("submit", markBusy);
  const firstError = document.querySelector("[aria-invalid=true]");
  if (firstError) firstError.focus();
});
