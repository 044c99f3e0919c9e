// One order's page: poll /api/orders/<id> and redraw its timeline until it reaches its last step
// (or, for an order the store does not have yet, until it shows up or two minutes have passed;
// while the store cannot be read, 503, it says so and keeps trying).
(() => {
  "use strict";

  const { setText, el, money, renderTimeline } = window.Orderflow;
  const url = document.body.dataset.orderUrl;
  const refreshMs = Number(document.body.dataset.refreshMs) || 1000;
  const byId = (id) => document.getElementById(id);
  const FINAL = new Set(["emailed", "email_failed", "rejected"]);
  const giveUpAt = Date.now() + 120000;
  let everFound = false;

  function showProblem(text) {
    setText(byId("order-problem-text"), text);
    byId("order-problem").hidden = !text;
  }

  function render(order) {
    everFound = true;
    showProblem(null);
    byId("order-missing").hidden = true;
    byId("order-details").hidden = false;
    const stage = byId("order-stage");
    setText(stage, order.stage.replace("_", " "));
    stage.className = `stage stage-${order.stage}`;
    renderTimeline(byId("order-timeline"), order);
    const v = order.verdict;
    setText(byId("order-verdict"), v ? `${v.status}${v.reason ? `: ${v.reason}` : ""}` : null);
    const e = order.email;
    setText(byId("order-email"), e ? `${e.status} (${e.attempts} attempt${e.attempts === 1 ? "" : "s"})${e.error ? `: ${e.error}` : ""}` : null);
    setText(byId("order-user"), order.user_id);
    setText(byId("order-received"), order.received_at ? new Date(order.received_at).toLocaleString() : null);
    setText(byId("order-total"), order.total ? `${money(order.total)} ${order.currency || ""}`.trim() : null);
    const body = byId("order-items-body");
    const signature = JSON.stringify(order.items);
    if (body.dataset.signature !== signature) {
      body.dataset.signature = signature;
      body.replaceChildren(...order.items.map((item) => {
        const tr = el("tr");
        tr.append(el("td", "", item.product), el("td", "num", item.quantity), el("td", "num", money(item.unit_price)));
        return tr;
      }));
    }
    setText(byId("order-items-note"), order.items.length ? (order.more_items ? `and ${order.more_items} more items` : " ")
      : "A single-price order (no line items).");
    const details = byId("order-extras");
    const shown = JSON.stringify(order.details || []);
    if (details.dataset.signature !== shown) {
      details.dataset.signature = shown;
      details.replaceChildren(...(order.details || []).flatMap((d) => [el("dt", "", d.key), el("dd", "", d.value)]));
    }
    return FINAL.has(order.stage);
  }

  async function refresh() {
    let done = false;
    try {
      const response = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
      if (response.ok) done = render(await response.json());
      else if (response.status === 503) {
        showProblem("The order store cannot be read right now (store unavailable); still trying.");
        if (!everFound) byId("order-missing").hidden = true;
      } else {
        showProblem(null);
        if (!everFound) {
          byId("order-missing").hidden = false;
          setText(byId("order-stage"), "not found");
        }
        done = everFound || Date.now() > giveUpAt; // never came
      }
    } catch (error) {
      done = Date.now() > giveUpAt;
    }
    if (!done) window.setTimeout(refresh, refreshMs);
  }

  refresh();
})();
