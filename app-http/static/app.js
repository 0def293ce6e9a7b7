// fctr portal: live challenge status (server-sent events), copy button, one-time secret hygiene.
// First-party, no inline script (CSP script-src 'self').
(function () {
  "use strict";

  function live() {
    var el = document.getElementById("live");
    if (!el || !window.EventSource || el.getAttribute("data-done") === "true") return;
    var es = new EventSource(el.getAttribute("data-events"));
    es.addEventListener("status", function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (typeof msg.html === "string") el.innerHTML = msg.html;
      if (msg.done) { el.setAttribute("data-done", "true"); es.close(); }
    });
    es.onerror = function () {
      if (el.getAttribute("data-done") === "true") es.close();
    };
  }

  function copy() {
    var buttons = document.querySelectorAll("[data-copy]");
    Array.prototype.forEach.call(buttons, function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        var src = document.getElementById(b.getAttribute("data-copy"));
        if (!src || !navigator.clipboard) return;
        navigator.clipboard.writeText(src.textContent).then(function () {
          b.textContent = "Copied";
        });
      });
    });
  }

  function secretOnce() {
    // A reload must not re-submit the action or show the secret again: point history at the caller card.
    var s = document.querySelector(".secret[data-return]");
    if (s && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", s.getAttribute("data-return"));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    live();
    copy();
    secretOnce();
  });
})();
