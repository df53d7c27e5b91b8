// Approvals: a "select all on this page" button for the list's checkboxes. The page works
// without it (each box is chosen by hand); the button stays hidden until this script runs.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-select-all]")) {
    const boxes = () => button.form.querySelectorAll(`input[type="checkbox"][name="${button.dataset.selectAll}"]`);
    button.hidden = false;
    button.addEventListener("click", () => {
      const all = boxes();
      const check = Array.from(all).some((box) => !box.checked);
      for (const box of all) box.checked = check;
    });
  }
});
