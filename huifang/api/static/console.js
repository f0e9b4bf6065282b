// SLA countdowns: an element with data-remaining (milliseconds left when the server rendered
// the page, by the server's clock) counts down live from there, in the page's words for hours
// and minutes (data-hours, data-minutes).
(function () {
  var loaded = Date.now();
  function format(ms, el) {
    var s = Math.abs(ms) / 1000, h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var hours = el.dataset.hours || "h", minutes = el.dataset.minutes || "m";
    var text = (h ? h + " " + hours + " " : "") + m + " " + minutes;
    return ms < 0 ? el.dataset.late + " " + text : text + " " + el.dataset.left;
  }
  function tick() {
    document.querySelectorAll("[data-remaining]").forEach(function (el) {
      var ms = Number(el.dataset.remaining) - (Date.now() - loaded);
      el.textContent = format(ms, el);
      el.classList.toggle("bad", ms < 0);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 30000); });
  document.addEventListener("htmx:afterSwap", tick);
})();

// A form with data-confirm asks before it is sent (starting a campaign, finishing it).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
