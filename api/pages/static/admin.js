// Shared by the admin pages: sign-in, the authorised fetch, error messages, money, tables.
// The pages are static shells: everything shown is read from the JSON API with the token
// the person typed, kept in sessionStorage (this tab only) until they sign out.
"use strict";

const Admin = (() => {
  const TOKEN_KEY = "ledger.admin.token";
  // The server's formats: currency exponents and symbols, and the business time zone.
  const FORMATS = JSON.parse(document.getElementById("formats").textContent);
  const { exponents: EXPONENTS, symbols: SYMBOLS, timezone: TIMEZONE } = FORMATS;
  const GROUPED = new Intl.NumberFormat("en-US");
  const $ = (id) => document.getElementById(id);

  class ApiFailure extends Error {
    constructor(status, code, message, details = {}) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details;
    }
  }

  // A message for the person, shown as it is (e.g. "no such booking").
  class Notice extends Error {}

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // A read by default; `send` ({method, body, headers}) writes JSON, e.g. closing a period.
  async function api(path, send = {}) {
    const headers = {
      ...(send.headers || {}), Authorization: `Bearer ${token()}`, Accept: "application/json",
    };
    if (send.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: send.method || "GET",
      headers,
      body: send.body === undefined ? undefined : JSON.stringify(send.body),
      cache: "no-store",
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = body.error || {};
      throw new ApiFailure(response.status, error.code || "", error.message || response.statusText,
        error.details || {});
    }
    return body;
  }

  // Amounts arrive as integers in the currency's minor unit; they are never divided as
  // floats. BigInt keeps them exact (the API caps amounts far below 2^53). The form is the
  // ledger's own (Money.for_people): "₩150,000", "$49.99", "-$1.00", "1,234.567 KWD" for a
  // currency without a symbol.
  function money(minor, currency) {
    const digits = EXPONENTS[currency] ?? 2;
    let units = BigInt(minor);
    const sign = units < 0n ? "-" : "";
    if (units < 0n) units = -units;
    const scale = 10n ** BigInt(digits);
    const fraction = digits ? `.${(units % scale).toString().padStart(digits, "0")}` : "";
    const number = `${GROUPED.format(units / scale)}${fraction}`;
    const symbol = SYMBOLS[currency];
    return symbol ? `${sign}${symbol}${number}` : `${sign}${number} ${currency}`;
  }

  // Minor units as a plain decimal text ("49.99"), exact, for inputs and chart axes.
  function decimal(minor, currency) {
    return money(minor, currency).replace(/[^0-9.-]/g, "");
  }

  // What a person typed ("12.5", "₩10,000", "1,000") as integer minor units (a BigInt),
  // exact: the digits are shifted, never multiplied as a float. More decimals than the
  // currency has is an error, not a rounding.
  function minorUnits(text, currency) {
    const digits = EXPONENTS[currency] ?? 2;
    const plain = text.replace(/[\s,]/g, "").replace(SYMBOLS[currency] || currency, "")
      .replace(currency, "");
    const match = /^(\d+)(?:\.(\d*))?$/.exec(plain);
    if (!match) throw new Notice(`"${text}" is not an amount of ${currency}.`);
    const fraction = match[2] || "";
    if (fraction.length > digits) {
      throw new Notice(`${currency} has ${digits ? `${digits} decimals` : "no decimals"}: ` +
        `"${text}" is not an amount of it.`);
    }
    return BigInt(match[1]) * 10n ** BigInt(digits) + BigInt(fraction.padEnd(digits, "0") || "0");
  }

  // A currency map {"KRW": 150000, "USD": 1234} as "₩150,000; $12.34".
  function moneyMap(totals) {
    const entries = Object.keys(totals || {}).sort().map((c) => money(totals[c], c));
    return entries.length ? entries.join("; ") : "none";
  }

  function showMessage(text, kind = "info") {
    const message = $("message");
    message.textContent = text;
    message.dataset.kind = kind;
    message.hidden = !text;
  }

  function showSignIn(text) {
    $("content").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    showMessage(text || "Sign in to see this page.", text ? "error" : "info");
    $("token").focus();
  }

  function explain(error) {
    if (error instanceof Notice) return error.message;
    if (!(error instanceof ApiFailure)) {
      return `Could not load this page from the ledger API (${error.message}).`;
    }
    if (error.status === 503 && error.code === "admin_not_configured") {
      return "Admin access is not configured on the server: LEDGER_ADMIN_TOKEN is not set.";
    }
    return `The ledger API answered ${error.status}: ${error.message}`;
  }

  // body[data-state] (signed-out, loading, ready, error) tells tests when a load is over.
  const state = (name) => { document.body.dataset.state = name; };

  async function show(load) {
    if (!token()) {
      showSignIn();
      return state("signed-out");
    }
    state("loading");
    $("sign-in").hidden = true;
    $("sign-out").hidden = false;
    showMessage("Loading…");
    $("main").setAttribute("aria-busy", "true");
    try {
      await load();
      showMessage("");
      $("content").hidden = false;
      state("ready");
    } catch (error) {
      if (error instanceof ApiFailure && (error.status === 401 || error.status === 403)) {
        sessionStorage.removeItem(TOKEN_KEY);
        const why = error.status === 401 ? "was not accepted" : "may not read the admin pages";
        showSignIn(`Unauthorized: that token ${why} (${error.status}). ` +
          "Sign in with the admin or auditor token.");
        state("signed-out");
      } else {
        $("content").hidden = true;
        showMessage(explain(error), "error");
        state("error");
      }
    } finally {
      $("main").setAttribute("aria-busy", "false");
    }
  }

  // Runs the page: `load` fills #content from the API once a token is known.
  function start(load) {
    $("sign-in").addEventListener("submit", (event) => {
      event.preventDefault();
      const typed = $("token").value.trim();
      if (!typed) return;
      sessionStorage.setItem(TOKEN_KEY, typed);
      $("token").value = "";
      show(load);
    });
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn();
      showMessage("You are signed out.");
      state("signed-out");
    });
    show(load);
  }

  // DOM building with textContent only: API data never becomes markup.
  function cell(row, content, tag = "td") {
    const node = document.createElement(tag);
    if (content instanceof Node) node.append(content);
    else node.textContent = content ?? "";
    row.append(node);
    return node;
  }

  // Each cell carries its column's heading (data-label): on a narrow screen the rows are
  // stacked cards and the heading is shown beside the value (admin.css).
  function labels(table) {
    return [...(table.tHead?.rows[0]?.cells || [])].map((th) => th.textContent.trim());
  }

  // A heading's class "amount" (right-aligned) or "wrap" (long text) goes to its cells too.
  const COLUMN_CLASSES = ["amount", "wrap"];
  function fillTable(tbody, rows, columns, emptyText) {
    tbody.replaceChildren();
    const table = tbody.closest("table");
    const headings = labels(table);
    const classes = [...(table.tHead?.rows[0]?.cells || [])]
      .map((th) => COLUMN_CLASSES.filter((name) => th.classList.contains(name)));
    for (const item of rows) {
      const row = tbody.insertRow();
      columns.forEach((column, i) => {
        const node = cell(row, column(item));
        if (headings[i]) node.dataset.label = headings[i];
        node.classList.add(...(classes[i] || []));
      });
    }
    if (!rows.length) {
      const row = tbody.insertRow();
      cell(row, emptyText).colSpan = tbody.closest("table").tHead.rows[0].cells.length;
    }
  }

  function link(href, text) {
    const anchor = document.createElement("a");
    anchor.href = href;
    anchor.textContent = text;
    return anchor;
  }

  // A list page whose filters, cursor and earlier cursors live in its address, so each
  // page of results is a link; `back` lists the cursors before this one ("" is the first).
  function addressPages(page, filters) {
    const BACK_KEPT = 50; // previous pages remembered in the address
    function wanted() {
      const here = new URLSearchParams(location.search);
      const query = new URLSearchParams();
      for (const name of [...filters, "cursor", "back"]) {
        const value = (here.get(name) || "").trim();
        if (value) query.set(name, value);
      }
      return query;
    }
    function showFilters(query) {
      for (const name of filters) {
        if (query.has(name)) $(name).value = query.get(name);
      }
    }
    function setLink(id, query, cursor, back) {
      const target = new URLSearchParams(query);
      target.delete("cursor");
      target.delete("back");
      if (cursor) target.set("cursor", cursor);
      if (cursor && back.length) target.set("back", back.join("."));
      const anchor = $(id);
      anchor.href = `${page}${target.size ? `?${target}` : ""}`;
      return anchor;
    }
    function pageLinks(query, nextCursor) {
      const back = query.has("back") ? query.get("back").split(".") : [];
      const here = query.get("cursor") || "";
      setLink("next-page", query, nextCursor, [...back, here].slice(-BACK_KEPT)).hidden = !nextCursor;
      const previous = back.length ? back[back.length - 1] : null;
      setLink("previous-page", query, previous, back.slice(0, -1)).hidden = !query.has("cursor");
      setLink("first-page", query, "", []).hidden = !query.has("cursor");
    }
    return { wanted, showFilters, pageLinks };
  }

  const STATUS_LABELS = {
    pending: "Pending", completed: "Completed", failed: "Failed", cancelled: "Cancelled",
    partially_refunded: "Partially refunded", refunded: "Refunded", disputed: "Disputed",
  };
  const statusLabel = (status) => STATUS_LABELS[status] || status;
  const PROVIDER_LABELS = { toss: "Toss", stripe: "Stripe" };
  const providerLabel = (provider) => PROVIDER_LABELS[provider] || provider;
  const failure = (p) => (p.failure_code ? `${p.failure_code}: ${p.failure_message || ""}` : "");
  // ISO-8601 timestamps (any offset), shown to the second in the business time zone
  // (LEDGER_TIMEZONE, named at the top of every page), so every admin reads the same time
  // and "today" is the business day; an unparsable one is shown as it came.
  const LOCAL = new Intl.DateTimeFormat("sv-SE", {
    timeZone: TIMEZONE, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    return LOCAL.format(date);
  }

  // Today's business day (YYYY-MM-DD) in the business time zone.
  const today = () => LOCAL.format(new Date()).slice(0, 10);

  return {
    $, api, money, decimal, minorUnits, moneyMap, start, showMessage, fillTable, cell, link, labels,
    statusLabel, providerLabel, failure, when, today, explain, ApiFailure, Notice,
    TIMEZONE, token, addressPages,
  };
})();
