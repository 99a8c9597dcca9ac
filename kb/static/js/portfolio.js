// Portfolio charts, drawn with the bundled Chart.js from the page's JSON data blocks.
// Progressive enhancement: every chart has a table beside it that works without this file.
"use strict";

(function () {
  const GOAL_COLORS = {
    acquisition: "#2563eb", activation: "#16a34a", retention: "#9333ea", reactivation: "#ea580c",
    conversion: "#0891b2", gmv: "#dc2626", brand: "#ca8a04", referral: "#db2777",
  };
  const DAY_MS = 24 * 60 * 60 * 1000;

  function readJson(id) {
    const block = document.getElementById(id);
    return block ? JSON.parse(block.textContent) : null;
  }

  function dayValue(iso) {
    return Date.parse(iso + "T00:00:00Z");
  }

  function monthStarts(fromIso, toIso) {
    const from = new Date(dayValue(fromIso));
    const to = dayValue(toIso);
    const starts = [];
    let year = from.getUTCFullYear();
    let month = from.getUTCMonth();
    for (;;) {
      const value = Date.UTC(year, month, 1);
      if (value > to) break;
      starts.push(value);
      month += 1;
      if (month === 12) { month = 0; year += 1; }
    }
    return starts;
  }

  function shortTitle(text, max) {
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  // Dates as the rest of the product writes them: 2025年1月, 2025年1月6日.
  function formatMonth(value) {
    const day = new Date(value);
    return day.getUTCFullYear() + "年" + (day.getUTCMonth() + 1) + "月";
  }

  // "2025-01" (a heat map column) → "2025年1月".
  function monthLabel(key) {
    const [year, month] = String(key).split("-");
    return month ? year + "年" + Number(month) + "月" : String(key);
  }

  function formatDay(iso) {
    const day = new Date(dayValue(iso));
    return day.getUTCFullYear() + "年" + (day.getUTCMonth() + 1) + "月" + day.getUTCDate() + "日";
  }

  function drawGoals(data, goalLabels) {
    const canvas = document.getElementById("chart-goals");
    if (!canvas || !data.goals.length) return;
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.goals.map((g) => goalLabels[g.goal_type] || g.label),
        datasets: [
          {
            label: "主要指标达标占比 %",
            data: data.goals.map((g) => g.hit_share_pct),
            backgroundColor: "#22c55e",
          },
          {
            label: "主要指标达成率中位数 %",
            data: data.goals.map((g) => g.median_attainment_pct),
            backgroundColor: "#60a5fa",
          },
        ],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { beginAtZero: true, title: { display: true, text: "%" } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  function drawBudget(data, goalLabels) {
    const canvas = document.getElementById("chart-budget");
    if (!canvas || !data.goals.length) return;
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.goals.map((g) => goalLabels[g.goal_type] || g.label),
        datasets: [{
          label: "预算（万元）",
          data: data.goals.map((g) => Math.round(g.budget_cny / 1000) / 10),
          backgroundColor: data.goals.map((g) => GOAL_COLORS[g.goal_type] || "#64748b"),
        }],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, title: { display: true, text: "万元" } } },
      },
    });
  }

  function drawTimeline(data, goalLabels) {
    const canvas = document.getElementById("chart-timeline");
    if (!canvas || !data.campaigns.length) return;
    const box = document.getElementById("timeline-box");
    box.style.height = Math.max(220, data.campaigns.length * 22 + 80) + "px";
    // On a phone (box ~340 px) a 22-character name took the whole width and was cut on the left, and
    // twelve month ticks overlapped: shorter names and one tick per ~90 px there.
    const narrow = box.clientWidth < 560;
    const labels = data.campaigns.map((c) => shortTitle(c.title, narrow ? 9 : 22));
    const start = dayValue(data.date_from);
    const end = dayValue(data.date_to) + DAY_MS;
    const goals = [...new Set(data.campaigns.map((c) => c.goal_type))];
    const datasets = goals.map((goal) => ({
      label: goalLabels[goal] || goal,
      backgroundColor: GOAL_COLORS[goal] || "#64748b",
      grouped: false,
      barPercentage: 0.8,
      data: data.campaigns.map((c) => c.goal_type === goal
        ? [Math.max(dayValue(c.start_date), start), Math.min(dayValue(c.end_date) + DAY_MS, end)]
        : null),
    }));
    const ticks = monthStarts(data.date_from, data.date_to);
    const every = Math.max(1, Math.ceil(ticks.length / Math.min(12, Math.max(2, Math.floor(box.clientWidth / 90)))));
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: {
            type: "linear",
            min: start,
            max: end,
            afterBuildTicks: (axis) => {
              axis.ticks = ticks.filter((_, i) => i % every === 0).map((value) => ({ value: value }));
            },
            ticks: { callback: (value) => formatMonth(value), autoSkip: false, maxRotation: 0 },
          },
          y: { ticks: { autoSkip: false, font: { size: 11 } } },
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              title: (items) => data.campaigns[items[0].dataIndex].title,
              label: (item) => {
                const c = data.campaigns[item.dataIndex];
                return formatDay(c.start_date) + " 至 " + formatDay(c.end_date);
              },
            },
          },
        },
      },
    });
  }

  function drawCrowding(data) {
    const canvas = document.getElementById("chart-crowding");
    const crowding = data.crowding;
    if (!canvas || !crowding.segments.length) return;
    const box = document.getElementById("crowding-box");
    box.style.height = Math.max(200, crowding.segments.length * 26 + 90) + "px";
    const cells = [];
    let top = 1;
    crowding.counts.forEach((row, y) => row.forEach((v, x) => {
      cells.push({ x: crowding.months[x], y: crowding.segments[y], v: v });
      top = Math.max(top, v);
    }));
    new window.Chart(canvas, {
      type: "matrix",
      data: {
        datasets: [{
          label: "活动数",
          data: cells,
          backgroundColor: (ctx) => {
            const v = ctx.raw ? ctx.raw.v : 0;
            if (!v) return "rgba(226, 232, 240, 0.5)";
            if (v >= crowding.crowded_at) return "rgba(220, 38, 38, " + (0.55 + 0.45 * v / top) + ")";
            return "rgba(37, 99, 235, " + (0.2 + 0.6 * v / top) + ")";
          },
          borderColor: "#fff",
          borderWidth: 1,
          width: ({ chart }) => ((chart.chartArea || {}).width || 0) / crowding.months.length - 1,
          height: ({ chart }) => ((chart.chartArea || {}).height || 0) / crowding.segments.length - 1,
        }],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { type: "category", labels: crowding.months, offset: true, grid: { display: false },
            ticks: { maxRotation: 60, font: { size: 10 },
              callback: function (value) { return monthLabel(this.getLabelForValue(value)); } } },
          // Busiest segment at the top, as in the table beside the chart (the matrix plugin's
          // default reverses the y axis).
          y: { type: "category", labels: crowding.segments, offset: true, reverse: false,
            grid: { display: false } },
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: () => "",
              label: (item) => item.raw.y + " · " + monthLabel(item.raw.x) + "：" + item.raw.v + " 个活动",
            },
          },
        },
      },
    });
  }

  function draw() {
    const data = readJson("portfolio-data");
    if (!data || typeof window.Chart === "undefined") return;
    const goalLabels = (readJson("portfolio-labels") || {}).goal_types || {};
    window.Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
    drawGoals(data, goalLabels);
    drawBudget(data, goalLabels);
    drawTimeline(data, goalLabels);
    drawCrowding(data);
    document.documentElement.dataset.chartsReady = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
