// The order pages' behaviours (loaded with defer; the pages work without them).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // The kommune chooser: typing in the search field narrows the list at once (without
  // JavaScript the Search button asks the server). Ticked kommuner always stay visible.
  const chooser = document.querySelector("[data-kommune-chooser]");
  if (chooser) {
    const search = chooser.querySelector("input[type=text], input[type=search]");
    const options = Array.from(chooser.querySelectorAll(".choices > .ds-field"));
    const filter = () => {
      const term = search.value.trim().toLowerCase();
      for (const option of options) {
        const box = option.querySelector("input");
        const label = option.textContent.toLowerCase();
        option.hidden = term !== "" && !box.checked && !label.includes(term);
      }
    };
    if (search) {
      search.addEventListener("input", filter);
      search.addEventListener("keydown", (event) => {
        if (event.key === "Enter") event.preventDefault(); // filtered already: no round trip
      });
      filter();
    }
  }

  // "Copy" buttons of the try-it commands (hidden without JavaScript).
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(source.innerText);
      button.setAttribute("aria-live", "polite");
      button.dataset.copied = "true";
    });
  }
});
