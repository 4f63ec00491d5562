// Keyboard focus after an htmx swap (WCAG 2.4.3, focus order). When a swap
// replaces the element that had focus (the button of a row or panel that
// answers with a new row or panel), the browser drops focus to <body> and a
// keyboard user starts again at the top of the page. Put focus on what was
// swapped in instead, so the next Tab goes on from there. An element marked
// autofocus in the new content wins: htmx focuses it before this runs.
(function () {
  "use strict";

  var hadFocus = false;

  function focused() {
    var active = document.activeElement;
    return Boolean(active) && active !== document.body;
  }

  document.addEventListener("htmx:before:swap", function () {
    hadFocus = focused();
  });

  document.addEventListener("htmx:after:swap", function (event) {
    var lost = hadFocus && !focused();
    hadFocus = false;
    var swapped = event.target;
    if (!lost || !(swapped instanceof HTMLElement) || !swapped.isConnected || swapped === document.body) {
      return;
    }
    if (!swapped.hasAttribute("tabindex")) {
      swapped.setAttribute("tabindex", "-1");
    }
    swapped.focus({ preventScroll: true });
  });
})();
