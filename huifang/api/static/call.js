// A live click-to-call on the case page: polls the call's state (a small JSON endpoint) and
// shows where the line is, until it ends; the agent then records the outcome in the form.
(function () {
  var panel = document.getElementById("call-panel");
  if (!panel) return;
  var line = document.getElementById("call-line");
  var elapsed = document.getElementById("call-elapsed");
  var started = Date.parse(elapsed.dataset.started);
  var timer = null;
  function showElapsed() {
    var s = Math.max(0, Math.floor((Date.now() - started) / 1000));
    elapsed.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function poll() {
    fetch(panel.dataset.callState, { credentials: "same-origin", cache: "no-store" })
      .then(function (reply) { return reply.ok ? reply.json() : null; })
      .then(function (state) {
        if (!state) return;
        line.textContent = state.label;
        line.dataset.line = state.line;
        panel.dataset.live = state.live ? "1" : "0";
        if (!state.live) { clearInterval(timer); showElapsed(); }
      })
      .catch(function () { /* the next poll tries again */ });
  }
  showElapsed();
  poll();
  timer = setInterval(function () { showElapsed(); poll(); }, 1500);
})();
