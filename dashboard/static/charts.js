// The dashboard's two charts, drawn by uPlot (vendored in static/vendor/, see its README.md):
// the analytics revenue over time, and orders per second over the last few minutes.
(() => {
  "use strict";

  if (typeof window.uPlot !== "function") return; // the tables and tiles still work without charts
  const uPlot = window.uPlot;
  const HEIGHT = 220;
  const grid = { stroke: "#eef0f3", width: 1 };
  const axis = { stroke: "#6b7384", grid, ticks: { stroke: "#e2e5ea", width: 1, size: 4 } };
  const byId = (id) => document.getElementById(id);
  // Tick labels as local clock times; seconds only when the chart spans less than ten minutes.
  const timeTicks = (u, ticks) => {
    const span = u.scales.x.max - u.scales.x.min;
    if (span >= 172800) return ticks.map((t) => new Date(t * 1000).toLocaleDateString([], { month: "short", day: "numeric" }));
    const format = span < 600 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
    return ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], format));
  };
  const timeAxis = { ...axis, values: timeTicks, space: 70 };
  const charts = {};
  let rateWindow = null; // [first, last] second shown by the orders-per-second chart

  function make(id, options, data) {
    const box = byId(id);
    const chart = new uPlot({ width: Math.max(box.clientWidth, 300), height: HEIGHT, ...options }, data, box);
    new ResizeObserver(() => chart.setSize({ width: Math.max(box.clientWidth, 300), height: HEIGHT })).observe(box);
    return chart;
  }

  function revenueData(revenue) {
    const xs = revenue.t.slice();
    const ys = revenue.v.map(Number);
    const now = Math.floor(Date.now() / 1000);
    if (xs.length && now > xs[xs.length - 1]) { // the total holds until the next snapshot
      xs.push(now);
      ys.push(ys[ys.length - 1]);
    }
    return [xs, ys];
  }

  function updateRevenue(revenue) {
    const data = revenueData(revenue);
    byId("chart-revenue-empty").hidden = revenue.t.length > 0;
    if (charts.revenue) return charts.revenue.setData(data);
    charts.revenue = make("chart-revenue", {
      padding: [12, 28, 0, 0],
      legend: { show: false },
      cursor: { y: false },
      // at least the last five minutes, so one snapshot is a level line, not a zoom into one second
      scales: { x: { time: true, range: (u, min, max) => [Math.min(min, max - 300), max] } },
      axes: [timeAxis, { ...axis, size: 64, values: (u, ticks) => ticks.map((v) => v.toLocaleString()) }],
      series: [{}, {
        label: "Revenue", stroke: "#3d5a80", width: 2, fill: "rgba(61, 90, 128, 0.10)",
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: (u, si, i0, i1) => i1 - i0 < 12, size: 6 }, // a lone snapshot is a visible dot
        value: (u, v) => (v === null || v === undefined ? "–" : v.toFixed(2)),
      }],
    }, data);
  }

  function updateRate(rate) {
    const data = [rate.t, rate.received, rate.confirmed, rate.rejected];
    const now = Math.floor(Date.now() / 1000);
    const span = rate.t.length || 300;
    const end = Math.max(now, rate.t[rate.t.length - 1] || now);
    rateWindow = [end - span + 1, end];
    if (!charts.rate) {
      const bars = uPlot.paths.bars({ size: [0.9, 10], align: 0 });
      charts.rate = make("chart-rate", {
        padding: [12, 28, 0, 0],
        legend: { show: true, live: true },
        cursor: { y: false },
        scales: { x: { time: true, range: () => rateWindow }, y: { range: (u, min, max) => [0, Math.max(2, max)] } },
        axes: [timeAxis, { ...axis, size: 40 }],
        series: [{},
          { label: "received", stroke: "#2d5f9a", width: 1.5, paths: uPlot.paths.stepped({ align: 1 }),
            points: { show: false } },
          { label: "confirmed", stroke: "#1f7a4a", fill: "rgba(31, 122, 74, 0.45)", paths: bars, points: { show: false } },
          { label: "rejected", stroke: "#b3362b", fill: "rgba(179, 54, 43, 0.60)", paths: bars, points: { show: false } },
        ],
      }, data);
    } else {
      charts.rate.setData(data);
    }
  }

  let latest = null;

  function update(chartData) {
    if (!chartData) return;
    latest = chartData;
    updateRevenue(chartData.revenue);
    updateRate(chartData.orders_per_second);
  }

  // Time moves on while nothing happens: slide both charts to "now" every few seconds.
  window.setInterval(() => latest && update(latest), 3000);
  window.OrderflowCharts = { update };
})();
