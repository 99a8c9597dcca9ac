// The import progress page: poll the job and open its result when it ends.
// Progressive enhancement only: without this file the page's "刷新" link does the same.
"use strict";

(function () {
  const box = document.getElementById("import-progress");
  if (!box) return;
  const progressUrl = box.dataset.progressUrl;
  const pageUrl = box.dataset.pageUrl;

  function show(job) {
    box.querySelector('[data-field="label"]').textContent = job.label;
    box.querySelector('[data-field="rows_read"]').textContent = String(job.rows_read);
    box.querySelector('[data-field="rows_rejected"]').textContent = String(job.rows_rejected);
    const bar = box.querySelector('[data-field="percent"]');
    bar.value = job.percent;
    bar.textContent = job.percent + "%";
  }

  function poll() {
    fetch(progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((job) => {
        show(job);
        if (job.ended) {
          window.location.assign(pageUrl);
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(() => window.setTimeout(poll, 5000));
  }

  window.setTimeout(poll, 500);
})();
