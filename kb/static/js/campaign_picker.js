// The playbook form's campaign picker: type part of a title, pick a campaign, and its id joins
// the field of ids below (shown as a list of titles, each removable). Without this file the
// picker still works: the chosen label is sent with the form, and the server adds its id.
"use strict";

(function () {
  const ID_AT_END = /#\s*(\d+)\s*$/;

  function idsOf(field) {
    return field.value.split(/[、,，;；\s]+/).map((t) => t.replace(/^#/, "")).filter((t) => /^\d+$/.test(t));
  }

  function setIds(field, ids) {
    field.value = Array.from(new Set(ids)).join("、");
  }

  function addChip(list, field, id, label) {
    if (list.querySelector(`li[data-id="${id}"]`)) return;
    const item = document.createElement("li");
    item.dataset.id = id;
    const text = document.createElement("span");
    text.textContent = label;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button small";
    remove.dataset.remove = id;
    remove.textContent = "移除";
    remove.setAttribute("aria-label", "移除 " + label);
    item.append(text, " ", remove);
    list.append(item);
  }

  function fill(datalist, options) {
    datalist.replaceChildren(
      ...options.map((option) => {
        const element = document.createElement("option");
        element.value = option.label;
        return element;
      })
    );
  }

  document.querySelectorAll("[data-campaign-picker]").forEach((box) => {
    const field = document.getElementById("field-" + box.dataset.target);
    const list = document.getElementById(box.dataset.target + "-chosen");
    const datalist = document.getElementById(box.getAttribute("list"));
    if (!field || !list || !datalist) return;
    box.removeAttribute("name"); // the script adds the id itself
    let timer = 0;
    let asked = "";

    box.addEventListener("input", () => {
      const picked = ID_AT_END.exec(box.value);
      if (picked && Array.from(datalist.options).some((o) => o.value === box.value)) {
        setIds(field, [...idsOf(field), picked[1]]);
        addChip(list, field, picked[1], box.value);
        box.value = "";
        return;
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(() => {
        const q = box.value.trim();
        if (q === asked) return;
        asked = q;
        const url = box.dataset.optionsUrl + "?q=" + encodeURIComponent(q);
        fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
          .then((options) => fill(datalist, options))
          .catch(() => {});
      }, 200);
    });

    list.addEventListener("click", (event) => {
      const id = event.target instanceof HTMLElement ? event.target.dataset.remove : undefined;
      if (!id) return;
      setIds(field, idsOf(field).filter((other) => other !== id));
      event.target.closest("li").remove();
    });
  });
})();
