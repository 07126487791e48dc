// A booking's timeline: every stored event of its payments, from the audit history route,
// merged in store order (position), each told in a sentence an operator reads. Never a
// deposit secret: the events carry one, the timeline does not show it.
"use strict";

const BookingTimeline = (() => {
  const { api, money, fillTable, when, providerLabel } = Admin;

  const LABELS = {
    Initiated: "Checkout started", Completed: "Paid", Failed: "Failed", Cancelled: "Cancelled",
    Refunded: "Refunded", DepositAwaited: "Awaiting deposit",
    TransitionRejected: "Report refused", AmountDiscrepancyRecorded: "Amount discrepancy",
    CompletionReversed: "Completion reversed", RefundFailed: "Refund failed",
    DisputeOpened: "Dispute opened", DisputeClosed: "Dispute closed",
  };
  const DISPUTE_OUTCOMES = { won: "won", lost: "lost (a chargeback)", warning_closed: "closed, money kept" };

  // "ledger.payment:Payment.Refunded" → "Refunded".
  const kind = (type) => type.split(/[.:]/).pop();

  const STORIES = {
    Initiated: (d, p) => `${money(d.amount, d.currency)} through ${providerLabel(d.provider)} ` +
      `for the session of ${d.booking_date}, by ${d.customer_name}`,
    Completed: (d) => `Paid by ${d.method}; the provider's id ${d.provider_payment_id}`,
    Failed: (d) => `${d.code}: ${d.message}`,
    Cancelled: (d) => d.reason,
    Refunded: (d, p) => `${money(d.amount, p.currency)} back: ${d.reason} (refund ${d.refund_id})`,
    DepositAwaited: (d) => `Virtual account issued (${d.provider_payment_id}); waiting for the deposit`,
    TransitionRejected: (d) => `A report of ${d.attempted} while ${d.from_status}: ${d.reason}`,
    AmountDiscrepancyRecorded: (d, p) => `Ordered ${money(d.expected_amount, p.currency)}, ` +
      `captured ${money(d.captured_amount, p.currency)}: ${d.reason}`,
    CompletionReversed: (d) => d.reason,
    RefundFailed: (d, p) => `Refund ${d.refund_id} of ${money(d.amount, p.currency)} undone: ${d.reason}`,
    DisputeOpened: (d, p) => `${money(d.amount, p.currency)} disputed: ${d.reason} (${d.dispute_id})`,
    DisputeClosed: (d, p) => `${DISPUTE_OUTCOMES[d.outcome] || d.outcome}, ` +
      `${money(d.amount, p.currency)} (${d.dispute_id})`,
  };

  function story(event, payment) {
    const tell = STORIES[kind(event.type)];
    if (!tell) return "";
    try {
      return tell(event.data || {}, payment);
    } catch (error) {
      return "";  // an older event's shape: its type and position still show
    }
  }

  const COLUMNS = [
    (e) => when(e.timestamp),
    (e) => e.payment.order_id,
    (e) => LABELS[kind(e.type)] || kind(e.type),
    (e) => story(e, e.payment),
    (e) => String(e.position),
  ];

  // Each payment's history, read together; one table in the order the ledger stored them.
  async function show(tbody, payments) {
    const histories = await Promise.all(payments.map((p) =>
      api(`/api/audit/payments/${encodeURIComponent(p.payment_id)}/history`)));
    const events = histories.flatMap((history, i) =>
      history.events.map((e) => ({ ...e, payment: payments[i] })));
    events.sort((a, b) => a.position - b.position);
    fillTable(tbody, events, COLUMNS, "No events.");
  }

  return { show };
})();
