// Reloads the page while something on it is still on its way (a card Stripe's webhook has not
// attached yet, a step the projection has not caught up with): an element marked
// `data-pending` (its value: seconds between reloads, 3 if empty) keeps the page reloading,
// at most MAX_RELOADS times in a row for one address. Every page includes it (base.html);
// without the element it does nothing.
(function () {
  "use strict";
  var MAX_RELOADS = 10;
  var key = "pending-reloads:" + location.pathname + location.search;
  var store;
  try {
    store = window.sessionStorage;
  } catch (e) {
    return; // no storage, no count: no reloads (the page's own link still refreshes)
  }
  var pending = document.querySelector("[data-pending]");
  if (!pending) {
    store.removeItem(key); // arrived: the next wait counts from zero
    return;
  }
  var done = Number(store.getItem(key) || 0);
  if (done >= MAX_RELOADS) return;
  var seconds = Number(pending.getAttribute("data-pending")) || 3;
  window.setTimeout(function () {
    store.setItem(key, String(done + 1));
    location.reload();
  }, Math.max(1, seconds) * 1000);
})();
