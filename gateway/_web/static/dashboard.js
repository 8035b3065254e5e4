// Reloads the live part of the dashboard every few seconds (the server renders it; this only
// swaps it in). It waits while the operator is typing into one of its forms.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.getAttribute("data-refresh-url");
  var seconds = parseInt(live.getAttribute("data-refresh-seconds"), 10) || 5;

  function busy() {
    // A form control in focus (the page's #waiting anchor may hold the focus too: that is no reason).
    var active = document.activeElement;
    if (active && live.contains(active) && active.closest("form")) { return true; }
    var inputs = live.querySelectorAll("input:not([type=hidden])");
    for (var i = 0; i < inputs.length; i++) { if (inputs[i].value) { return true; } }
    return false;
  }

  function refresh() {
    if (busy()) { return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) { if (html !== null && !busy()) { live.innerHTML = html; } })
      .catch(function () { /* the daemon is restarting: try again at the next tick */ });
  }

  window.setInterval(refresh, seconds * 1000);
})();
