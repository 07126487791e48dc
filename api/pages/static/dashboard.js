// The dashboard: GET /api/admin/stats as tables, and the analytics routes of the range in
// this page's address as charts (Chart.js, served from this host). Chart data are the
// routes' integer minor units as they came; only axis labels and tooltips are formatted.
"use strict";

(() => {
  const { $, api, money, moneyMap, fillTable, providerLabel, start, today } = Admin;
  const RANGE = ["from", "to", "interval"];
  const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const COLOURS = ["#23395d", "#d9822b", "#2e8b57", "#8b0000", "#6a5acd", "#708090"];
  const charts = new Map();

  // The contract's counts first, in this order; any other *_count the API adds follows.
  const COUNTS = [
    ["completed_count", "Completed"], ["pending_count", "Pending"],
    ["failed_count", "Failed"], ["cancelled_count", "Cancelled"],
    ["refunded_count", "Refunded"],
  ];

  function countRows(stats) {
    const known = new Set(COUNTS.map(([key]) => key));
    const extra = Object.keys(stats)
      .filter((key) => key.endsWith("_count") && !known.has(key))
      .map((key) => {
        const words = key.slice(0, -6).replaceAll("_", " ");
        return [key, words.charAt(0).toUpperCase() + words.slice(1)];
      });
    return [...COUNTS, ...extra]
      .filter(([key]) => key in stats)
      .map(([key, label]) => ({ label, count: stats[key] }));
  }

  function revenueRows(stats) {
    const periods = [stats.total_revenue, stats.month_revenue, stats.today_revenue];
    const currencies = new Set(periods.flatMap((p) => Object.keys(p || {})));
    return [...currencies].sort().map((currency) => ({
      currency,
      amounts: periods.map((p) => money((p || {})[currency] ?? 0, currency)),
    }));
  }

  function showStats(stats) {
    fillTable($("revenue").tBodies[0], revenueRows(stats), [
      (r) => r.currency, (r) => r.amounts[0], (r) => r.amounts[1], (r) => r.amounts[2],
    ], "No revenue yet.");
    fillTable($("status-counts").tBodies[0], countRows(stats), [
      (r) => r.label, (r) => String(r.count),
    ], "No payments yet.");
    const providers = Object.entries(stats.by_provider || {}).map(([name, p]) => ({ name, ...p }));
    fillTable($("providers").tBodies[0], providers, [
      (p) => providerLabel(p.name), (p) => String(p.count), (p) => moneyMap(p.revenue),
    ], "No payments yet.");
  }

  // The range in the address (as the form last sent it), without empty values.
  function range() {
    const here = new URLSearchParams(location.search);
    const query = new URLSearchParams();
    for (const name of RANGE) {
      const value = (here.get(name) || "").trim();
      if (value) query.set(name, value);
      if (value) $(name).value = value;
    }
    return query;
  }

  // One chart per canvas: drawn again, it replaces the one before.
  function draw(canvas, config) {
    charts.get(canvas.id)?.destroy();
    const options = { animation: false, maintainAspectRatio: false, ...config.options };
    charts.set(canvas.id, new Chart(canvas, { ...config, options }));
  }

  const moneyAxis = (currency) => ({
    beginAtZero: true,
    ticks: { precision: 0, callback: (value) => money(Math.round(value), currency) },
  });

  // One bar chart per currency: amounts of different currencies never share an axis.
  function showRevenue(body) {
    const holder = $("revenue-charts");
    holder.replaceChildren();
    const currencies = [...new Set(body.series.map((row) => row.currency))];
    if (!currencies.length) holder.textContent = "No revenue in this range.";
    for (const currency of currencies) {
      const rows = body.series.filter((row) => row.currency === currency);
      const box = document.createElement("div");
      box.className = "chart";
      const canvas = document.createElement("canvas");
      canvas.id = `revenue-chart-${currency}`;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `Revenue in ${currency} per ${body.interval}`);
      box.append(canvas);
      holder.append(box);
      draw(canvas, {
        type: "bar",
        data: {
          labels: rows.map((row) => row.period_start),
          datasets: [
            { label: `Revenue (${currency})`, data: rows.map((row) => row.revenue),
              backgroundColor: COLOURS[0] },
            { label: `Refunded (${currency})`, data: rows.map((row) => row.refunded),
              backgroundColor: COLOURS[1] },
          ],
        },
        options: {
          scales: { y: moneyAxis(currency) },
          plugins: { tooltip: { callbacks: {
            label: (item) => `${item.dataset.label}: ${money(item.raw, currency)}`,
          } } },
        },
      });
    }
  }

  function showMethods(body) {
    const perProvider = new Map();
    for (const item of body.items) {
      perProvider.set(item.provider, (perProvider.get(item.provider) || 0) + item.count);
    }
    draw($("provider-chart"), {
      type: "doughnut",
      data: {
        labels: [...perProvider.keys()].map(providerLabel),
        datasets: [{ label: "Paid payments", data: [...perProvider.values()],
          backgroundColor: COLOURS }],
      },
    });
    fillTable($("methods").tBodies[0], body.items, [
      (m) => providerLabel(m.provider), (m) => m.method || "unknown", (m) => String(m.count),
      (m) => moneyMap(m.revenue),
    ], "No paid payments in this range.");
  }

  function showHours(body) {
    const perHour = Array(24).fill(0);
    for (const c of body.cells) perHour[c.hour] += c.count;
    draw($("hours-chart"), {
      type: "bar",
      data: {
        labels: perHour.map((_, hour) => `${String(hour).padStart(2, "0")}:00`),
        datasets: [{ label: "Paid payments", data: perHour, backgroundColor: COLOURS[2] }],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    heatMap(body.cells);
  }

  // 7 x 24 cells, shaded by class (no inline styles under the page's CSP); the number is
  // in each cell's label for screen readers and its title for a pointer.
  function heatMap(cells) {
    const most = Math.max(1, ...cells.map((c) => c.count));
    const head = $("heat").tHead;
    head.replaceChildren();
    const top = head.insertRow();
    Admin.cell(top, "", "th");
    for (let hour = 0; hour < 24; hour += 1) Admin.cell(top, hour % 6 ? "" : String(hour), "th");
    const body = $("heat").tBodies[0];
    body.replaceChildren();
    WEEKDAYS.forEach((name, weekday) => {
      const row = body.insertRow();
      Admin.cell(row, name, "th").scope = "row";
      for (const c of cells.filter((one) => one.weekday === weekday)) {
        const node = Admin.cell(row, "");
        node.className = `heat-${Math.ceil((c.count / most) * 4)}`;
        node.title = `${name} ${c.hour}:00 · ${c.count} paid · ${moneyMap(c.revenue)}`;
        node.setAttribute("aria-label", node.title);
        node.dataset.count = String(c.count);
      }
    });
  }

  function showOutcomes(body) {
    const rate = body.success_rate;
    $("success-rate").textContent = rate === null
      ? "No payment of this range has an outcome yet."
      : `${(rate * 100).toFixed(1)} % paid: ${body.completed} of ${body.attempts} ` +
        `(${body.failed} failed, ${body.cancelled} cancelled; pending ones not counted).`;
    draw($("outcomes-chart"), {
      type: "doughnut",
      data: {
        labels: ["Paid", "Failed", "Cancelled"],
        datasets: [{ label: "Payments", data: [body.completed, body.failed, body.cancelled],
          backgroundColor: [COLOURS[2], COLOURS[3], COLOURS[5]] }],
      },
    });
    fillTable($("failures").tBodies[0], body.failures, [
      (f) => f.code, (f) => String(f.count),
    ], "No failures in this range.");
  }

  async function load() {
    const query = range();
    const dates = new URLSearchParams([...query].filter(([name]) => name !== "interval"));
    const [stats, revenue, methods, hours, outcomes] = await Promise.all([
      api("/api/admin/stats"),
      api(`/api/admin/analytics/revenue?${query}`),
      api(`/api/admin/analytics/methods?${dates}`),
      api(`/api/admin/analytics/hours?${dates}`),
      api(`/api/admin/analytics/outcomes?${dates}`),
    ]);
    showStats(stats);
    $("range-shown").textContent =
      `From ${revenue.from} to ${revenue.to} (today is ${today()} in ${revenue.timezone}).`;
    showRevenue(revenue);
    showMethods(methods);
    showHours(hours);
    showOutcomes(outcomes);
  }

  start(load);
})();
