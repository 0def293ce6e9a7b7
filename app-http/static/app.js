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
      if (typeof msg.html === "string") { el.innerHTML = msg.html; localTimes(el); copy(); countdowns(); }
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

  // Times: <time datetime> shown in the agent's own time zone (the server only knows UTC).
  function localTimes(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    Array.prototype.forEach.call(times, function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      try {
        t.textContent = d.toLocaleString(undefined, {
          year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
        });
      } catch (e) { /* keep the UTC text */ }
    });
  }

  // Countdowns: a pending push and a live grant count down every second.
  function countdowns() {
    var started = Date.now();
    var els = document.querySelectorAll(".countdown[data-seconds]");
    Array.prototype.forEach.call(els, function (el) {
      el.setAttribute("data-start", String(parseInt(el.getAttribute("data-seconds"), 10) || 0));
    });
    if (!els.length) return;
    var timer = setInterval(function () {
      var live = document.querySelectorAll(".countdown[data-start]");
      if (!live.length) { clearInterval(timer); return; }
      Array.prototype.forEach.call(live, function (el) {
        var left = Math.max(0, parseInt(el.getAttribute("data-start"), 10) - Math.floor((Date.now() - started) / 1000));
        el.textContent = Math.floor(left / 60) + " min " + (left % 60) + " s";
      });
    }, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    live();
    copy();
    secretOnce();
    localTimes();
    countdowns();
  });
})();
