// ferryman dashboard: the little it does in the browser (the pages work without it).
// - forms with data-confirm ask first; a select with data-autosubmit submits its form;
// - <time datetime> shows the moment in the browser's time zone;
// - a page with data-refresh="N" reloads every N seconds unless the user is typing.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  document.addEventListener("change", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-autosubmit")) {
      event.target.form.submit();
    }
  });
  function localTimes() {
    var nodes = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var moment = new Date(nodes[i].getAttribute("datetime"));
      if (!isNaN(moment.getTime())) {
        nodes[i].title = nodes[i].getAttribute("datetime");
        nodes[i].textContent = moment.toLocaleString();
      }
    }
  }
  function autoRefresh() {
    var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
    if (!seconds) { return; }
    window.setInterval(function () {
      var active = document.activeElement;
      var typing = active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
      var written = Array.prototype.some.call(document.querySelectorAll("textarea"), function (t) {
        return t.value !== "";
      });
      if (!typing && !written) { window.location.reload(); }
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(); autoRefresh(); });
})();
