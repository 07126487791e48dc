// One booking: its payments (with any chargeback and amount discrepancy) and the
// notifications its trainer was sent, read or not, so an admin sees whether the trainer
// was told about the payment.
"use strict";

(() => {
  const {
    $, api, money, fillTable, statusLabel, providerLabel, failure, when, start, ApiFailure, Notice,
  } = Admin;
  const bookingId = document.body.dataset.bookingId;

  const PAYMENT_COLUMNS = [
    (p) => when(p.created_at),
    (p) => p.order_id,
    (p) => p.customer_name,
    (p) => p.trainer_id,
    (p) => p.booking_date,
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

  // The provider captured another amount than the order's (a discount, a conversion).
  function discrepancy(p) {
    const d = p.amount_discrepancy;
    if (!d) return "";
    const ordered = money(d.expected_amount, p.currency);
    return `Ordered ${ordered}, captured ${money(d.captured_amount, p.currency)}: ${d.reason}`;
  }

  function summary(notifications) {
    if (!notifications.length) return "The trainer has not been notified about this booking.";
    const one = notifications.length === 1;
    const unread = notifications.filter((n) => !n.read).length;
    const sent = `The trainer was sent ${notifications.length} notification${one ? "" : "s"}`;
    if (!unread) return `${sent} and has read ${one ? "it" : "them"}.`;
    return `${sent}; ${unread} not read yet.`;
  }

  async function load() {
    let detail;
    try {
      detail = await api(`/api/admin/bookings/${encodeURIComponent(bookingId)}`);
    } catch (error) {
      if (error instanceof ApiFailure && error.status === 404) {
        throw new Notice(`There are no payments for booking ${bookingId}.`);
      }
      throw error;
    }
    fillTable($("payments").tBodies[0], detail.payments, PAYMENT_COLUMNS, "No payments.");
    const notifications = detail.trainer_notifications;
    $("notified").textContent = summary(notifications);
    fillTable($("notifications").tBodies[0], notifications, NOTIFICATION_COLUMNS,
      "No notifications.");
  }

  start(load);
})();
