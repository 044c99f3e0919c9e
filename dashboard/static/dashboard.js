// Live dashboard: follow /api/stream (server-sent events) and update the DOM in place; without
// EventSource, or when the server refuses a stream, poll /api/state instead.
// User data only ever goes through textContent / dataset / href, never innerHTML.
(() => {
  "use strict";

  const { setText, el, clock, money, renderTimeline, itemsSummary } = window.Orderflow;
  const page = document.body;
  const stateUrl = page.dataset.stateUrl || "/api/state";
  const streamUrl = page.dataset.streamUrl || "/api/stream";
  const refreshMs = Number(page.dataset.refreshMs) || 1000;
  const byId = (id) => document.getElementById(id);
  const ORDER_FIELDS = ["order", "user", "items", "total", "received", "status"];
  const orders = new Map(); // order_id -> the latest JSON of that order
  const live = { mode: "connecting", messages: 0 };
  window.orderflowDashboard = live; // for people in the console and for the browser test

  function setFeed(text, kind, detail) {
    const badge = byId("feed-status");
    setText(badge, text);
    badge.className = `feed feed-${kind}`;
    badge.title = detail || "";
    badge.dataset.mode = live.mode;
  }

  function setTile(name, value, sub) {
    setText(byId(`tile-${name}-value`), value);
    if (sub !== undefined) byId(`tile-${name}-sub`).textContent = sub || "";
  }

  // -- the table of latest orders ------------------------------------------------------------

  function orderRow(order, row) {
    const tr = row || el("tr");
    if (!row) {
      for (const field of ORDER_FIELDS) {
        const td = el("td", { total: "num", order: "id", items: "items" }[field] || "");
        td.dataset.field = field;
        tr.appendChild(td);
      }
      const link = el("a");
      tr.children[0].appendChild(link);
    }
    tr.dataset.orderId = order.order_id;
    tr.dataset.stage = order.stage;
    const cell = (field) => tr.children[ORDER_FIELDS.indexOf(field)];
    const link = cell("order").firstChild;
    setText(link, order.order_id);
    link.href = `/orders/${encodeURIComponent(order.order_id)}`;
    setText(cell("user"), order.user_id);
    const items = itemsSummary(order);
    setText(cell("items"), items);
    cell("items").title = items;
    setText(cell("total"), order.total ? `${money(order.total)} ${order.currency || ""}`.trim() : null);
    setText(cell("received"), clock(order.received_at));
    cell("received").title = order.received_at || "";
    renderTimeline(cell("status"), order);
    return tr;
  }

  function renderOrders(list) {
    const tbody = byId("orders-body");
    const existing = new Map();
    for (const tr of tbody.children) existing.set(tr.dataset.orderId, tr);
    const rows = list.map((order) => orderRow(order, existing.get(order.order_id)));
    const same = rows.length === tbody.children.length && rows.every((tr, i) => tbody.children[i] === tr);
    if (!same) tbody.replaceChildren(...rows);
    byId("orders-empty").hidden = list.length > 0;
  }

  // -- small tables: per day, lag, dead letters ----------------------------------------------

  function replaceIfChanged(node, data, build) {
    const signature = JSON.stringify(data);
    if (node.dataset.signature === signature) return;
    node.dataset.signature = signature;
    node.replaceChildren(...build());
  }

  function renderPerDay(days) {
    replaceIfChanged(byId("per-day-body"), days, () => days.slice(0, 14).map((day) => {
      const tr = el("tr");
      tr.dataset.day = day.day;
      tr.append(el("td", "", day.day), el("td", "num", day.orders), el("td", "num", money(day.revenue)));
      return tr;
    }));
    byId("per-day-empty").hidden = days.length > 0;
  }

  function renderLag(lag) {
    const services = Object.keys(lag).sort();
    replaceIfChanged(byId("lag-body"), services.map((s) => [s, lag[s].topic, lag[s].total, lag[s].partitions,
      lag[s].error]), () => services.map((service) => {
      const info = lag[service];
      const tr = el("tr");
      tr.dataset.service = service;
      const total = el("td", "num");
      if (info.total === null || info.total === undefined) total.textContent = "?";
      else {
        total.textContent = String(info.total);
        total.className = `num ${info.total === 0 ? "lag-ok" : "lag-behind"}`;
      }
      const parts = el("td");
      const perPartition = Object.entries(info.partitions || {}).map(([p, n]) => `p${p} ${n}`).join(" · ");
      parts.append(el("span", "partitions", perPartition));
      if (info.error) parts.append(el("div", "lag-error", info.error));
      tr.append(el("td", "", service), el("td", "", info.topic), total, parts);
      return tr;
    }));
    byId("lag-empty").hidden = services.length > 0;
  }

  function renderDeadLetters(dead) {
    setTile("dead-letters", dead.total);
    byId("tile-dead-letters").classList.toggle("has-some", dead.total > 0);
    replaceIfChanged(byId("dlq-list"), dead.recent, () => dead.recent.map((d) => {
      const li = el("li");
      li.append(el("strong", "", d.topic), el("span", "muted", ` ${d.partition}@${d.offset} from ${d.source}`),
                el("div", "", d.error || "(no reason given)"));
      return li;
    }));
    byId("dlq-empty").hidden = dead.recent.length > 0;
  }

  // -- one message of the stream (or one poll) -----------------------------------------------

  function render(state) {
    if (!state.since) orders.clear(); // a whole state, not a diff
    for (const order of state.orders) orders.set(order.order_id, order);
    const held = new Set(state.order_ids);
    for (const id of orders.keys()) if (!held.has(id)) orders.delete(id);
    renderOrders(state.order_ids.map((id) => orders.get(id)).filter(Boolean));

    const store = state.store || {};
    const counted = store.ready || !store.running; // the store's counts, or a view without a store
    const c = state.counts;
    setTile("received", counted ? c.received : null);
    setTile("confirmed", counted ? c.confirmed : null);
    setTile("rejected", counted ? c.rejected : null);
    setTile("emails-sent", counted ? c.emails_sent : null);
    setTile("emails-failed", counted ? c.emails_failed : null);
    const storeDown = store.running && !store.connected && store.error;
    const problem = byId("store-problem");
    setText(problem, storeDown ? `Store unavailable: the order store cannot be read (${store.error}). `
      + (store.ready ? "Counts and orders are as last read." : "Counts and orders come once it can.") : null);
    problem.hidden = !storeDown;
    const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
    setTile("revenue", money(state.totals.revenue), `over ${plural(state.totals.orders, "confirmed order")}`);
    setTile("aov", money(state.totals.average_order_value), "per confirmed order");
    setTile("today", state.today ? money(state.today.revenue) : null,
            state.today ? `${plural(state.today.orders, "order")}, ${state.today.day}` : "");
    renderPerDay(state.totals.per_day);
    renderLag(state.lag || {});
    renderDeadLetters(state.dead_letters);
    if (window.OrderflowCharts) window.OrderflowCharts.update(state.charts);

    const feed = state.feed || {};
    const how = live.mode === "stream" ? "live" : "live (polling)";
    if (storeDown) setFeed("store unavailable", "down", store.error);
    else if (feed.connected) setFeed(how, "live");
    else setFeed("waiting for Kafka", "waiting", feed.error);
    setText(byId("updated-at"), new Date().toLocaleTimeString());
    live.messages += 1;
    live.version = state.version;
  }

  // -- transport: stream first, polling as the fallback ----------------------------------------

  let pollTimer = null;
  let source = null;

  async function poll() {
    try {
      const response = await fetch(stateUrl, { cache: "no-store", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
    } catch (error) {
      setFeed("dashboard unreachable", "down", String(error));
    } finally {
      if (live.mode === "polling") pollTimer = window.setTimeout(poll, refreshMs);
    }
  }

  function startPolling(reason) {
    live.fallback = reason;
    if (live.mode !== "polling") {
      live.mode = "polling";
      poll();
    }
    window.setTimeout(connect, 30000); // try the stream again later
  }

  function connect() {
    if (!("EventSource" in window)) return startPolling("no EventSource");
    if (source) source.close();
    source = new EventSource(streamUrl);
    source.addEventListener("state", (event) => {
      if (live.mode !== "stream") {
        live.mode = "stream";
        window.clearTimeout(pollTimer);
      }
      render(JSON.parse(event.data));
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        source.close(); // refused (e.g. 503: too many streams): poll instead
        startPolling("stream refused");
      } else if (live.mode === "stream") {
        setFeed("reconnecting…", "waiting"); // EventSource retries by itself
      }
    };
  }

  connect();
})();
