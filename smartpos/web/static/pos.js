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
        if (startField && startField.hasAttribute("data-wedge")) {
          // A card reader's field (data-wedge): the swipe stays in it and is sent at once.
          if (startField.form) startField.form.requestSubmit();
          return;
        }
        if (startField) startField.value = startValue;
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

  // The sell screen's keypad: digits typed as on a calculator, in fen (no decimal point to
  // get wrong: "1234" is 12.34).
  var keyed = "";
  function showKeyed() {
    var out = document.getElementById("keyed"), hidden = document.getElementById("amount_minor");
    if (!out) return;
    var minor = parseInt(keyed || "0", 10);
    out.textContent = (Math.floor(minor / 100)) + "." + String(minor % 100).padStart(2, "0");
    hidden.value = String(minor);
  }
  document.addEventListener("click", function (ev) {
    var key = ev.target.closest("#keypad .key[data-key]");
    if (key) {
      var k = key.dataset.key;
      if (k === "C") keyed = "";
      else if (keyed.length < 9) keyed = (keyed + k).replace(/^0+/, "");
      showKeyed();
      return;
    }
    var quick = ev.target.closest("[data-fill]");
    if (quick) {
      var field = document.querySelector(quick.dataset.fill);
      if (field) { field.value = quick.dataset.value; field.focus(); }
      return;
    }
    var chip = ev.target.closest(".categories .chip");
    if (chip) {
      document.querySelectorAll(".categories .chip").forEach(function (c) { c.classList.remove("current"); });
      chip.classList.add("current");
      var cat = document.getElementById("category");
      if (cat) cat.value = chip.dataset.category;
    }
  });
  document.addEventListener("htmx:afterRequest", function (ev) {
    if (ev.detail.elt && ev.detail.elt.id === "add-amount" && ev.detail.successful) { keyed = ""; showKeyed(); }
  });

  // On the sell screen a scan adds the product (or reports the unknown code in the cart).
  document.addEventListener("pos:scan", function (ev) {
    if (!document.body.classList.contains("sell") || document.querySelector("#overlay .dialog")) return;
    htmx.ajax("POST", "/sell/scan", { target: "#cart", values: { code: ev.detail.code } });
  });

  // The idle lock: the server locks a session idle for the configured minutes whatever the
  // page does; this only takes the screen there without waiting for the next tap.
  var idleMinutes = parseFloat(document.body.dataset.idleMinutes || "0"), idleTimer = null;
  function idleReset() {
    if (!idleMinutes) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(function () { window.location.assign("/lock"); }, idleMinutes * 60000 + 1000);
  }
  ["click", "keydown", "touchstart"].forEach(function (t) { document.addEventListener(t, idleReset, true); });
  idleReset();

  // A locked or ended session answers an htmx request with where to go.
  document.addEventListener("htmx:beforeSwap", function (ev) {
    if (ev.detail.xhr.status === 422 || ev.detail.xhr.status === 409 || ev.detail.xhr.status === 403) {
      ev.detail.shouldSwap = true; ev.detail.isError = false;
    }
  });

  window.smartpos = { strip: strip };
})();
