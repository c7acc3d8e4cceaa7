/* /dashboard/: rooms with an active live transcription, kept current over /ws/dashboard/rooms/. */
(function () {
  "use strict";

  var D = window.Dashboard;
  var main = document.querySelector("main[data-page='rooms']");
  if (!main) return;

  var tbody = document.getElementById("room-rows");
  var empty = document.getElementById("rooms-empty");
  var count = document.getElementById("room-count");
  var roomUrl = main.dataset.roomUrl; // ".../rooms/ROOM/"
  var rooms = new Map(); // roomId → summary
  var rows = new Map(); // roomId → <tr>
  var indicator = D.connectionIndicator();

  function urlFor(roomId) {
    return roomUrl.replace("ROOM", encodeURIComponent(roomId));
  }

  function fillSpeaking(cell, speaking) {
    cell.textContent = "";
    if (!speaking || !speaking.length) {
      cell.appendChild(D.h("span", { className: "muted", text: "—" }));
      return;
    }
    speaking.forEach(function (person) {
      cell.appendChild(
        D.h(
          "span",
          { className: "speaking-chip" },
          D.h("span", { className: "pulse", "aria-hidden": "true" }),
          person.speaker || person.speakerId
        )
      );
    });
  }

  function newRow(roomId) {
    return D.h(
      "tr",
      { dataset: { roomId: roomId } },
      D.h("th", { scope: "row", "data-label": "Room" }, D.h("a", { className: "room-link", href: urlFor(roomId), text: roomId })),
      D.h("td", { "data-label": "Started" }),
      D.h("td", { className: "duration", "data-label": "Duration" }),
      D.h("td", { className: "num", "data-label": "Lines" }),
      D.h("td", { className: "speaking-cell", "data-label": "Speaking now" })
    );
  }

  /** Update a row's cells in place: the link a reader is about to click is never swapped under the pointer. */
  function fillRow(row, summary) {
    var cells = row.children;
    var started = D.parseDate(summary.startedAt);
    cells[1].textContent = "";
    if (started) {
      cells[1].appendChild(
        D.h("time", { datetime: summary.startedAt, title: started.toLocaleString(), text: D.formatTime(started) })
      );
      cells[2].dataset.since = summary.startedAt;
      cells[2].textContent = D.formatDuration(Date.now() - started.getTime());
    }
    cells[3].textContent = String(summary.segmentCount || 0);
    fillSpeaking(cells[4], summary.speaking);
  }

  function sorted() {
    return Array.from(rooms.values()).sort(function (a, b) {
      return String(a.startedAt || "").localeCompare(String(b.startedAt || "")) || a.roomId.localeCompare(b.roomId);
    });
  }

  /** Fill rows that changed, add new ones, drop ended ones, keep the order by start time. */
  function render(changed) {
    var seen = new Set();
    var previous = null;
    sorted().forEach(function (summary) {
      seen.add(summary.roomId);
      var row = rows.get(summary.roomId);
      if (!row) {
        row = newRow(summary.roomId);
        if (changed) row.classList.add("row-new");
        rows.set(summary.roomId, row);
        fillRow(row, summary);
      } else if (!changed || changed.has(summary.roomId)) {
        fillRow(row, summary);
      }
      var slot = previous ? previous.nextElementSibling : tbody.firstElementChild;
      if (slot !== row) tbody.insertBefore(row, slot); // only rows out of order move (moving one drops its focus)
      previous = row;
    });
    rows.forEach(function (row, roomId) {
      if (!seen.has(roomId)) {
        row.remove();
        rows.delete(roomId);
      }
    });
    count.textContent = String(rooms.size);
    empty.hidden = rooms.size > 0;
  }

  function onMessage(message) {
    if (message.type === "rooms") {
      rooms.clear();
      (message.rooms || []).forEach(function (summary) {
        if (summary.status === "active") rooms.set(summary.roomId, summary);
      });
      render(null);
    } else if (message.type === "room" && message.room) {
      var summary = message.room;
      if (summary.status === "active") rooms.set(summary.roomId, summary);
      else rooms.delete(summary.roomId);
      render(new Set([summary.roomId]));
    } else if (message.type === "speaking_now") {
      var known = rooms.get(message.roomId);
      if (!known) return;
      known.speaking = message.speaking || [];
      render(new Set([message.roomId]));
    }
    // Other message types: ignored (newer servers may send more).
  }

  // Adopt the server-rendered rows until the socket's snapshot replaces them.
  tbody.querySelectorAll("tr[data-room-id]").forEach(function (row) {
    rows.set(row.dataset.roomId, row);
  });

  var socket = D.liveSocket(main.dataset.wsBase, main.dataset.wsPath, { onMessage: onMessage, onState: indicator.update });
  indicator.onRetry(socket.retryNow);
})();
