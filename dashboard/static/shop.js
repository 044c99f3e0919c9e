// The shop page: a basket from the catalogue and a form that sends POST /order to the orders API
// (CORS), then shows the created order or the API's validation errors next to their fields.
// User data only ever goes through textContent / value / href, never innerHTML.
(() => {
  "use strict";

  const { el, money } = window.Orderflow;
  const api = document.body.dataset.ordersApi;
  const orderPage = document.body.dataset.dashboardOrderUrl;
  const form = document.getElementById("order-form");
  const byId = (id) => document.getElementById(id);
  const quantities = [...form.querySelectorAll("input[data-product]")];

  const cents = (price) => Math.round(Number(price) * 100); // catalogue prices have two decimals
  const asMoney = (c) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, "0")}`;

  function chosen() {
    return quantities
      .map((input) => ({ input, quantity: Number(input.value) }))
      .filter((c) => c.input.value.trim() !== "" && c.quantity !== 0);
  }

  function renderBasket() {
    let total = 0;
    const lines = chosen().map(({ input, quantity }) => {
      const valid = Number.isInteger(quantity) && quantity > 0;
      if (valid) total += cents(input.dataset.price) * quantity;
      const li = el("li");
      li.append(el("span", "", `${input.dataset.product} × ${input.value}`),
                el("span", "", valid ? money(asMoney(cents(input.dataset.price) * quantity)) : "?"));
      return li;
    });
    byId("basket").replaceChildren(...lines);
    byId("basket-empty").hidden = lines.length > 0;
    byId("basket-total").textContent = money(asMoney(total));
  }

  function clearErrors() {
    for (const p of form.querySelectorAll(".field-error")) {
      p.hidden = true;
      p.textContent = "";
    }
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    byId("form-error").hidden = true;
  }

  function showError(key, message) {
    const slot = form.querySelector(`[data-error-for="${key}"]`);
    if (!slot) return false;
    slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
    slot.hidden = false;
    const input = form.querySelector(`[name="${key}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
    return true;
  }

  function formError(message) {
    const box = byId("form-error");
    box.textContent = message;
    box.hidden = false;
  }

  // An API field path ("order_details.items.0.quantity", "payment.card_number") -> a field of this form.
  function fieldFor(path, sent) {
    const parts = path.split(".");
    if (parts[0] === "order_details" && parts[1] === "items" && parts.length > 2) {
      const line = sent[Number(parts[2])];
      return line ? line.input.name : "items";
    }
    if (parts[0] === "order_details") return "items";
    if (parts[0] === "payment") return parts[1] || "card_number";
    return parts[0];
  }

  function body(lines) {
    const order = {
      user_id: form.user_id.value.trim(),
      user_email: form.user_email.value.trim(),
      order_details: { items: lines.map(({ input, quantity }) => ({
        product: input.dataset.product, quantity, unit_price: input.dataset.price })) },
    };
    const card = form.card_number.value.trim();
    const expiry = form.expiry.value.trim();
    if (card || expiry) order.payment = { card_number: card, expiry };
    return order;
  }

  function showCreated(order) {
    byId("result-id").textContent = order.order_id;
    byId("result-total").textContent = `${money(order.total)} ${order.order_details.currency || ""}`.trim();
    byId("result-link").href = orderPage.replace("ORDER_ID", encodeURIComponent(order.order_id));
    byId("result").hidden = false;
    byId("result").dataset.orderId = order.order_id;
    byId("result").dataset.total = order.total;
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    byId("result").hidden = true;
    const lines = chosen();
    const button = byId("place-order");
    button.disabled = true;
    try {
      const headers = { "Content-Type": "application/json", Accept: "application/json" };
      const key = byId("api_key").value.trim();
      if (key) headers.Authorization = `Bearer ${key}`;
      const response = await fetch(`${api}/order`, { method: "POST", headers, body: JSON.stringify(body(lines)) });
      const answer = await response.json().catch(() => ({}));
      if (response.status === 201 || response.status === 200) {
        showCreated(answer);
        for (const input of quantities) input.value = "0";
        renderBasket();
      } else if (response.status === 422 && Array.isArray(answer.details)) {
        const unplaced = answer.details.filter((d) => !showError(fieldFor(d.field, lines), d.message));
        if (unplaced.length) formError(unplaced.map((d) => `${d.field}: ${d.message}`).join(" · "));
      } else if (response.status === 429) {
        const wait = Number(response.headers.get("Retry-After")) || 1;
        formError(`That was a lot of orders in a short time. Please wait ${wait} second${wait === 1 ? "" : "s"} `
          + "and place this one again; nothing was ordered yet.");
      } else if (response.status === 401) {
        formError("This shop asks for an API key: enter yours under \"API key\" and place the order again.");
      } else {
        const wait = response.headers.get("Retry-After");
        formError(`${answer.message || answer.error || `HTTP ${response.status}`}${wait ? ` (try again in ${wait} s)` : ""}`);
      }
    } catch (error) {
      formError(`The orders API at ${api} could not be reached (${error.message}).`);
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("input", renderBasket);
  form.addEventListener("submit", submit);
  renderBasket();
})();
