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

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".menu-toggle").forEach(enhanceMenu);
  document.querySelectorAll("fieldset.rows").forEach(enhanceRows);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  const firstError = document.querySelector("[aria-invalid=true]");
  if (firstError) firstError.focus();
});
