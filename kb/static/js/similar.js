// The campaign page: load its similar cases, collisions and forecast after the page itself.
// They take seconds to compute; the page shows a progress bar meanwhile. Without this file the
// placeholder's link opens them on a page of their own.
"use strict";

(function () {
  const box = document.getElementById("similar");
  if (!box || !box.dataset.similarUrl) return;
  const status = box.querySelector('[data-field="status"]');
  const started = Date.now();
  const ticker = window.setInterval(() => {
    const seconds = Math.round((Date.now() - started) / 1000);
    if (status && seconds >= 2) status.textContent = `正在查找相似的历史活动、冲突与预测（已用 ${seconds} 秒）…`;
  }, 1000);

  function fail() {
    window.clearInterval(ticker);
    box.setAttribute("aria-busy", "false");
    const bar = box.querySelector("progress");
    if (bar) bar.remove();
    if (status) status.textContent = "相似案例加载失败。";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "button small";
    retry.textContent = "重试";
    retry.addEventListener("click", () => window.location.reload());
    if (status) status.after(" ", retry);
  }

  fetch(box.dataset.similarUrl, { headers: { Accept: "text/html" }, credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((html) => {
      window.clearInterval(ticker);
      const template = document.createElement("template");
      template.innerHTML = html.trim();
      const loaded = template.content.firstElementChild;
      if (!loaded) return fail();
      loaded.id = "similar";
      box.replaceWith(template.content);
      if (window.location.hash && document.querySelector(window.location.hash)) {
        document.querySelector(window.location.hash).scrollIntoView();
      }
    })
    .catch(fail);
})();
