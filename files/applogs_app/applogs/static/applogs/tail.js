/* Follow mode of the log list: while "follow" is on and the tab is visible, ask the tail endpoint
   for the records written after the newest one known and put them on top of the list. Inlined
   into the page (no library, nothing fetched from elsewhere). */
(function () {
  "use strict";
  var box = document.getElementById("applogs-follow");
  var tbody = document.querySelector("table.records tbody");
  if (!box || !tbody || !window.XMLHttpRequest) {
    return;
  }
  var toggle = box.querySelector("input[type=checkbox]");
  var status = box.querySelector(".follow-status");
  var url = box.getAttribute("data-url");
  var after = box.getAttribute("data-after");
  var interval = parseInt(box.getAttribute("data-interval"), 10) || 3000;
  // Rows kept on the page; the oldest go once there are more.
  var maxRows = parseInt(box.getAttribute("data-max-rows"), 10) || 1000;
  var timer = null;
  var busy = false;

  function text(name) {
    return box.getAttribute("data-text-" + name) || "";
  }

  function cell(tr, className, child) {
    var td = document.createElement("td");
    td.className = className;
    if (typeof child === "string") {
      td.textContent = child;
    } else if (child) {
      td.appendChild(child);
    }
    tr.appendChild(td);
    return td;
  }

  function link(href, label, title) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    if (title) {
      a.title = title;
    }
    return a;
  }

  // The same row as list.html renders.
  function row(r) {
    var tr = document.createElement("tr");
    tr.className = "lvl-" + r.level.toLowerCase() + " new";
    tr.setAttribute("data-id", String(r.id));
    cell(tr, "time", link(r.url, r.time, r.time_title));
    var badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = r.level;
    cell(tr, "level", badge);
    cell(tr, "logger", link("?logger=" + encodeURIComponent(r.logger), r.logger, text("logger")));
    var message = cell(tr, "message", link(r.url, r.message));
    if (r.has_traceback) {
      var tb = document.createElement("span");
      tb.className = "has-tb";
      tb.title = text("traceback-title");
      tb.textContent = text("traceback");
      message.appendChild(document.createTextNode(" "));
      message.appendChild(tb);
    }
    cell(tr, "user", r.user);
    cell(tr, "ip", r.ip);
    var request = r.request_id;
    cell(tr, "request", request ? link("?request_id=" + encodeURIComponent(request),
      request.length > 13 ? request.slice(0, 12) + "\u2026" : request, text("request")) : null);
    return tr;
  }

  function add(records) {
    var empty = tbody.querySelector("td.empty");
    if (records.length && empty) {
      tbody.removeChild(empty.parentNode);
    }
    // Oldest first in the answer: each goes on top, so the newest ends up first.
    for (var i = 0; i < records.length; i++) {
      if (!tbody.querySelector('tr[data-id="' + records[i].id + '"]')) {
        tbody.insertBefore(row(records[i]), tbody.firstChild);
      }
    }
    var rows = tbody.querySelectorAll("tr[data-id]");
    for (var j = rows.length - 1; j >= maxRows; j--) {
      tbody.removeChild(rows[j]);
    }
  }

  function stop() {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
  }

  function schedule(delay) {
    stop();
    if (toggle.checked && !document.hidden) {
      timer = setTimeout(poll, delay);
    }
  }

  function failed(message) {
    status.textContent = message;
    // Ask again later, more slowly: the server may be restarting.
    schedule(interval * 5);
  }

  function poll() {
    timer = null;
    if (busy || !toggle.checked || document.hidden) {
      return;
    }
    busy = true;
    var xhr = new XMLHttpRequest();
    xhr.open("GET", url + (url.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(after));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onload = function () {
      busy = false;
      var data = null;
      if (xhr.status === 200 && (xhr.getResponseHeader("Content-Type") || "").indexOf("json") >= 0) {
        try {
          data = JSON.parse(xhr.responseText);
        } catch (e) {
          data = null;
        }
      }
      if (!data) {
        // A login page instead of JSON: the session ended. Reloading shows the login.
        failed(text("error"));
        return;
      }
      status.textContent = text("following");
      add(data.records);
      after = String(data.after);
      schedule(data.more ? 0 : interval);
    };
    xhr.onerror = function () {
      busy = false;
      failed(text("error"));
    };
    xhr.send();
  }

  toggle.addEventListener("change", function () {
    if (toggle.checked) {
      status.textContent = text("following");
      poll();
    } else {
      stop();
      status.textContent = "";
    }
  });
  // A hidden tab asks nothing; it catches up as soon as it is shown again.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      stop();
    } else if (toggle.checked) {
      schedule(0);
    }
  });
  // A checkbox the browser restored as checked (back button) follows again.
  if (toggle.checked) {
    poll();
  }
})();
