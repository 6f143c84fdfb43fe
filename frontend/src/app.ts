// Shared behaviour of every server-rendered page: htmx for partial updates, and two small
// progressive enhancements. Pages work without JavaScript; this only makes them smoother.
import htmx from "htmx.org";
import "./wallboard"; // the live wallboard: starts only on a page with #wallboard
import "./portal_live"; // a client's live page: starts only on a page with #portal-live
import "./agent"; // the agents' call console: starts only on a page with #agent-console

declare global {
  interface Window {
    htmx: typeof htmx;
  }
}
window.htmx = htmx;

// <select data-autosubmit>: submit its form on change (the language switcher).
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.dataset.autosubmit !== undefined) {
    target.form?.requestSubmit();
  }
});

// <button data-confirm="...">: ask before a destructive action.
document.addEventListener("click", (event) => {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return;
  const button = target.closest<HTMLElement>("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm ?? "")) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
});
