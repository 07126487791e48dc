// The dashboard: GET /api/admin/stats, shown as revenue per currency and payment counts.
"use strict";

(() => {
  const { $, api, money, moneyMap, fillTable, providerLabel, start } = Admin;

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

  async function load() {
    const stats = await api("/api/admin/stats");
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

  start(load);
})();
