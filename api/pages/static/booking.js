// One booking: its payments (with any chargeback and amount discrepancy), a refund form
// (booking-refund.js), every event of its payments (booking-timeline.js), the
// notifications its trainer was sent, read or not, so an admin sees whether the trainer
// was told about the payment, and the messages the outbox sent (each channel's outcome,
// with a resend).
"use strict";

(() => {
  const {
    $, api, money, fillTable, statusLabel, providerLabel, failure, when, start, ApiFailure, Notice,
  } = Admin;
  const bookingId = document.body.dataset.bookingId;

  // When each was created is in the timeline ("Checkout started"); the table fits 1400 px.
  const PAYMENT_COLUMNS = [
    (p) => p.order_id,
    (p) => p.customer_name,
    (p) => money(p.amount, p.currency),
    (p) => (p.refunded_amount ? money(p.refunded_amount, p.currency) : ""),
    (p) => (p.chargeback_amount ? money(p.chargeback_amount, p.currency) : ""),
    discrepancy,
    (p) => statusLabel(p.status),
    (p) => providerLabel(p.provider),
    (p) => when(p.completed_at),
    failure,
  ];
  const NOTIFICATION_COLUMNS = [
    (n) => when(n.sent_at),
    (n) => n.title,
    (n) => n.message,
    (n) => (n.read ? "Read" : "Unread"),
  ];

  const MESSAGE_KINDS = {
    payment_completed: "Payment completed", payment_refunded: "Refunded in full",
    payment_partially_refunded: "Refunded in part", payment_failed: "Payment failed",
    payment_cancelled: "Payment cancelled", payment_reversed: "Completion reversed",
  };
  const MESSAGE_COLUMNS = [
    (m) => when(m.decided_at),
    (m) => MESSAGE_KINDS[m.kind] || m.kind,
    (m) => m.recipient,
    (m) => delivery(m, "email"),
    (m) => delivery(m, "sms"),
    (m) => delivery(m, "push"),
    resendButton,
  ];

  // "Sent", "Skipped: no_contact", "Failed (2 attempts): reason; again at …", "Dead: …".
  function delivery(message, channel) {
    const d = message.deliveries.find((one) => one.channel === channel);
    if (!d) return "";
    const label = d.status.charAt(0).toUpperCase() + d.status.slice(1);
    const tries = d.attempts > 1 ? ` (${d.attempts} attempts)` : "";
    const why = d.last_error ? `: ${d.last_error}` : "";
    const again = d.status === "failed" && d.next_attempt_at ? `; again ${when(d.next_attempt_at)}` : "";
    return `${label}${tries}${why}${again}`;
  }

  function resendButton(message) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Resend";
    button.setAttribute("aria-label", `Resend ${MESSAGE_KINDS[message.kind] || message.kind} to ${message.recipient}`);
    button.addEventListener("click", () => resend(message, button));
    return button;
  }

  async function resend(message, button) {
    button.disabled = true;
    try {
      await api(`/api/admin/notifications/${message.message_id}/resend`, { method: "POST" });
      button.textContent = "Queued";
    } catch (error) {
      button.disabled = false;
      button.textContent = error instanceof ApiFailure ? `Refused: ${error.message}` : "Failed";
    }
  }

  // The provider captured another amount than the order's (a discount, a conversion).
  function discrepancy(p) {
    const d = p.amount_discrepancy;
    if (!d) return "";
    const ordered = money(d.expected_amount, p.currency);
    return `Ordered ${ordered}, captured ${money(d.captured_amount, p.currency)}: ${d.reason}`;
  }

  // What the booking's payments share, said once above the table: "Trainer t-1 · session 2026-12-01".
  function about(payments) {
    const distinct = (pick) => [...new Set(payments.map(pick))].join(", ");
    return `Trainer ${distinct((p) => p.trainer_id)} · session ${distinct((p) => p.booking_date)}`;
  }

  function summary(notifications) {
    if (!notifications.length) return "The trainer has not been notified about this booking.";
    const one = notifications.length === 1;
    const unread = notifications.filter((n) => !n.read).length;
    const sent = `The trainer was sent ${notifications.length} notification${one ? "" : "s"}`;
    if (!unread) return `${sent} and has read ${one ? "it" : "them"}.`;
    return `${sent}; ${unread} not read yet.`;
  }

  // `position`: of a write just made here; the read waits until the views hold it.
  async function load(position = null) {
    const fresh = position === null || position === undefined ? "" : `?min_position=${position}`;
    let detail;
    try {
      detail = await api(`/api/admin/bookings/${encodeURIComponent(bookingId)}${fresh}`);
    } catch (error) {
      if (error instanceof ApiFailure && error.status === 404) {
        throw new Notice(`There are no payments for booking ${bookingId}.`);
      }
      throw error;
    }
    $("booking-summary").textContent = about(detail.payments);
    fillTable($("payments").tBodies[0], detail.payments, PAYMENT_COLUMNS, "No payments.");
    BookingRefund.show(detail.payments, load);
    await BookingTimeline.show($("timeline").tBodies[0], detail.payments);
    const notifications = detail.trainer_notifications;
    $("notified").textContent = summary(notifications);
    fillTable($("notifications").tBodies[0], notifications, NOTIFICATION_COLUMNS,
      "No notifications.");
    fillTable($("messages").tBodies[0], detail.messages, MESSAGE_COLUMNS, "No messages.");
  }

  start(() => load());
})();
