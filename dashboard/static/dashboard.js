// Live dashboard: fetch /api/state every refresh period and update the DOM in place.
// User data only ever goes through textContent / dataset, never innerHTML.
(() => {
  "use strict";

  const page = document.body;
  const stateUrl = page.dataset.stateUrl || "/api/state";
  const refreshMs = Number(page.dataset.refreshMs) || 1000;
  const byId = (id) => document.getElementById(id);
  const ORDER_FIELDS = ["order", "user", "total", "received", "status"];

  function setText(el, value) {
    const text = value === null || value === undefined || value === "" ? "–" : String(value);
    if (el.textContent !== text) el.textContent = text;
  }

  function clock(iso) {
    if (!iso) return null;
    const when = new Date(iso);
    return Number.isNaN(when.getTime()) ? iso : when.toLocaleTimeString();
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setTile(name, value) {
    setText(byId(`tile-${name}-value`), value);
  }

  function setFeed(text, kind, detail) {
    const badge = byId("feed-status");
    setText(badge, text);
    badge.className = `feed feed-${kind}`;
    badge.title = detail || "";
  }

  // The timeline of one order: received -> confirmed/rejected (reason) -> emailed/email failed.
  function steps(order) {
    const out = [];
    if (order.received_at) out.push({ key: "received", text: "received", at: order.received_at });
    const v = order.verdict;
    if (v) {
      const text = v.status === "rejected" && v.reason ? `rejected (${v.reason})` : v.status;
      out.push({ key: v.status, text, at: v.at });
    }
    const e = order.email;
    if (e) {
      const text = e.status === "sent" ? "emailed" : `email failed${e.error ? ` (${e.error})` : ""}`;
      out.push({ key: e.status === "sent" ? "emailed" : "email_failed", text, at: e.at });
    }
    return out;
  }

  function renderTimeline(td, order) {
    const list = steps(order);
    const signature = JSON.stringify(list);
    if (td.dataset.signature === signature) return;
    td.dataset.signature = signature;
    const nodes = [];
    list.forEach((step, i) => {
      if (i > 0) nodes.push(el("span", "arrow", "→"));
      const span = el("span", `step step-${step.key}`, step.text);
      span.dataset.step = step.key;
      span.title = step.at || "";
      nodes.push(span);
    });
    td.replaceChildren(...nodes);
  }

  function orderRow(order, row) {
    const tr = row || el("tr");
    if (!row) {
      for (const field of ORDER_FIELDS) {
        const td = el("td", field === "total" ? "num" : field === "order" ? "id" : "");
        td.dataset.field = field;
        tr.appendChild(td);
      }
    }
    tr.dataset.orderId = order.order_id;
    tr.dataset.stage = order.stage;
    const cell = (field) => tr.children[ORDER_FIELDS.indexOf(field)];
    setText(cell("order"), order.order_id);
    setText(cell("user"), order.user_id);
    setText(cell("total"), order.total ? `${order.total} ${order.currency || ""}`.trim() : null);
    setText(cell("received"), clock(order.received_at));
    cell("received").title = order.received_at || "";
    renderTimeline(cell("status"), order);
    return tr;
  }

  function renderOrders(orders) {
    const tbody = byId("orders-body");
    const existing = new Map();
    for (const tr of tbody.children) existing.set(tr.dataset.orderId, tr);
    const rows = orders.map((order) => orderRow(order, existing.get(order.order_id)));
    const same = rows.length === tbody.children.length && rows.every((tr, i) => tbody.children[i] === tr);
    if (!same) tbody.replaceChildren(...rows);
    byId("orders-empty").hidden = orders.length > 0;
  }

  function renderPerDay(days) {
    const tbody = byId("per-day-body");
    const rows = days.map((day) => {
      const tr = el("tr");
      tr.dataset.day = day.day;
      tr.append(el("td", "", day.day), el("td", "num", String(day.orders)), el("td", "num", day.revenue));
      return tr;
    });
    const signature = JSON.stringify(days);
    if (tbody.dataset.signature !== signature) {
      tbody.dataset.signature = signature;
      tbody.replaceChildren(...rows);
    }
    byId("per-day-empty").hidden = days.length > 0;
  }

  function render(state) {
    const c = state.counts;
    setTile("received", c.received);
    setTile("confirmed", c.confirmed);
    setTile("rejected", c.rejected);
    setTile("emails-sent", c.emails_sent);
    setTile("emails-failed", c.emails_failed);
    setTile("revenue", state.totals.revenue);
    setTile("aov", state.totals.average_order_value);
    byId("tile-revenue").title = `over ${state.totals.orders} confirmed orders`;
    renderPerDay(state.totals.per_day);
    renderOrders(state.orders);
    const feed = state.feed || {};
    if (feed.connected) setFeed("live", "live");
    else setFeed("waiting for Kafka", "waiting", feed.error);
    setText(byId("updated-at"), new Date().toLocaleTimeString());
  }

  async function refresh() {
    try {
      const response = await fetch(stateUrl, { cache: "no-store", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
    } catch (error) {
      setFeed("dashboard unreachable", "down", String(error));
    } finally {
      window.setTimeout(refresh, refreshMs);
    }
  }

  refresh();
})();
