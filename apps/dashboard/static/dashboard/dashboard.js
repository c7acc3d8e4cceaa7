/* Shared helpers for the support dashboard: DOM building, time formats, speaker colours, keyboard
 * shortcuts and the reconnecting WebSocket. Plain browser JavaScript, no build step. */
(function () {
  "use strict";

  var PALETTE_SIZE = 8;
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_CAP_MS = 10000;
  var POLICY_VIOLATION = 1008; // the server refused us: not signed in, or no permission

  /** Build an element; text goes through textContent, never innerHTML. */
  function h(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "text") node.textContent = value;
        else if (key === "className") node.className = value;
        else if (key === "dataset") Object.assign(node.dataset, value);
        else node.setAttribute(key, value === true ? "" : value);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  /** The same colour class for the same speaker on every page (FNV-1a over the identity); grey when unknown. */
  function speakerClass(id) {
    if (!id) return "spk-none";
    var hash = 2166136261;
    var text = String(id || "");
    for (var i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 16777619);
    }
    return "spk-" + ((hash >>> 0) % PALETTE_SIZE);
  }

  function initials(name) {
    var words = String(name || "?").trim().split(/\s+/).filter(Boolean);
    if (!words.length) return "?";
    var first = Array.from(words[0])[0] || "?";
    var last = words.length > 1 ? Array.from(words[words.length - 1])[0] || "" : "";
    return (first + last).toUpperCase();
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  /** m:ss, or h:mm:ss past an hour (time from the start of the conversation). */
  function formatOffset(ms) {
    var total = Math.max(0, Math.floor((ms || 0) / 1000));
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var seconds = total % 60;
    return hours ? hours + ":" + pad(minutes) + ":" + pad(seconds) : minutes + ":" + pad(seconds);
  }

  /** A running time, e.g. "4 min", "1 h 05 min", for durations shown at a glance. */
  function formatDuration(ms) {
    var minutes = Math.max(0, Math.floor(ms / 60000));
    if (minutes < 1) return "< 1 min";
    if (minutes < 60) return minutes + " min";
    return Math.floor(minutes / 60) + " h " + pad(minutes % 60) + " min";
  }

  function formatClock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function formatTime(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function formatDateTime(date) {
    var today = new Date();
    var yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (date.toDateString() === today.toDateString()) return "Today " + formatTime(date);
    if (date.toDateString() === yesterday.toDateString()) return "Yesterday " + formatTime(date);
    return date.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" }) + " " + formatTime(date);
  }

  function parseDate(value) {
    if (!value) return null;
    var date = new Date(value);
    return isNaN(date.getTime()) ? null : date;
  }

  /** Server-rendered <time data-local="clock|time|datetime"> elements are shown in the reader's time zone. */
  function localizeTimes(root) {
    (root || document).querySelectorAll("time[data-local]").forEach(function (node) {
      var date = parseDate(node.getAttribute("datetime"));
      if (!date) return;
      var kind = node.dataset.local;
      node.title = date.toISOString().replace(".000Z", "Z").replace("T", " ");
      node.textContent = kind === "clock" ? formatClock(date) : kind === "time" ? formatTime(date) : formatDateTime(date);
    });
  }

  /** Colour the speaker names that the server rendered (search results, stored transcripts). */
  function colourSpeakers(root) {
    (root || document).querySelectorAll("[data-speaker-id]").forEach(function (node) {
      node.classList.add(speakerClass(node.dataset.speakerId));
    });
  }

  /** Elements with data-since (and optional data-until) show how long ago that was, refreshed every few seconds. */
  function tickDurations() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (node) {
      var since = parseDate(node.dataset.since);
      if (!since) return;
      var until = parseDate(node.dataset.until);
      var text = formatDuration((until ? until.getTime() : now) - since.getTime());
      if (node.textContent !== text) node.textContent = text;
    });
  }

  function isTyping(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  /** "/" focuses search (the page's own search field first); Escape leaves a field. */
  function installShortcuts() {
    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "Escape" && isTyping(event.target)) {
        event.target.blur();
        return;
      }
      if (event.key === "/" && !isTyping(event.target)) {
        var field = document.querySelector("[data-search-input]") || document.getElementById("global-search");
        if (field) {
          event.preventDefault();
          field.focus();
          field.select();
        }
      }
    });
  }

  /** The connection indicator in the top bar: connecting, live, reconnecting in N s, no access. */
  function connectionIndicator() {
    var node = document.getElementById("connection");
    var retry = document.getElementById("connection-retry");
    var countdown = null;
    function set(state, text, count) {
      if (!node) return;
      node.dataset.state = state;
      var label = node.querySelector(".conn-text");
      if (label.textContent !== text) label.textContent = text; // a status region: announce changes only
      node.querySelector(".conn-count").textContent = count || ""; // the countdown is for the eyes only
    }
    return {
      onRetry: function (callback) {
        if (retry) retry.addEventListener("click", callback);
      },
      update: function (state, detail) {
        clearInterval(countdown);
        if (retry) retry.hidden = state !== "reconnecting";
        if (state === "live") set("live", "Live");
        else if (state === "connecting") set("connecting", "Connecting…");
        else if (state === "denied") set("denied", "No access");
        else if (state === "reconnecting") {
          var until = Date.now() + detail;
          var show = function () {
            var seconds = Math.max(0, Math.ceil((until - Date.now()) / 1000));
            set("reconnecting", "Reconnecting", seconds ? " in " + seconds + " s" : "…");
          };
          show();
          countdown = setInterval(show, 500);
        }
      },
    };
  }

  /**
   * A WebSocket that reconnects by itself: exponential backoff with jitter, capped at 10 s, reset once the
   * server has sent something. A 1008 close (refused) stops for good: retrying cannot help.
   * base: the socket server's origin (DASHBOARD_WEBSOCKET_URL), or "" for this page's own.
   * handlers: onMessage(message), onState(state, detail) with state connecting|live|reconnecting|denied.
   */
  function liveSocket(base, path, handlers) {
    var socket = null;
    var attempt = 0;
    var timer = null;
    var stopped = false;
    var live = false;

    function url() {
      return (base || (location.protocol === "https:" ? "wss://" : "ws://") + location.host) + path;
    }

    function open() {
      clearTimeout(timer);
      timer = null;
      if (stopped) return;
      handlers.onState("connecting");
      try {
        socket = new WebSocket(url());
      } catch (error) {
        scheduleReconnect();
        return;
      }
      var current = socket;
      current.onmessage = function (event) {
        if (current !== socket) return;
        var message;
        try {
          message = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        if (!message || typeof message.type !== "string") return;
        if (!live) {
          live = true;
          attempt = 0;
          handlers.onState("live");
        }
        handlers.onMessage(message);
      };
      current.onclose = function (event) {
        if (current !== socket) return;
        socket = null;
        live = false;
        if (event.code === POLICY_VIOLATION) {
          stopped = true;
          handlers.onState("denied");
          return;
        }
        scheduleReconnect();
      };
    }

    function scheduleReconnect() {
      if (stopped || timer) return;
      var ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, attempt));
      var delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      attempt += 1;
      handlers.onState("reconnecting", delay);
      timer = setTimeout(open, delay);
    }

    function retryNow() {
      if (stopped || socket) return;
      open();
    }

    window.addEventListener("online", retryNow);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") retryNow();
    });
    open();
    return { retryNow: retryNow };
  }

  window.Dashboard = {
    h: h,
    speakerClass: speakerClass,
    initials: initials,
    formatOffset: formatOffset,
    formatDuration: formatDuration,
    formatClock: formatClock,
    formatTime: formatTime,
    formatDateTime: formatDateTime,
    parseDate: parseDate,
    localizeTimes: localizeTimes,
    tickDurations: tickDurations,
    isTyping: isTyping,
    connectionIndicator: connectionIndicator,
    liveSocket: liveSocket,
  };

  document.addEventListener("DOMContentLoaded", function () {
    installShortcuts();
    localizeTimes(document);
    colourSpeakers(document);
    tickDurations();
    setInterval(tickDurations, 5000);
  });
})();
