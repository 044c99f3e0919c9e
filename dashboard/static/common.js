// Functions shared by the pages. User data only ever goes through textContent / dataset / href
// properties, never through markup.
(() => {
  "use strict";

  function text(value) {
    return value === null || value === undefined || value === "" ? "–" : String(value);
  }

  function setText(node, value) {
    const shown = text(value);
    if (node && node.textContent !== shown) node.textContent = shown;
  }

  function el(tag, className, content) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined && content !== null) node.textContent = String(content);
    return node;
  }

  function clock(iso) {
    if (!iso) return null;
    const when = new Date(iso);
    return Number.isNaN(when.getTime()) ? iso : when.toLocaleTimeString();
  }

  // "1234567.50" -> "1,234,567.50" without going through a float.
  function money(value) {
    if (value === null || value === undefined) return null;
    const [whole, cents] = String(value).split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return cents === undefined ? grouped : `${grouped}.${cents}`;
  }

  function took(ms) {
    if (ms === null || ms === undefined) return "";
    if (ms < 1000) return `+${ms} ms`;
    if (ms < 60000) return `+${(ms / 1000).toFixed(1)} s`;
    return `+${(ms / 60000).toFixed(1)} min`;
  }

  // The steps of one order: received -> confirmed/rejected (reason) -> emailed/email failed,
  // each with the time it took after the step before; a dashed step says what is awaited.
  function steps(order) {
    const out = [];
    if (order.received_at) {
      out.push({ key: "received", label: "received", at: clock(order.received_at), title: order.received_at });
    }
    const v = order.verdict;
    if (v) out.push({ key: v.status, label: v.status, at: clock(v.at), took: took(v.took_ms), detail: v.reason, title: v.at });
    else if (order.received_at) out.push({ key: "waiting", label: "awaiting verdict" });
    const e = order.email;
    if (e) {
      const sent = e.status === "sent";
      out.push({ key: sent ? "emailed" : "email_failed", label: sent ? "emailed" : "email failed",
                 at: clock(e.at), took: took(e.took_ms), detail: e.error, title: e.at });
    } else if (v && v.status === "confirmed") out.push({ key: "waiting", label: "awaiting email" });
    return out;
  }

  function timeline(order) {
    const list = el("ol", "timeline");
    list.dataset.testid = "timeline";
    for (const step of steps(order)) {
      const item = el("li", `step step-${step.key}`);
      item.dataset.step = step.key;
      if (step.title) item.title = step.title;
      item.append(el("span", "step-label", step.label));
      if (step.at) item.append(el("time", "step-at", step.at));
      if (step.took) item.append(el("span", "step-took", step.took));
      if (step.detail) {
        const detail = el("span", "step-detail", step.detail);
        detail.title = step.detail;
        item.append(detail);
      }
      list.append(item);
    }
    return list;
  }

  // Replace a container's timeline only when the steps changed (keeps the DOM calm).
  function renderTimeline(container, order) {
    const signature = JSON.stringify(steps(order));
    if (container.dataset.signature === signature) return;
    container.dataset.signature = signature;
    container.replaceChildren(timeline(order));
  }

  // The shop's own fields of a single-price order: "chair × 2", or "size: L, colour: oak".
  function detailsSummary(order) {
    const details = order.details || [];
    const value = (key) => (details.find((d) => d.key === key) || {}).value;
    const product = value("product");
    if (product) {
      const quantity = Number(value("quantity"));
      return quantity > 1 ? `${product} × ${quantity}` : product;
    }
    return details.map((d) => `${d.key}: ${d.value}`).join(", ");
  }

  function itemsSummary(order) {
    const items = order.items || [];
    if (!items.length) return detailsSummary(order) || (order.total ? "single price" : "");
    const parts = items.map((i) => (i.quantity > 1 ? `${i.product} × ${i.quantity}` : i.product));
    if (order.more_items) parts.push(`+${order.more_items} more`);
    return parts.join(", ");
  }

  window.Orderflow = { setText, el, clock, money, took, steps, timeline, renderTimeline, itemsSummary };
})();
