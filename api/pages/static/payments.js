// The payments table: GET /api/admin/payments with the filters in this page's address,
// so a filtered page, and each next page, is a link that can be shared or gone back to.
"use strict";

(() => {
  const {
    $, api, money, fillTable, link, statusLabel, providerLabel, failure, when, start,
  } = Admin;
  const FILTERS = ["status", "provider", "trainer_id", "limit"];

  // The filters (and cursor) in the address, without empty values.
  function wanted() {
    const here = new URLSearchParams(location.search);
    const query = new URLSearchParams();
    for (const name of [...FILTERS, "cursor"]) {
      const value = (here.get(name) || "").trim();
      if (value) query.set(name, value);
    }
    return query;
  }

  function showFilters(query) {
    for (const name of FILTERS) {
      if (query.has(name)) $(name).value = query.get(name);
    }
  }

  function pageLink(id, query, cursor) {
    const target = new URLSearchParams(query);
    target.delete("cursor");
    if (cursor) target.set("cursor", cursor);
    const anchor = $(id);
    anchor.href = `/admin/payments${target.size ? `?${target}` : ""}`;
    return anchor;
  }

  const COLUMNS = [
    (p) => when(p.created_at),
    (p) => p.order_id,
    (p) => link(`/admin/bookings/${encodeURIComponent(p.booking_id)}`, p.booking_id),
    (p) => p.customer_name,
    (p) => p.trainer_id,
    (p) => p.booking_date,
    (p) => money(p.amount, p.currency),
    (p) => (p.refunded_amount ? money(p.refunded_amount, p.currency) : ""),
    (p) => statusLabel(p.status),
    (p) => providerLabel(p.provider),
    failure,
  ];

  async function load() {
    const query = wanted();
    showFilters(query);
    const page = await api(`/api/admin/payments?${query}`);
    fillTable($("payments").tBodies[0], page.items, COLUMNS, "No payments match these filters.");
    pageLink("next-page", query, page.next_cursor).hidden = !page.next_cursor;
    pageLink("first-page", query, null).hidden = !query.has("cursor");
  }

  start(load);
})();
