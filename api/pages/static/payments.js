// The payments table: GET /api/admin/payments with the filters in this page's address,
// so a filtered page, and each next or previous page, is a link that can be shared or
// gone back to. The export downloads the same filtered set as CSV (streamed by the API).
"use strict";

(() => {
  const {
    $, api, money, cell, link, labels, statusLabel, providerLabel, when, start, token,
  } = Admin;
  const FILTERS = ["q", "from", "to", "status", "provider", "trainer_id", "discrepancy", "limit"];

  const { wanted, showFilters, pageLinks } = Admin.addressPages("/admin/payments", FILTERS);

  const SUMMARY = [
    (p) => when(p.created_at),
    (p) => p.order_id,
    (p) => link(`/admin/bookings/${encodeURIComponent(p.booking_id)}`, p.booking_id),
    (p) => p.customer_name,
    (p) => money(p.amount, p.currency),
    (p) => (p.refunded_amount ? money(p.refunded_amount, p.currency) : ""),
    (p) => statusLabel(p.status) + (p.amount_discrepancy ? " · discrepancy" : ""),
    (p) => providerLabel(p.provider),
    (p) => p.failure_code || "",
  ];

  // What does not fit 1400 px: behind the row's Details button.
  function facts(p) {
    const d = p.amount_discrepancy;
    return [
      ["Payment id", p.payment_id], ["Provider payment id", p.provider_payment_id],
      ["Trainer", p.trainer_id], ["Session date", p.booking_date],
      ["Completed", when(p.completed_at)],
      ["Chargeback", p.chargeback_amount ? money(p.chargeback_amount, p.currency) : ""],
      ["Failure", p.failure_code ? `${p.failure_code}: ${p.failure_message || ""}` : ""],
      ["Amount discrepancy", d ? `ordered ${money(d.expected_amount, p.currency)}, captured ` +
        `${money(d.captured_amount, p.currency)}: ${d.reason}` : ""],
    ].filter(([, value]) => value);
  }

  function detailsRow(tbody, p, width) {
    const row = tbody.insertRow();
    row.className = "details";
    row.hidden = true;
    const list = document.createElement("dl");
    for (const [term, value] of facts(p)) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
    const holder = cell(row, list);
    holder.colSpan = width;
    return row;
  }

  function toggle(p, details) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Details";
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-label", `Details of ${p.order_id}`);
    button.addEventListener("click", () => {
      details.hidden = !details.hidden;
      button.setAttribute("aria-expanded", String(!details.hidden));
    });
    return button;
  }

  function fill(items) {
    const table = $("payments");
    const tbody = table.tBodies[0];
    const headings = labels(table);
    tbody.replaceChildren();
    for (const p of items) {
      const row = tbody.insertRow();
      SUMMARY.forEach((column, i) => {
        const node = cell(row, column(p));
        node.dataset.label = headings[i];
        if (i === 4 || i === 5) node.classList.add("amount");
      });
      const details = detailsRow(tbody, p, headings.length);
      cell(row, toggle(p, details)).dataset.label = headings[SUMMARY.length];
    }
    if (!items.length) cell(tbody.insertRow(), "No payments match these filters.").colSpan = headings.length;
  }

  // The API answers CSV only with the token, so the page fetches it and hands the browser
  // the file; the server streams it page by page.
  async function exportCsv() {
    const status = $("export-status");
    const query = wanted();
    for (const name of ["cursor", "back", "limit"]) query.delete(name);
    status.textContent = "Exporting…";
    const response = await fetch(`/api/admin/payments.csv?${query}`, {
      headers: { Authorization: `Bearer ${token()}` }, cache: "no-store",
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      status.textContent = `The export was refused: ${(body.error || {}).message || response.status}`;
      return;
    }
    const file = URL.createObjectURL(await response.blob());
    const anchor = document.createElement("a");
    anchor.href = file;
    anchor.download = "payments.csv";
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(file), 60_000);
    status.textContent = "Exported payments.csv.";
  }

  async function load() {
    const query = wanted();
    showFilters(query);
    const request = new URLSearchParams(query);
    request.delete("back");
    const page = await api(`/api/admin/payments?${request}`);
    fill(page.items);
    pageLinks(query, page.next_cursor);
  }

  $("export").addEventListener("click", () => exportCsv().catch((error) => {
    $("export-status").textContent = `The export failed: ${error.message}`;
  }));
  start(load);
})();
