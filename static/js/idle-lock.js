// Idle lock (ONC 170.315(d)(5)): after the practice's idle timeout without
// keyboard, mouse, touch or scrolling, go to the lock screen. The server locks
// the session on its own too; this only makes the screen lock on time while
// nobody sends a request. Activity is shared between tabs through
// localStorage, so working in one tab keeps the others open.
(function () {
  "use strict";

  var body = document.body;
  var idleMs = Number(body.dataset.idleSeconds) * 1000;
  var lockUrl = body.dataset.lockUrl;
  if (!idleMs || !lockUrl) {
    return;
  }
  var aliveUrl = body.dataset.aliveUrl;
  var KEY = "pfcore-last-activity";
  var SHARE_EVERY_MS = 5000;
  // Someone typing a long note sends no request: tell the server they are
  // still there, so what they type is not lost to a server-side lock.
  var ALIVE_EVERY_MS = 60000;
  var lastAlive = Date.now();
  var CHECK_EVERY_MS = 1000;
  var lastActivity = Date.now();
  var lastShared = 0;

  function sharedActivity() {
    try {
      return Number(window.localStorage.getItem(KEY)) || 0;
    } catch (e) {
      return 0;
    }
  }

  function share(now) {
    lastShared = now;
    try {
      window.localStorage.setItem(KEY, String(now));
    } catch (e) {
      // Storage off (private mode): this tab keeps its own timer.
    }
  }

  function onActivity() {
    lastActivity = Date.now();
    if (lastActivity - lastShared >= SHARE_EVERY_MS) {
      share(lastActivity);
    }
    if (aliveUrl && lastActivity - lastAlive >= ALIVE_EVERY_MS) {
      lastAlive = lastActivity;
      window.fetch(aliveUrl, { credentials: "same-origin", cache: "no-store" }).catch(function () {});
    }
  }

  function lock() {
    var here = window.location.pathname + window.location.search;
    window.location.assign(lockUrl + "?next=" + encodeURIComponent(here));
  }

  function check() {
    var latest = Math.max(lastActivity, sharedActivity());
    if (Date.now() - latest >= idleMs) {
      window.clearInterval(timer);
      lock();
    }
  }

  ["keydown", "mousedown", "touchstart", "scroll"].forEach(function (name) {
    window.addEventListener(name, onActivity, { passive: true, capture: true });
  });
  share(lastActivity);
  var timer = window.setInterval(check, CHECK_EVERY_MS);
})();
