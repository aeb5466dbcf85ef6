// Staff scanning page. Every scan is first written to an offline queue in localStorage with a scan_id made
// on this device, then uploaded; it leaves the queue only once the server has answered for that scan_id.
// A resend (lost answer, reconnect, two tabs) is harmless: the server answers a known scan_id with its
// stored answer and records nothing twice.
"use strict";

(function () {
  const KEY_TOKEN = "staff.token";
  const KEY_PROFILE = "staff.profile";
  const KEY_QUEUE = "staff.queue";
  const KEY_LOG = "staff.log";
  const BATCH = 100;
  const LOG_SIZE = 50;

  const $ = (id) => document.getElementById(id);
  const load = (key, fallback) => {
    try {
      const value = JSON.parse(localStorage.getItem(key));
      return value === null ? fallback : value;
    } catch (e) {
      return fallback;
    }
  };
  const save = (key, value) => localStorage.setItem(key, JSON.stringify(value));

  function newScanId() {
    // crypto.getRandomValues works on plain http too (randomUUID needs a secure context).
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "dev-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const ACTION_TEXT = { pickup: "揽收", arrive: "到达", deliver: "投递签收", fail: "投递未成功", returned: "退件签收" };
  // A 交接清单's QR code: {base}/m/{code} (logistics/domain/manifests.py); one pickup scan takes all its parcels.
  const MANIFEST = /\/m\/[A-Za-z0-9_-]{20,64}\/?(\?.*)?$/;
  const isManifest = (code) => MANIFEST.test((code || "").trim());
  let flushing = false;
  let again = false;
  let offline = !navigator.onLine;

  function token() {
    return localStorage.getItem(KEY_TOKEN) || "";
  }

  function headers() {
    return { Authorization: "Bearer " + token(), "Content-Type": "application/json", Accept: "application/json" };
  }

  function setOffline(value) {
    offline = value;
    $("offline-banner").classList.toggle("hidden", !value);
  }

  // Sign-in

  async function fetchProfile(candidate) {
    const resp = await fetch("/v1/staff/me", { headers: { Authorization: "Bearer " + candidate } });
    if (resp.status === 401) return null;
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    return resp.json();
  }

  function showApp(profile) {
    $("signin").classList.add("hidden");
    $("app").classList.remove("hidden");
    const role = profile.role === "clerk" ? "窗口人员" : "投递员";
    $("who").textContent = profile.name + "（" + role + "）· " + profile.departments.join("、");
    const reason = $("reason");
    reason.textContent = "";
    const blank = document.createElement("option");
    blank.value = "";
    blank.textContent = "请选择（仅“投递未成功”需要）";
    reason.appendChild(blank);
    for (const [code, text] of Object.entries(profile.failure_reasons || {})) {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = code + " " + text;
      reason.appendChild(option);
    }
    for (const button of document.querySelectorAll("button[data-action]")) {
      button.classList.toggle("hidden", !profile.actions.includes(button.dataset.action));
    }
    renderLog();
    flush();
  }

  function showSignIn(message) {
    $("app").classList.add("hidden");
    $("signin").classList.remove("hidden");
    const error = $("signin-error");
    error.textContent = message || "";
    error.classList.toggle("hidden", !message);
  }

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = $("token").value.trim();
    if (!candidate) return showSignIn("请输入员工令牌");
    try {
      const profile = await fetchProfile(candidate);
      if (!profile) return showSignIn("令牌无效或已停用，请联系管理员");
      localStorage.setItem(KEY_TOKEN, candidate);
      save(KEY_PROFILE, profile);
      $("token").value = "";
      showApp(profile);
    } catch (e) {
      showSignIn("网络不通，请联网后再登录");
    }
  });

  $("signout").addEventListener("click", (event) => {
    event.preventDefault();
    if (load(KEY_QUEUE, []).length && !confirm("还有未上传的扫描，退出后它们会在下次登录时上传。确定退出？")) return;
    localStorage.removeItem(KEY_TOKEN);
    showSignIn("");
  });

  // The local record of scans (queued, accepted, refused)

  function remember(entry) {
    const log = load(KEY_LOG, []).filter((e) => e.scan_id !== entry.scan_id);
    const { verification_code, ...kept } = entry; // the 取件验证码 is sent once, never kept in the record
    log.unshift(kept);
    save(KEY_LOG, log.slice(0, LOG_SIZE));
  }

  function renderLog() {
    const list = $("results");
    list.textContent = "";
    const queue = load(KEY_QUEUE, []);
    $("queue-count").textContent = "待上传 " + queue.length;
    const queued = new Set(queue.map((s) => s.scan_id));
    for (const entry of load(KEY_LOG, [])) {
      const li = document.createElement("li");
      const state = queued.has(entry.scan_id) ? "queued" : entry.ok ? "ok" : "error";
      li.className = state;
      li.dataset.scanId = entry.scan_id;
      const head = document.createElement("b");
      head.textContent = isManifest(entry.code)
        ? "交接清单 · " + (ACTION_TEXT[entry.action] || entry.action)
        : (ACTION_TEXT[entry.action] || entry.action) + " · " + entry.code;
      const body = document.createElement("div");
      body.textContent = state === "queued" ? "待上传（离线保存）" : entry.message;
      const when = document.createElement("div");
      when.className = "muted";
      when.textContent = new Date(entry.scanned_at).toLocaleString("zh-CN", { hour12: false });
      li.append(head, body);
      if (entry.manifest && state !== "queued") li.append(manifestDetails(entry.manifest));
      li.append(when);
      list.appendChild(li);
    }
  }

  // A manifest scan's answer: how many were picked up, and each parcel that had already moved on.
  function manifestDetails(m) {
    const box = document.createElement("div");
    box.className = "manifest-result";
    const count = document.createElement("div");
    count.className = "manifest-count";
    count.textContent = "本次揽收 " + m.picked_up + " 件 / 清单共 " + m.count + " 件";
    box.appendChild(count);
    if (m.already_moved.length) {
      const title = document.createElement("div");
      title.textContent = "以下 " + m.already_moved.length + " 件此前已揽收或已不在待揽收状态，未重复登记：";
      const list = document.createElement("ul");
      list.className = "moved";
      for (const item of m.already_moved) {
        const li = document.createElement("li");
        li.textContent = item.waybill_no + " · " + item.case_no + " · " + item.status_text;
        list.appendChild(li);
      }
      box.append(title, list);
    }
    return box;
  }

  // Upload

  async function flush() {
    if (!token()) return;
    if (flushing) {
      again = true;
      return;
    }
    flushing = true;
    try {
      do {
        again = false;
        const queue = load(KEY_QUEUE, []);
        if (!queue.length) break;
        const batch = queue.slice(0, BATCH).map(({ action, code, scan_id, scanned_at, location, reason_code, verification_code }) => ({
          action, code, scan_id, scanned_at, location, reason_code, verification_code,
        }));
        let resp;
        try {
          resp = await fetch("/v1/scans", { method: "POST", headers: headers(), body: JSON.stringify({ scans: batch }) });
        } catch (e) {
          setOffline(true);
          break;
        }
        if (resp.status === 401) {
          showSignIn("令牌已失效，请重新登录（未上传的扫描仍保存在本机）");
          break;
        }
        if (!resp.ok) break; // the service is busy or down: the queue waits for the next try
        setOffline(false);
        const body = await resp.json();
        const answered = new Set();
        for (const result of body.results) {
          if (!result.scan_id) continue;
          answered.add(result.scan_id);
          const sent = batch.find((s) => s.scan_id === result.scan_id) || {};
          remember({ ...sent, ok: result.ok, message: describe(result), manifest: result.manifest || null });
        }
        // Re-read: scans queued while the request was in flight must stay.
        save(KEY_QUEUE, load(KEY_QUEUE, []).filter((s) => !answered.has(s.scan_id)));
        renderLog();
        if (answered.size < batch.length) break; // something odd: do not spin
        if (load(KEY_QUEUE, []).length) again = true;
      } while (again);
    } finally {
      flushing = false;
      renderLog();
    }
  }

  function describe(result) {
    const parcel = result.shipment;
    if (!result.ok) return result.message;
    if (result.manifest) return result.manifest.taken_over_by + " 已接收“" + result.manifest.department + "”的交接清单";
    if (!parcel) return result.message;
    const who = parcel.recipient ? parcel.recipient.name : "";
    return result.message + " · " + parcel.status_text + (who ? " · 收件人 " + who : "") + " · 下一步：" + parcel.next_action_text;
  }

  function record(action) {
    const code = $("code").value.trim();
    if (!code) {
      $("parcel").textContent = "请先扫描或输入单号";
      $("code").focus();
      return;
    }
    const reason = $("reason").value;
    if (action === "fail" && !reason) {
      $("parcel").textContent = "请选择未妥投原因";
      $("reason").focus();
      return;
    }
    const scan = {
      scan_id: newScanId(),
      code,
      action,
      scanned_at: new Date().toISOString(),
      location: $("location").value.trim() || null,
      reason_code: action === "fail" ? reason : null,
      verification_code: action === "deliver" ? $("verification").value.trim() || null : null,
    };
    const queue = load(KEY_QUEUE, []);
    queue.push(scan);
    save(KEY_QUEUE, queue);
    remember({ ...scan, ok: null, message: "待上传" });
    $("code").value = "";
    $("verification").value = "";
    $("parcel").textContent = "";
    renderLog();
    flush();
  }

  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => record(button.dataset.action));
  }

  // What a code is, before choosing an action (online only; offline the scan is simply queued)

  let lookupTimer = null;
  $("code").addEventListener("input", () => {
    clearTimeout(lookupTimer);
    lookupTimer = setTimeout(lookup, 400);
  });

  async function lookup() {
    const code = $("code").value.trim();
    const target = $("parcel");
    if (!code || offline) return;
    try {
      const resp = await fetch("/v1/scans/lookup?code=" + encodeURIComponent(code), { headers: headers() });
      const body = await resp.json();
      if (code !== $("code").value.trim()) return;
      if (resp.status === 429) {
        target.textContent = "查询过于频繁，请稍后再试（扫描登记不受影响）";
        return;
      }
      if (!resp.ok) {
        target.textContent = body.message || "查不到这个单号";
        return;
      }
      if (body.manifest) {
        const m = body.manifest;
        target.textContent = m.taken_over
          ? "交接清单 · 已由" + m.taken_over_by + "接收（共 " + m.count + " 件）"
          : "交接清单 · " + m.department + " · 共 " + m.count + " 件 · 点“揽收”一次登记全部揽收";
        return;
      }
      const p = body.shipment;
      const items = p.cases.map((c) => c.item_name).join("、");
      target.textContent = p.kind_text + " · " + p.status_text + " · " + items +
        (p.recipient ? " · 收件人 " + p.recipient.name + " " + p.recipient.phone : "") + " · 下一步：" + p.next_action_text;
    } catch (e) {
      setOffline(true);
    }
  }

  // Camera scanning where the browser has BarcodeDetector; typing always works.

  let stream = null;
  if ("BarcodeDetector" in window && navigator.mediaDevices) {
    $("camera-button").classList.remove("hidden");
    $("camera-button").addEventListener("click", async () => {
      if (stream) return stopCamera();
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      } catch (e) {
        $("parcel").textContent = "无法打开摄像头，请手工输入单号";
        return;
      }
      const video = $("camera");
      video.srcObject = stream;
      video.classList.remove("hidden");
      await video.play();
      $("camera-button").textContent = "关闭摄像头";
      const detector = new window.BarcodeDetector({ formats: ["qr_code", "code_128"] });
      const tick = async () => {
        if (!stream) return;
        try {
          const codes = await detector.detect(video);
          if (codes.length) {
            $("code").value = codes[0].rawValue;
            stopCamera();
            lookup();
            return;
          }
        } catch (e) {
          // a frame that could not be read: try the next one
        }
        setTimeout(tick, 250);
      };
      tick();
    });
  }

  function stopCamera() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    $("camera").classList.add("hidden");
    $("camera-button").textContent = "用摄像头扫描";
  }

  // Reconnect, and a slow retry for the odd failure the browser does not announce.

  window.addEventListener("online", () => {
    setOffline(false);
    flush();
  });
  window.addEventListener("offline", () => setOffline(true));
  setInterval(() => {
    if (load(KEY_QUEUE, []).length) flush();
  }, 15000);

  // Start. The service worker (secure contexts only: HTTPS, or localhost while developing) lets the page open
  // with no network at all; without it everything else here still works while the page stays open.

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/staff-sw.js", { scope: "/staff" }).catch(() => {});
  }

  (async function start() {
    setOffline(!navigator.onLine);
    const saved = token();
    if (!saved) return showSignIn("");
    try {
      const profile = await fetchProfile(saved);
      if (!profile) {
        localStorage.removeItem(KEY_TOKEN);
        return showSignIn("令牌无效或已停用，请联系管理员");
      }
      save(KEY_PROFILE, profile);
      showApp(profile);
    } catch (e) {
      // Offline start: work from the profile saved at the last sign-in; the queue uploads later.
      const profile = load(KEY_PROFILE, null);
      if (profile) showApp(profile);
      else showSignIn("网络不通，请联网后再登录");
    }
  })();
})();
