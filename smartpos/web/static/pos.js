// smartpos cashier app: the small parts that run in the browser. Nothing here holds state
// that matters (the cart lives on the server); nothing is loaded from the internet.
(function () {
  "use strict";

  // Every htmx request carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (ev) {
    var csrf = document.body.dataset.csrf;
    if (csrf) ev.detail.headers["X-CSRF-Token"] = csrf;
  });

  // Keyboard-wedge scanner: told from typing by key timing (as Odoo's barcode service:
  // keys at most SCAN_GAP_MS apart, Enter or Tab ends the scan, at least SCAN_MIN chars).
  // Prefix and suffix characters the scanner is set to send are stripped (data-scan-prefix /
  // data-scan-suffix on <body>). A scan in an input field is taken out of the field again.
  var SCAN_GAP_MS = 50, SCAN_MIN = 4;
  var buf = "", last = 0, startField = null, startValue = "";
  function strip(code) {
    var pre = document.body.dataset.scanPrefix || "", suf = document.body.dataset.scanSuffix || "";
    if (pre && code.indexOf(pre) === 0) code = code.slice(pre.length);
    if (suf && code.slice(-suf.length) === suf) code = code.slice(0, -suf.length);
    return code;
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
    var now = performance.now();
    if (now - last > SCAN_GAP_MS) {
      buf = "";
      startField = ev.target && ev.target.tagName === "INPUT" ? ev.target : null;
      startValue = startField ? startField.value : "";
    }
    last = now;
    if (ev.key === "Enter" || ev.key === "Tab") {
      if (buf.length >= SCAN_MIN) {
        ev.preventDefault();
        var code = strip(buf);
        buf = "";
        if (startField && !startField.hasAttribute("data-wedge")) startField.value = startValue;
        document.dispatchEvent(new CustomEvent("pos:scan", { detail: { code: code, field: startField } }));
      }
      return;
    }
    if (ev.key.length === 1) buf += ev.key;
  }, true);

  // The self-test screen: a scan proves the scanner works.
  document.addEventListener("pos:scan", function (ev) {
    var check = document.getElementById("scanner-check");
    if (!check) return;
    check.className = "check ok";
    check.dataset.status = "ok";
    check.querySelector(".mark").textContent = "✔";
    var detail = check.querySelector(".detail");
    detail.textContent = detail.dataset.ok + ": " + ev.detail.code;
  });

  window.smartpos = { strip: strip };
})();
