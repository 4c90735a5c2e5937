// The two pictures, drawn with Chart.js (vendor/): disk use, and one image's layer sharing.
"use strict";
(() => {
  const MiB = 1024 * 1024;
  const charts = {};
  const COLORS = { unique: "#2e86de", shared: "#10ac84", apparent: "#c8d6e5", dangling: "#f6b93b" };

  function draw(id, config) {
    charts[id]?.destroy();
    config.options = { responsive: true, maintainAspectRatio: false, animation: false, ...config.options };
    charts[id] = new Chart(document.getElementById(id), config);
    return charts[id];
  }

  // Disk use: what `docker images` adds up (apparent) against what the disk holds (actual, each
  // layer once), the latter split into shared and unique bytes, and what a prune would free.
  Berth.drawUsage = (usage) => {
    const unique = Math.max(usage.actual_size - usage.shared_size, 0);
    const reclaimable = usage.dangling.reclaimable ?? usage.dangling.size;
    draw("usage-chart", {
      type: "bar",
      data: {
        labels: ["Apparent (sum of sizes)", "Actual on disk", "Dangling, reclaimable"],
        datasets: [
          { label: "apparent", data: [usage.apparent_size / MiB, 0, 0], backgroundColor: COLORS.apparent },
          { label: "shared", data: [0, usage.shared_size / MiB, 0], backgroundColor: COLORS.shared },
          { label: "unique", data: [0, unique / MiB, 0], backgroundColor: COLORS.unique },
          { label: "reclaimable", data: [0, 0, reclaimable / MiB], backgroundColor: COLORS.dangling },
        ],
      },
      options: {
        indexAxis: "y",
        scales: { x: { stacked: true, title: { display: true, text: "MiB" } }, y: { stacked: true } },
        plugins: { legend: { position: "bottom" } },
      },
    });
    document.getElementById("usage-text").textContent =
      `${usage.images} images: ${Berth.bytes(usage.apparent_size)} apparent, ` +
      `${Berth.bytes(usage.actual_size)} on disk (${Berth.bytes(usage.shared_size)} shared, ` +
      `${Berth.bytes(unique)} unique); ${usage.dangling.count} dangling, ` +
      `${Berth.bytes(reclaimable)} reclaimable.`;
  };

  // Layer sharing: one bar per layer, base at the bottom, length = size; its colour says whether
  // other images hold it and a second bar counts them (aggregated: a number, never one box each).
  Berth.drawLayers = (layers) => {
    const ordered = [...layers].reverse(); // the chart's first label is drawn at the top
    const shared = (l) => l.shared_count ?? l.shared_with.length;
    const label = (l) => `#${l.index} ${(l.created_by || "").replace(/^\/bin\/sh -c (#\(nop\) )?/, "").slice(0, 40)}`;
    draw("layers-chart", {
      type: "bar",
      data: {
        labels: ordered.map(label),
        datasets: [
          {
            label: "size (MiB)", xAxisID: "x",
            data: ordered.map((l) => (l.size || 0) / MiB),
            backgroundColor: ordered.map((l) => (shared(l) ? COLORS.shared : COLORS.unique)),
          },
          {
            label: "other images sharing it", xAxisID: "x2",
            data: ordered.map(shared),
            backgroundColor: "rgba(16,172,132,.25)",
          },
        ],
      },
      options: {
        indexAxis: "y",
        scales: {
          x: { position: "bottom", title: { display: true, text: "MiB" } },
          x2: { position: "top", grid: { drawOnChartArea: false }, ticks: { precision: 0 },
                title: { display: true, text: "images sharing" } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  };
})();
