// Swagger UI over this API's own OpenAPI document; everything is served by the API itself.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
