// The webhook inbox: GET /api/admin/webhooks with the filters in this page's address, so a
// filtered page, and each next or previous page, is a link that can be shared or reloaded.
// Details fetch one delivery with its raw body; Replay (confirmed first) applies it again
// and shows what that did, or the API's refusal (an auditor may read but not replay).
"use strict";

(() => {
  const { $, api, cell, link, labels, providerLabel, when, explain, start, ApiFailure } = Admin;
  const FILTERS = ["provider", "outcome", "limit"];

  // body[data-state] is "loading" while an action runs, "ready" after, as for a load.
  const state = (name) => { document.body.dataset.state = name; };
  const deliveryPath = (d) => `/api/admin/webhooks/${encodeURIComponent(d.delivery_id)}`;

  const { wanted, showFilters, pageLinks } = Admin.addressPages("/admin/webhooks", FILTERS);

  function paymentLink(d) {
    if (!d.payment_id) return "";
    const anchor = link(`/admin/payments?q=${encodeURIComponent(d.payment_id)}`,
      `${d.payment_id.slice(0, 8)}…`);
    anchor.title = d.payment_id;
    anchor.setAttribute("aria-label", `Payment ${d.payment_id}`);
    return anchor;
  }

  // Text that may break only after `after` (a pattern), each piece kept whole: a squeezed
  // column breaks a type at its dots ("checkout.session.completed") and a time between its
  // day and its clock, never inside a date.
  function breakable(text, after) {
    const node = document.createElement("span");
    node.className = "breakable";
    (text || "").split(after).forEach((piece, i) => {
      if (i) node.append(document.createElement("wbr"));
      const part = document.createElement("span");
      part.textContent = piece;
      node.append(part);
    });
    return node;
  }
  const stamp = (iso) => breakable(when(iso), /(?<= )/);

  const SUMMARY = [
    (d) => stamp(d.received_at),
    (d) => providerLabel(d.provider),
    (d) => breakable(d.type, /(?<=[._])/),
    (d) => d.event_id,
    (d) => d.outcome,
    (d) => d.reason || "",
    paymentLink,
    (d) => String(d.attempts),
    (d) => stamp(d.processed_at),
  ];

  // The delivery's whole record, as the API holds it, for the details under its row.
  function facts(d) {
    return [
      ["Delivery id", d.delivery_id], ["Provider", providerLabel(d.provider)],
      ["Event id", d.event_id], ["Type", d.type], ["Received", when(d.received_at)],
      ["Processed", when(d.processed_at)], ["Outcome", d.outcome], ["Reason", d.reason],
      ["Payment id", d.payment_id], ["Payment status after it", d.status],
      ["Position", d.position === null ? "" : String(d.position)],
      ["Attempts", String(d.attempts)], ["Next attempt", when(d.next_attempt_at)],
    ].filter(([, value]) => value);
  }

  // The raw body, pretty-printed when it is JSON that a round trip keeps exactly, else as
  // it came: a number a double cannot hold (9007199254740993) would be shown changed.
  function pretty(body) {
    let exact = true;
    const check = (key, value, context) => {
      if (typeof value === "number" && String(value) !== context?.source) exact = false;
      return value;
    };
    try {
      const parsed = JSON.parse(body, check);
      return exact ? JSON.stringify(parsed, null, 2) : body;
    } catch {
      return body;
    }
  }

  function showDetails(holder, d) {
    const list = document.createElement("dl");
    for (const [term, value] of facts(d)) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
    const heading = document.createElement("p");
    heading.textContent = "Raw body, as received:";
    const body = document.createElement("pre");
    body.className = "raw-body";
    body.textContent = pretty(d.body);
    holder.replaceChildren(list, heading, body);
  }

  function report(text, kind = "info") {
    $("action-result").textContent = text;
    $("action-result").dataset.kind = kind;
  }

  // The API's refusal as it said it, code included (e.g. "403 forbidden").
  function refusal(error) {
    if (error instanceof ApiFailure) {
      return `Refused (${error.status}${error.code ? ` ${error.code}` : ""}): ${error.message}`;
    }
    return explain(error);
  }

  async function act(work) {
    state("loading");
    try {
      await work();
    } catch (error) {
      report(refusal(error), "error");
    } finally {
      state("ready");
    }
  }

  function button(text, label, onClick) {
    const node = document.createElement("button");
    node.type = "button";
    node.textContent = text;
    node.setAttribute("aria-label", label);
    node.addEventListener("click", onClick);
    return node;
  }

  // The details row is read from the API each time it is opened: after a replay too.
  function detailsButton(d, details) {
    const toggle = button("Details", `Details of ${d.event_id}`, () => act(async () => {
      if (details.hidden) showDetails(details.cells[0], await api(deliveryPath(d)));
      details.hidden = !details.hidden;
      toggle.setAttribute("aria-expanded", String(!details.hidden));
    }));
    toggle.setAttribute("aria-expanded", String(!details.hidden));
    return toggle;
  }

  function replayButton(d, row, details) {
    return button("Replay", `Replay ${d.event_id}`, () => {
      report("");
      state("loading");
      const question = `Apply the ${providerLabel(d.provider)} delivery ${d.event_id} again? ` +
        "Its receipt still decides: one already applied replays as a duplicate.";
      if (!window.confirm(question)) {
        report("Nothing was sent.");
        state("ready");
        return;
      }
      act(async () => {
        const after = await api(`${deliveryPath(d)}/replay`, { method: "POST" });
        fillRow(row, after, details);
        row.querySelector(".actions button:last-child").focus(); // the keyboard stays here
        if (!details.hidden) showDetails(details.cells[0], await api(deliveryPath(d)));
        report(`Replayed ${after.event_id}: ${after.outcome}` +
          `${after.reason ? ` (${after.reason})` : ""}, attempt ${after.attempts}.`);
      });
    });
  }

  function fillRow(row, d, details) {
    const headings = labels($("deliveries"));
    row.replaceChildren();
    SUMMARY.forEach((column, i) => {
      const node = cell(row, column(d));
      node.dataset.label = headings[i];
      if (i === 7) node.classList.add("amount");
    });
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(detailsButton(d, details), replayButton(d, row, details));
    cell(row, actions).dataset.label = headings[SUMMARY.length];
  }

  function fill(items) {
    const tbody = $("deliveries").tBodies[0];
    const width = labels($("deliveries")).length;
    tbody.replaceChildren();
    for (const d of items) {
      const row = tbody.insertRow();
      const details = tbody.insertRow();
      details.className = "details";
      details.hidden = true;
      cell(details, "").colSpan = width;
      fillRow(row, d, details);
    }
    if (!items.length) cell(tbody.insertRow(), "No deliveries match these filters.").colSpan = width;
  }

  async function load() {
    const query = wanted();
    showFilters(query);
    const request = new URLSearchParams(query);
    request.delete("back");
    const page = await api(`/api/admin/webhooks?${request}`);
    fill(page.items);
    pageLinks(query, page.next_cursor);
  }

  start(load);
})();
