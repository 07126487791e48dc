// Trainers' statements: GET /api/admin/settlements with the filters in this page's address
// (Previous/Next follow the API's cursor), one statement's lines, closing a period and
// recording a payout. Each write is confirmed first and its answer, or the API's refusal
// with its code, is shown beside its form.
"use strict";

(() => {
  const { $, api, money, fillTable, cell, when, explain, start, ApiFailure } = Admin;
  const FILTERS = ["status", "trainer_id", "period_start", "limit"];
  const STATUS_LABELS = { open: "Open", closed: "Closed", paid: "Paid" };
  const LINE_KINDS = { sale: "Sale", refund: "Refund", chargeback: "Chargeback" };
  // The page of statements shown: the filters, its cursor and the cursors that led to it.
  const list = { query: new URLSearchParams(), cursor: null, earlier: [], next: null };
  let chosen = null; // the statement whose lines are shown

  // body[data-state] is "loading" while an action runs, "ready" after, as for a load.
  const state = (name) => { document.body.dataset.state = name; };
  const period = (s) => `${s.period_start} to ${s.period_end}`;
  const status = (s) => STATUS_LABELS[s.status] || s.status;

  function filtersFromAddress() {
    const here = new URLSearchParams(location.search);
    const query = new URLSearchParams();
    for (const name of FILTERS) {
      const value = (here.get(name) || "").trim();
      if (!value) continue;
      query.set(name, value);
      $(name).value = value;
    }
    return query;
  }

  function showButton(s) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Show lines";
    button.setAttribute("aria-label", `Show lines of ${s.trainer_id}, ${period(s)}, ${s.currency}`);
    button.addEventListener("click", () => act(() => choose(s.statement_id, null, true)));
    return button;
  }

  const COLUMNS = [
    period,
    (s) => s.trainer_id,
    (s) => s.currency,
    status,
    (s) => money(s.gross_sales, s.currency),
    (s) => money(s.refunds, s.currency),
    (s) => money(s.commission, s.currency),
    (s) => money(s.vat, s.currency),
    (s) => money(s.carried_in, s.currency),
    (s) => (s.status === "open" ? "" : money(s.withholding, s.currency)),
    (s) => (s.status === "open" ? "" : money(s.payout_amount, s.currency)),
    (s) => s.paid_reference || "",
    showButton,
  ];
  const LINE_COLUMNS = [
    (x) => LINE_KINDS[x.kind] || x.kind,
    (x) => x.order_id,
    (x) => money(x.amount, x.currency),
    (x) => money(x.commission, x.currency),
    (x) => money(x.vat, x.currency),
    (x) => when(x.at),
  ];

  const withPosition = (query, position) => {
    if (position !== null && position !== undefined) query.set("min_position", position);
    return query;
  };

  async function loadList(position = null) {
    const query = withPosition(new URLSearchParams(list.query), position);
    if (list.cursor) query.set("cursor", list.cursor);
    const page = await api(`/api/admin/settlements?${query}`);
    fillTable($("statements").tBodies[0], page.items, COLUMNS, "No statements match these filters.");
    list.next = page.next_cursor;
    $("next-page").hidden = !page.next_cursor;
    $("previous-page").hidden = !list.earlier.length;
  }

  function showFigures(s) {
    const figures = [
      ["Status", status(s)],
      ["Gross sales", money(s.gross_sales, s.currency)],
      ["Refunds", money(s.refunds, s.currency)],
      ["Commission", money(s.commission, s.currency)],
      ["VAT", money(s.vat, s.currency)],
      ["Carried in", money(s.carried_in, s.currency)],
    ];
    if (s.status !== "open") {
      figures.push(["Withholding", money(s.withholding, s.currency)]);
      figures.push(["Payout", money(s.payout_amount, s.currency)]);
    }
    if (s.paid_reference) figures.push(["Paid under reference", s.paid_reference]);
    $("statement-summary").textContent = figures.map(([k, v]) => `${k}: ${v}`).join(" · ");
  }

  // Shows one statement below the table; `focus` moves the keyboard there when asked for.
  async function choose(statementId, position = null, focus = false) {
    const query = withPosition(new URLSearchParams(), position);
    const s = await api(`/api/admin/settlements/${encodeURIComponent(statementId)}?${query}`);
    if (chosen !== s.statement_id) $("payout-result").textContent = "";
    chosen = s.statement_id;
    $("statement-heading").textContent =
      `Statement of ${s.trainer_id}, ${period(s)}, ${s.currency}`;
    showFigures(s);
    const lines = s.lines.map((line) => ({ ...line, currency: s.currency }));
    fillTable($("lines").tBodies[0], lines, LINE_COLUMNS, "No lines.");
    $("payout").hidden = s.status !== "closed";
    $("statement").hidden = false;
    if (focus) $("statement-heading").focus();
  }

  // The API's refusal as it said it, code included (e.g. "period_not_ended").
  function refusal(error) {
    if (error instanceof ApiFailure) {
      return `Refused (${error.status}${error.code ? ` ${error.code}` : ""}): ${error.message}`;
    }
    return explain(error);
  }

  function report(id, text, kind = "info") {
    $(id).textContent = text;
    $(id).dataset.kind = kind;
  }

  async function act(work) {
    state("loading");
    try {
      await work();
    } catch (error) {
      Admin.showMessage(explain(error), "error");
    } finally {
      state("ready");
    }
  }

  // A write after confirm(): its answer, or its refusal, goes to `resultId`; then `after`.
  function confirmedWrite(resultId, question, write, after) {
    report(resultId, "");
    state("loading");
    if (!window.confirm(question)) {
      report(resultId, "Nothing was sent.");
      state("ready");
      return;
    }
    act(async () => {
      let position = null;
      try {
        const answer = await write();
        report(resultId, answer.text);
        position = answer.position;
      } catch (error) {
        report(resultId, refusal(error), "error");
      }
      await after(position);
    });
  }

  function closePeriod(event) {
    event.preventDefault();
    const day = $("period_end").value;
    if (!day) return;
    const question = `Close every open statement whose period ended on or before ${day}? ` +
      "Income tax is withheld and the statements are frozen.";
    confirmedWrite("close-result", question, async () => {
      const answer = await api("/api/admin/settlements/close", {
        method: "POST", body: { period_end: day },
      });
      const text = answer.closed.length
        ? `Closed ${answer.closed.length}: ${answer.closed.join(", ")}`
        : `No open statement had ended on or before ${day}: nothing was closed.`;
      return { text, position: answer.position };
    }, async (position) => {
      await loadList(position);
      if (chosen) await choose(chosen, position);
    });
  }

  function recordPayout(event) {
    event.preventDefault();
    const reference = $("reference").value.trim();
    const statementId = chosen;
    if (!reference || !statementId) return;
    const question = `Record the payout of this statement under reference ${reference}?`;
    confirmedWrite("payout-result", question, async () => {
      const s = await api(`/api/admin/settlements/${encodeURIComponent(statementId)}/payout`, {
        method: "POST", body: { reference },
      });
      const text = `The statement is ${s.status}: ` +
        `${money(s.payout_amount, s.currency)} under reference ${s.paid_reference}.`;
      return { text, position: null };
    }, async () => {
      await choose(statementId);
      await loadList();
    });
  }

  function turnPage(forward) {
    if (forward) {
      list.earlier.push(list.cursor);
      list.cursor = list.next;
    } else {
      list.cursor = list.earlier.pop() ?? null;
    }
    act(() => loadList());
  }

  $("close").addEventListener("submit", closePeriod);
  $("payout").addEventListener("submit", recordPayout);
  $("next-page").addEventListener("click", () => turnPage(true));
  $("previous-page").addEventListener("click", () => turnPage(false));

  start(async () => {
    list.query = filtersFromAddress();
    list.cursor = null;
    list.earlier = [];
    await loadList();
  });
})();
