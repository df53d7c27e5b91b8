// Tilgang's few behaviours for every page (loaded with defer; no inline script anywhere).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A form that came back with errors: move focus to its summary, so the person hears it first.
  const summary = document.querySelector("[data-error-summary]");
  if (summary) summary.focus();
});
