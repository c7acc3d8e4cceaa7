/* /dashboard/rooms/<room>/: the live transcript of one room over /ws/dashboard/rooms/<room>/.
 *
 * Every line is keyed by its segmentId, so the backlog that arrives again after a reconnect (and a line
 * that arrives both in the backlog and as an event) merges into what is shown instead of duplicating it.
 * Lines are kept in (startMs, seq) order; a partial result sits greyed in place until its final segment
 * (same segmentId) replaces it.
 */
(function () {
  "use strict";

  var D = window.Dashboard;
  var main = document.querySelector("main[data-page='room']");
  if (!main) return;

  var FOLLOW_SLACK_PX = 48; // this close to the bottom counts as "at the live edge"
  var STALE_PARTIAL_MS = 30000; // a partial never finalised (agent gone) fades out after this

  var scroller = document.getElementById("transcript");
  var list = document.getElementById("transcript-lines");
  var emptyNote = document.getElementById("transcript-empty");
  var endNote = document.getElementById("session-end");
  var jump = document.getElementById("jump-live");
  var jumpCount = document.getElementById("jump-count");
  var people = document.getElementById("participants");
  var peopleEmpty = document.getElementById("participants-empty");
  var statusBadge = document.getElementById("session-status");
  var startedNode = document.getElementById("session-started");
  var durationNode = document.getElementById("session-duration");
  var languageNode = document.getElementById("session-language");
  var indicator = D.connectionIndicator();

  var sessionData = document.getElementById("session-data");
  var session = sessionData ? JSON.parse(sessionData.textContent) : null;
  var lines = new Map(); // segmentId → line record {segmentId, seq, startMs, endMs, text, speakerId, speaker, partial, el}
  var ordered = []; // line records in transcript order
  var speaking = new Map(); // speakerId → name
  var following = true;
  var unseen = 0;
  var backlogSeen = false;
  var denied = false;
  var target = /^#seg-(\d+)$/.exec(location.hash) ? Number(location.hash.slice(5)) : null;

  // ---------- names and times ----------

  function nameOf(speakerId, fallback) {
    var speakers = (session && session.speakers) || {};
    return speakers[speakerId] || fallback || speakerId || "Unknown speaker";
  }

  function sessionStart() {
    return session ? D.parseDate(session.startedAt) : null;
  }

  function compare(a, b) {
    return a.startMs - b.startMs || a.seq - b.seq;
  }

  // ---------- lines ----------

  function renderLine(line) {
    var start = sessionStart();
    var timeCell = D.h("span", { className: "line-time", title: D.formatOffset(line.startMs) + " from the start" });
    if (start) {
      var at = new Date(start.getTime() + line.startMs);
      timeCell.appendChild(D.h("time", { datetime: at.toISOString(), text: D.formatClock(at) }));
    }
    timeCell.appendChild(D.h("span", { className: "line-offset", text: D.formatOffset(line.startMs) }));
    var node = D.h(
      "li",
      {
        className: "line " + D.speakerClass(line.speakerId || line.speaker) + (line.partial ? " partial" : ""),
        id: line.partial ? null : "seg-" + line.seq,
        // Screen readers hear each line once, when final, not every partial update before it.
        "aria-hidden": line.partial ? "true" : null,
        dataset: { segmentId: line.segmentId, speakerId: line.speakerId || "" },
      },
      timeCell,
      D.h(
        "div",
        { className: "line-body" },
        D.h("span", { className: "line-speaker", text: nameOf(line.speakerId, line.speaker) }),
        D.h("p", { className: "line-text", text: line.text })
      )
    );
    if (line.el) {
      if (line.el.classList.contains("is-target")) node.classList.add("is-target");
      if (line.el.classList.contains("cont")) node.classList.add("cont");
      line.el.replaceWith(node);
    }
    line.el = node;
    return node;
  }

  /** Same speaker as the line before, soon after it: shown as a continuation (no repeated name). */
  function updateContinuation(index) {
    for (var i = Math.max(0, index); i <= index + 1 && i < ordered.length; i++) {
      var line = ordered[i];
      var previous = ordered[i - 1];
      var cont =
        !!previous &&
        previous.speakerId === line.speakerId &&
        nameOf(previous.speakerId, previous.speaker) === nameOf(line.speakerId, line.speaker) &&
        line.startMs - previous.endMs < 60000;
      line.el.classList.toggle("cont", cont);
    }
  }

  function position(line) {
    var index = ordered.length;
    while (index > 0 && compare(ordered[index - 1], line) > 0) index--;
    return index;
  }

  function insert(line) {
    var index = position(line);
    ordered.splice(index, 0, line);
    var next = ordered[index + 1];
    list.insertBefore(line.el, next ? next.el : null);
    updateContinuation(index);
  }

  function remove(line) {
    var index = ordered.indexOf(line);
    if (index >= 0) ordered.splice(index, 1);
    line.el.remove();
    lines.delete(line.segmentId);
    if (index >= 0) updateContinuation(index - 1);
  }

  function reposition(line) {
    var index = ordered.indexOf(line);
    ordered.splice(index, 1);
    insert(line);
  }

  /** A final segment: new, or replacing its partial, or (after a reconnect) one we already show. */
  function upsertFinal(segment, animate) {
    var id = String(segment.segmentId != null ? segment.segmentId : segment.seq);
    var line = lines.get(id);
    // A partial without a segmentId is keyed by its speaker: the speaker's next final line supersedes it.
    var loose = lines.get("partial:" + (segment.speakerId || ""));
    if (loose && loose !== line) remove(loose);
    var fields = {
      segmentId: id,
      seq: Number(segment.seq) || 0,
      startMs: Number(segment.startMs) || 0,
      endMs: Number(segment.endMs) || Number(segment.startMs) || 0,
      text: String(segment.text || ""),
      speakerId: segment.speakerId || "",
      speaker: segment.speaker || "",
      partial: false,
    };
    if (line) {
      var same =
        !line.partial &&
        line.seq === fields.seq &&
        line.text === fields.text &&
        line.speaker === fields.speaker &&
        line.startMs === fields.startMs;
      if (same) return false;
      var wasPartial = line.partial;
      var moved = line.startMs !== fields.startMs || line.seq !== fields.seq;
      Object.assign(line, fields);
      renderLine(line);
      if (moved) reposition(line);
      else updateContinuation(ordered.indexOf(line));
      return wasPartial;
    }
    line = Object.assign({ el: null }, fields);
    lines.set(id, line);
    renderLine(line);
    if (animate) line.el.classList.add("is-new");
    insert(line);
    return true;
  }

  function upsertPartial(message) {
    var id = message.segmentId != null ? String(message.segmentId) : "partial:" + (message.speakerId || "");
    var line = lines.get(id);
    if (line && !line.partial) return; // the final line is already here
    var text = String(message.text || "");
    if (!line) {
      line = {
        segmentId: id,
        seq: Infinity,
        startMs: Number(message.startMs) || 0,
        endMs: Number(message.startMs) || 0,
        text: text,
        speakerId: message.speakerId || "",
        speaker: message.speaker || "",
        partial: true,
        el: null,
      };
      lines.set(id, line);
      renderLine(line);
      insert(line);
    } else {
      line.text = text;
      line.el.querySelector(".line-text").textContent = text;
    }
    line.updatedAt = Date.now();
  }

  function dropStalePartials() {
    var now = Date.now();
    Array.from(lines.values()).forEach(function (line) {
      if (line.partial && now - (line.updatedAt || 0) > STALE_PARTIAL_MS) remove(line);
    });
  }

  function relabel() {
    ordered.forEach(function (line) {
      var name = nameOf(line.speakerId, line.speaker);
      var label = line.el.querySelector(".line-speaker");
      if (label.textContent !== name) label.textContent = name;
    });
    for (var i = 0; i < ordered.length; i++) updateContinuation(i);
  }

  // ---------- scrolling: follow the live edge until the reader scrolls up ----------

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= FOLLOW_SLACK_PX;
  }

  function scrollToLive() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function setFollowing(value) {
    following = value;
    if (following) unseen = 0;
    jump.hidden = following;
    jumpCount.textContent = unseen ? unseen + " new" : "";
  }

  function jumpToLive() {
    var fromButton = document.activeElement === jump;
    setFollowing(true);
    scrollToLive();
    if (fromButton) scroller.focus({ preventScroll: true }); // the button hides: keep the focus nearby
  }

  function updateEmptyNote() {
    if (denied) return;
    emptyNote.hidden = ordered.length > 0;
    if (!backlogSeen || ordered.length) return;
    if (!session) {
      emptyNote.textContent =
        "Nothing has been transcribed in this room yet. Lines will appear here when live transcription starts.";
    } else if (session.status === "active") {
      emptyNote.textContent = "No one has said anything yet. Lines appear here as they are said.";
    } else {
      emptyNote.textContent = "This session has no transcript lines.";
    }
  }

  function afterChange(added) {
    updateEmptyNote();
    if (following) scrollToLive();
    else if (added > 0) {
      unseen += added;
      jumpCount.textContent = unseen + " new";
    }
  }

  scroller.addEventListener("scroll", function () {
    var bottom = atBottom();
    if (bottom !== following) setFollowing(bottom);
  });
  // A smaller window (or the side panel wrapping) must not leave a following reader short of the live edge.
  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      if (following) scrollToLive();
    }).observe(scroller);
  }
  jump.addEventListener("click", jumpToLive);
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || D.isTyping(event.target)) return;
    if (event.key === "End" || event.key === "j") {
      event.preventDefault();
      jumpToLive();
    }
  });

  /** Opened from a search result (#seg-<id>): show that line in the middle, marked, and stop following. */
  function revealTarget() {
    if (target === null) return;
    var node = document.getElementById("seg-" + target);
    if (!node) return;
    target = null;
    node.classList.add("is-target");
    setFollowing(false);
    node.scrollIntoView({ block: "center" });
  }

  // ---------- header and participants ----------

  function renderSession() {
    var status = session ? session.status : "none";
    statusBadge.dataset.status = status;
    statusBadge.textContent = !session ? "No live transcription" : status === "active" ? "Live" : "Ended";
    var start = sessionStart();
    startedNode.textContent = "";
    if (start) {
      startedNode.append(
        "Started ",
        D.h("time", { datetime: session.startedAt, title: start.toLocaleString(), text: D.formatDateTime(start) })
      );
      durationNode.dataset.since = session.startedAt;
    }
    if (session && session.stoppedAt) durationNode.dataset.until = session.stoppedAt;
    else delete durationNode.dataset.until;
    languageNode.textContent = session && session.language ? "· " + session.language : "";
    var stopped = session && status !== "active";
    var stoppedAt = stopped ? D.parseDate(session.stoppedAt) : null;
    endNote.hidden = !stopped;
    endNote.textContent = stopped
      ? "Transcription ended" + (stoppedAt ? " at " + D.formatClock(stoppedAt) : "") + "."
      : "";
    if (stopped) speaking.clear();
    D.tickDurations();
  }

  function renderPeople() {
    if (denied) {
      people.textContent = "";
      peopleEmpty.hidden = true;
      return;
    }
    var known = new Map(); // speakerId → {name, lines}
    var speakers = (session && session.speakers) || {};
    Object.keys(speakers).forEach(function (id) {
      known.set(id, { name: speakers[id], lines: 0 });
    });
    ordered.forEach(function (line) {
      if (line.partial) return;
      var key = line.speakerId || line.speaker;
      var entry = known.get(key) || { name: nameOf(line.speakerId, line.speaker), lines: 0 };
      entry.lines += 1;
      known.set(key, entry);
    });
    speaking.forEach(function (name, id) {
      if (!known.has(id)) known.set(id, { name: nameOf(id, name), lines: 0 });
    });
    var items = Array.from(known.entries()).sort(function (a, b) {
      return a[1].name.localeCompare(b[1].name);
    });
    people.textContent = "";
    items.forEach(function (item) {
      var id = item[0];
      var info = item[1];
      var talking = speaking.has(id);
      people.appendChild(
        D.h(
          "li",
          {
            className: "participant " + D.speakerClass(id) + (talking ? " is-speaking" : ""),
            dataset: { speakerId: id },
          },
          D.h("span", { className: "avatar", "aria-hidden": "true", text: D.initials(info.name) }),
          D.h(
            "span",
            { className: "participant-name", title: info.name },
            info.name,
            info.name !== id ? D.h("span", { className: "participant-id", text: id }) : null
          ),
          D.h("span", {
            className: "participant-state",
            text: talking ? "speaking" : info.lines + (info.lines === 1 ? " line" : " lines"),
          })
        )
      );
    });
    peopleEmpty.hidden = items.length > 0;
  }

  // ---------- messages ----------

  function sameSession(incoming) {
    return !session || !incoming || session.transcriptionId === incoming.transcriptionId;
  }

  function clearLines() {
    ordered.slice().forEach(remove);
  }

  function onBacklog(message) {
    if (!sameSession(message.session)) clearLines(); // a new session started in this room meanwhile
    session = message.session || null;
    var present = new Set();
    var added = 0;
    (message.segments || []).forEach(function (segment) {
      present.add(String(segment.segmentId != null ? segment.segmentId : segment.seq));
      if (upsertFinal(segment, backlogSeen)) added += 1;
    });
    // The backlog is the truth for final lines: anything else shown (e.g. deleted meanwhile) goes.
    ordered.slice().forEach(function (line) {
      if (!line.partial && !present.has(line.segmentId)) remove(line);
    });
    speaking.clear();
    (message.speaking || []).forEach(function (person) {
      speaking.set(person.speakerId, person.speaker);
    });
    backlogSeen = true;
    renderSession();
    relabel();
    renderPeople();
    afterChange(added);
    revealTarget();
  }

  function onMessage(message) {
    switch (message.type) {
      case "backlog":
        onBacklog(message);
        break;
      case "segment":
        if (message.segment) {
          var added = upsertFinal(message.segment, true) ? 1 : 0;
          renderPeople();
          afterChange(added);
          revealTarget();
        }
        break;
      case "session":
        if (!message.session) break;
        if (!sameSession(message.session)) clearLines();
        session = message.session;
        renderSession();
        relabel();
        renderPeople();
        afterChange(0);
        break;
      case "speaking":
        speaking.set(message.speakerId, message.speaker || message.speakerId);
        renderPeople();
        break;
      case "speaking_stopped":
        speaking.delete(message.speakerId);
        renderPeople();
        break;
      case "transcript_partial":
        upsertPartial(message);
        afterChange(0);
        break;
      default:
      // Unknown types are ignored: the server may be newer than this page.
    }
  }

  function onState(state, detail) {
    indicator.update(state, detail);
    if (state === "reconnecting" && speaking.size) {
      speaking.clear(); // unknown while offline; the backlog after the reconnect says who is talking
      renderPeople();
    }
    if (state === "denied") {
      // Access was refused (signed out, or the permission taken away): stop showing the transcript too.
      denied = true;
      clearLines();
      setFollowing(true);
      speaking.clear();
      renderPeople();
      emptyNote.hidden = false;
      emptyNote.textContent = "";
      emptyNote.append(
        "You don't have access to this transcript any more. ",
        D.h("a", { href: main.dataset.loginUrl, text: "Sign in again" })
      );
    }
  }

  renderSession();
  renderPeople();
  setFollowing(true);
  setInterval(dropStalePartials, 5000);
  var socket = D.liveSocket(main.dataset.wsBase, main.dataset.wsPath, { onMessage: onMessage, onState: onState });
  indicator.onRetry(socket.retryNow);
  window.addEventListener("hashchange", function () {
    var match = /^#seg-(\d+)$/.exec(location.hash);
    if (!match) return;
    document.querySelectorAll(".line.is-target").forEach(function (node) {
      node.classList.remove("is-target");
    });
    target = Number(match[1]);
    revealTarget();
  });
})();
