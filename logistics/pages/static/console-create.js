// The console's created page: wait for the carrier order, then offer the label. Our own script, no libraries.
(function () {
  "use strict";
  var card = document.getElementById("label");
  if (!card) return;
  var statusUrl = card.getAttribute("data-status");
  var tries = 0;
  function show(id, on) { document.getElementById(id).hidden = !on; }
  function check() {
    tries += 1;
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.status) document.getElementById("created-status").textContent = s.status;
        if (s.ready) {
          document.getElementById("label-waybill").textContent = s.waybill_no;
          show("label-waiting", false);
          show("label-ready", true);
        } else if (s.failed) {
          document.getElementById("label-failed").textContent = "未能下单（" + s.status + "），请打开邮件详情查看原因。";
          show("label-waiting", false);
          show("label-failed", true);
        } else if (tries < 150) {
          setTimeout(check, 2000);
        }
      })
      .catch(function () { if (tries < 150) setTimeout(check, 5000); });
  }
  check();
})();
