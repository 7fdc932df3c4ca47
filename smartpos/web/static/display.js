// The customer display: shows what the till publishes (server-sent events). The server
// sends the text already formatted in the display's language (amounts included).
(function () {
  "use strict";
  var root = document.getElementById("customer");
  var lines = document.getElementById("customer-lines");
  var total = document.getElementById("customer-total");
  var label = document.getElementById("customer-total-label");
  var state = document.getElementById("customer-state");
  function show(ev) {
    lines.textContent = "";
    (ev.lines || []).forEach(function (l) {
      var li = document.createElement("li");
      var name = document.createElement("span"); name.textContent = l.name + (l.qty > 1 ? " × " + l.qty : "");
      var amount = document.createElement("span"); amount.textContent = l.total;
      li.appendChild(name); li.appendChild(amount); lines.appendChild(li);
    });
    label.textContent = ev.total ? root.dataset.totalLabel : root.dataset.welcome;
    total.textContent = ev.total || "";
    var words = { paying: root.dataset.paying, approved: root.dataset.approved, declined: root.dataset.declined };
    state.textContent = (words[ev.state] || "") + (ev.change ? " · " + root.dataset.change + " " + ev.change : "");
    state.className = "customer-state " + (ev.state || "");
    root.dataset.state = ev.state || "idle";
  }
  var source = new EventSource("/display/events");
  source.onmessage = function (m) { show(JSON.parse(m.data)); };
})();
