// Live updates for the dashboard. Regions marked data-live are re-rendered by the server
// (the same templates as the first load) and swapped in; the two fleet charts are drawn
// with Chart.js from /v1/overview. Lines and bars differ by dash and fill, not only hue.
"use strict";

const PERIOD_MS = 3000;
const HEADERS = { "X-Arkwright-UI": "1" };
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 2]];
const POINTS = ["circle", "rect", "triangle", "rectRot", "cross", "star"];
const charts = {};

function stamp() {
  const el = document.getElementById("updated");
  if (el) el.textContent = "Last updated " + new Date().toLocaleTimeString() + ".";
}

async function get(url) {
  const response = await fetch(url, { headers: HEADERS, credentials: "same-origin" });
  if (response.status === 401) {
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
    return null;
  }
  return response.ok ? response : null;
}

async function refreshRegion(region) {
  // Keep open <details> open across refreshes.
  const open = [...region.querySelectorAll("details")].map((d) => d.open);
  const response = await get(region.dataset.live);
  if (!response) return;
  region.innerHTML = await response.text();
  region.querySelectorAll("details").forEach((d, i) => { d.open = open[i] || false; });
}

function timeLabel(seconds, span) {
  // Seconds matter only when the samples are close together.
  const options = span < 600 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  return new Date(seconds * 1000).toLocaleTimeString([], options);
}

function drawCharts(overview) {
  if (typeof Chart === "undefined") return;
  const utilisation = document.getElementById("utilisation-chart");
  if (utilisation) {
    const times = overview.utilisation.times;
    const span = times.length ? times[times.length - 1] - times[0] : 0;
    const labels = times.map((t) => timeLabel(t, span));
    const datasets = Object.entries(overview.utilisation.sites).map(([site, series], i) => ({
      label: site,
      data: series.map((v) => Math.round(v * 1000) / 10),
      borderDash: DASHES[i % DASHES.length],
      pointStyle: POINTS[i % POINTS.length],
      borderWidth: 2,
      pointRadius: 3,
      tension: 0,
    }));
    if (!charts.utilisation) {
      charts.utilisation = new Chart(utilisation, {
        type: "line",
        data: { labels, datasets },
        options: {
          animation: false,
          scales: { y: { min: 0, max: 100, title: { display: true, text: "GPUs busy (%)" } } },
          plugins: { legend: { labels: { usePointStyle: true } } },
        },
      });
    } else {
      charts.utilisation.data.labels = labels;
      charts.utilisation.data.datasets = datasets;
      charts.utilisation.update();
    }
  }
  const share = document.getElementById("share-chart");
  if (share) {
    const names = overview.programmes.map((p) => p.name);
    const datasets = [
      { label: "attained", data: overview.programmes.map((p) => p.attained_share * 100),
        backgroundColor: "rgba(11, 92, 173, 0.55)", borderColor: "#0b5cad", borderWidth: 2 },
      { label: "entitled (outlined)", data: overview.programmes.map((p) => p.entitled_share * 100),
        backgroundColor: "rgba(0, 0, 0, 0)", borderColor: "#1b1f23", borderWidth: 3,
        borderDash: [6, 3] },
    ];
    if (!charts.share) {
      charts.share = new Chart(share, {
        type: "bar",
        data: { labels: names, datasets },
        options: {
          animation: false,
          scales: { y: { min: 0, max: 100, title: { display: true, text: "share (%)" } } },
        },
      });
    } else {
      charts.share.data.labels = names;
      charts.share.data.datasets = datasets;
      charts.share.update();
    }
  }
}

async function refreshCharts() {
  if (!document.getElementById("utilisation-chart")) return;
  const response = await get("/v1/overview");
  if (response) drawCharts(await response.json());
}

async function tick() {
  try {
    await Promise.all([
      ...[...document.querySelectorAll("[data-live]")].map(refreshRegion),
      refreshCharts(),
    ]);
    stamp();
  } catch (error) {
    const el = document.getElementById("updated");
    if (el) el.textContent = "Could not update: " + error;
  }
}

function loadChartLibrary() {
  if (!document.querySelector("canvas")) return Promise.resolve();
  return new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = "/static/vendor/chart.umd.min.js";
    script.onload = resolve;
    script.onerror = resolve; // the tables still carry every number
    document.head.appendChild(script);
  });
}

loadChartLibrary().then(() => {
  refreshCharts();
  stamp();
  setInterval(tick, PERIOD_MS);
});
