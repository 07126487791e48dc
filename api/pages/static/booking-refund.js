// The booking page's refund form: one of the booking's paid payments, an amount typed as
// people write it (parsed exactly to minor units; empty: all that is left) and a reason.
// The page asks before it sends, and makes the Idempotency-Key itself: the same key goes
// with every try of the same refund until one is answered, so a double click, a retry
// after a timeout or a lost answer refunds once.
"use strict";

const BookingRefund = (() => {
  const { $, api, money, minorUnits, providerLabel, ApiFailure, Notice } = Admin;
  const REFUNDABLE = ["completed", "partially_refunded"];
  let payments = [];
  let attempt = null;  // {what, key}: the refund being tried and its Idempotency-Key
  let busy = false;
  let refunded = async () => {};

  const left = (p) => p.amount - p.refunded_amount - (p.chargeback_amount || 0);
  const chosen = () => payments.find((p) => p.payment_id === $("refund-payment").value);

  // A random UUID v4 from getRandomValues, which (unlike randomUUID) also works on plain http.
  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function say(text, kind = "info") {
    $("refund-result").textContent = text;
    $("refund-result").dataset.kind = kind;
  }

  function option(p) {
    const node = document.createElement("option");
    node.value = p.payment_id;
    node.textContent = `Order ${p.order_id} · ${providerLabel(p.provider)} · ` +
      `${money(left(p), p.currency)} left of ${money(p.amount, p.currency)}`;
    return node;
  }

  function describeChoice() {
    const p = chosen();
    if (!p) return;
    $("refund-currency").textContent = p.currency;
    $("refund-left").textContent = `Empty: all that is left, ${money(left(p), p.currency)}.`;
  }

  // The booking's payments as just read; `onRefunded(position)` reloads the page's tables.
  function show(bookingPayments, onRefunded) {
    refunded = onRefunded;
    payments = bookingPayments.filter((p) => REFUNDABLE.includes(p.status) && left(p) > 0);
    const keep = $("refund-payment").value;
    $("refund-payment").replaceChildren(...payments.map(option));
    if (payments.some((p) => p.payment_id === keep)) $("refund-payment").value = keep;
    $("refund").hidden = !payments.length;
    $("refund-none").hidden = Boolean(payments.length);
    $("refund-none").textContent = "No payment of this booking has money left to refund.";
    describeChoice();
  }

  // What the form asks for, checked here first: an amount the ledger would refuse is
  // explained without a request.
  function request() {
    const p = chosen();
    const typed = $("refund-amount").value.trim();
    const reason = $("refund-reason").value.trim();
    if (!reason) throw new Notice("Say why the money goes back: the reason is required.");
    if (!typed) return { p, amount: null, reason, shown: money(left(p), p.currency) };
    const amount = minorUnits(typed, p.currency);
    if (amount <= 0n) throw new Notice("A refund must be more than nothing.");
    if (amount > BigInt(left(p))) {
      throw new Notice(`Only ${money(left(p), p.currency)} is left to refund on order ${p.order_id}.`);
    }
    return { p, amount: Number(amount), reason, shown: money(amount, p.currency) };
  }

  function keyFor(ask) {
    const what = JSON.stringify([ask.p.payment_id, ask.amount, ask.reason]);
    if (!attempt || attempt.what !== what) attempt = { what, key: newKey() };
    return attempt.key;
  }

  function outcome(answer, ask) {
    const pending = answer.refund_status !== "succeeded";
    return pending
      ? `The provider accepted the refund of ${ask.shown} (${answer.refund_id}); it is pending ` +
        "and counts once the provider says it succeeded."
      : `Refunded ${money(answer.amount, ask.p.currency)} on order ${ask.p.order_id} ` +
        `(${answer.refund_id}); the payment is now ${answer.status.replace("_", " ")}.`;
  }

  const AGAIN = "Refunding again with the same amount and reason is safe: it goes with the " +
    "same Idempotency-Key, so the provider refunds at most once.";

  function refusal(error) {
    if (!(error instanceof ApiFailure)) return `The refund's answer did not arrive (${error.message}). ${AGAIN}`;
    if (error.status >= 500) return `The provider did not answer (${error.status} ${error.code}: ${error.message}). ${AGAIN}`;
    if (error.status === 403) return "Refused: refunds need the admin token (this one may only read).";
    if (error.code === "refund_not_recorded") {
      return `The provider refunded (${error.details.refund_id}) but the ledger recorded nothing: ${error.message}`;
    }
    const provider = error.details.provider;  // the provider's own code and words
    const who = provider ? `${providerLabel(provider)} refused the refund` : "Refused";
    return `${who} (${error.code}): ${error.message}`;
  }

  async function send(ask) {
    const path = `/api/admin/payments/${encodeURIComponent(ask.p.payment_id)}/refunds`;
    const body = { reason: ask.reason, ...(ask.amount === null ? {} : { amount: ask.amount }) };
    const headers = { "Idempotency-Key": keyFor(ask) };
    const answer = await api(path, { method: "POST", body, headers });
    attempt = null;  // answered: the next refund is another refund
    $("refund-amount").value = "";
    $("refund-reason").value = "";
    return answer;
  }

  // The tables again, once the read models hold the refund (read-your-writes).
  async function reload(answer, ask) {
    try {
      await refunded(answer.position);
      say(outcome(answer, ask));
    } catch (error) {
      say(`${outcome(answer, ask)} Reload the page to see it: ${error.message}`, "error");
    }
  }

  async function submit(event) {
    event.preventDefault();
    if (busy) return;  // a second click while the first is on its way sends nothing
    let ask;
    try {
      ask = request();
    } catch (error) {
      return say(error.message, "error");
    }
    const question = `Refund ${ask.shown} of order ${ask.p.order_id} to the customer through ` +
      `${providerLabel(ask.p.provider)}? Reason: ${ask.reason}. This cannot be undone.`;
    if (!window.confirm(question)) return say("Nothing was refunded.");
    busy = true;
    $("refund").querySelector("button").disabled = true;
    say("Asking the provider…");
    try {
      await reload(await send(ask), ask);
    } catch (error) {
      say(refusal(error), "error");
    } finally {
      busy = false;
      $("refund").querySelector("button").disabled = false;
    }
  }

  $("refund").addEventListener("submit", submit);
  $("refund-payment").addEventListener("change", describeChoice);
  return { show };
})();
