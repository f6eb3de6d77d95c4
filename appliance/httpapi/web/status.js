// Live updates: re-fetch /status.json every few seconds and redraw the parts
// that change. Without scripting the server-rendered page stays as it is.
(function () {
  'use strict';
  var EVERY = 3000;
  var $ = function (id) { return document.getElementById(id); };
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }
  // age mirrors fmtAge in statuspage.go.
  function age(s) {
    if (s < 60) return s + ' s';
    if (s < 600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor(s % 86400 / 3600) + ' h';
  }
  // slot and attempt mirror fmtSlot and fmtAttempt in statusupdate.go.
  function slot(o) {
    if (!o) return 'not known yet';
    return o.slot + ': ' + (o.version || 'version not known') + ' (' + o.boot_status + ')';
  }
  function attempt(a) {
    if (!a) return 'none';
    return (a.version || 'a bundle') + ' \u2192 slot ' + a.slot + ': ' + a.result + ', ' + age(a.age_seconds) + ' ago (from ' + a.source + ')' +
      (a.reason ? ' \u2014 ' + a.reason : '');
  }
  function ago(s) { return s === null ? 'never since start' : age(s) + ' ago'; }
  function bytes(n) {
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + u[i];
  }
  // state mirrors fmtState in statuspage.go.
  function state(t) {
    if (t.online) return 'online';
    if (t.last_poll_age_seconds === null) return 'offline (no poll since the box started)';
    return 'offline since ' + age(t.last_poll_age_seconds) + ' ago';
  }
  // lastPoll mirrors fmtLastPoll in statuspage.go.
  function lastPoll(t) { return t.polls_waiting > 0 ? 'waiting now' : ago(t.last_poll_age_seconds); }
  // glance mirrors fmtGlance in statuspage.go.
  function glance(d) {
    var on = 0, all = 0, open = 0;
    d.multi_sessions.forEach(function (m) { on += m.terminals_online; all += m.terminals.length; open += m.open_orders; });
    return on + ' of ' + all + ' till' + (all === 1 ? '' : 's') + ' online · ' + open + ' open order' + (open === 1 ? '' : 's');
  }
  // terms mirrors the "terms" template of status.html (roles included).
  function terms(list) {
    var col = function (name) { return '<th role="columnheader" scope="col">' + name + '</th>'; };
    var h = '<table role="table"><thead role="rowgroup"><tr role="row">' + col('POS') + col('User') + col('State') +
      col('Last poll') + col('Last update') + '</tr></thead><tbody role="rowgroup">';
    list.forEach(function (t) {
      h += '<tr role="row" class="' + (t.online ? 'on' : 'off') + '" data-pos="' + t.pos_id + '"><th role="rowheader" scope="row" data-label="POS">' +
        t.pos_id + '</th><td role="cell" data-label="User">' + (t.user_id === null ? '–' : t.user_id) +
        '</td><td role="cell" data-label="State" class="state">' + esc(state(t)) + '</td><td role="cell" data-label="Last poll">' +
        lastPoll(t) + '</td><td role="cell" data-label="Last update">' + ago(t.last_update_age_seconds) + '</td></tr>';
    });
    return h + '</tbody></table>';
  }
  function render(d) {
    var ok = d.status === 'ok';
    var hp = $('health');
    hp.className = 'health ' + d.status;
    var word = ok ? 'Healthy' : d.status === 'degraded' ? 'Degraded' : 'Unhealthy';
    hp.innerHTML = '<span class="word">' + word + '</span>' +
      (d.reason ? '<span class="reason">: ' + esc(d.reason) + '</span>' : '');
    document.title = 'possync — ' + (ok ? 'healthy' : word.toUpperCase());
    $('glance').textContent = glance(d);
    var h = '';
    d.multi_sessions.forEach(function (m) {
      var id = 'ms-' + esc(m.db) + '-' + m.id;
      h += '<section class="ms" aria-labelledby="' + id + '"><h3 id="' + id + '">' + esc(m.db) + ' · multi-session ' + m.id + '</h3>' +
        '<p class="summary"><strong class="open">' + m.open_orders + ' open order' + (m.open_orders === 1 ? '' : 's') + '</strong> · last order number ' +
        m.last_order_number + ' · run ' + m.run + ' · ' + m.terminals_online + ' of ' + m.terminals.length + ' tills online</p>' +
        terms(m.terminals) + '</section>';
    });
    if (!d.multi_sessions.length) h = '<p>No multi-session has synced with this box yet. Point Odoo at it (below) and open a POS session.</p>';
    if (d.unassigned_terminals.length) {
      h += '<section class="ms" aria-labelledby="ms-unassigned"><h3 id="ms-unassigned">Tills not in a multi-session yet</h3>' +
        terms(d.unassigned_terminals) + '</section>';
    }
    $('tills').innerHTML = h;
    var w = '<p>None since the box started.</p>';
    if (d.warnings.length) {
      w = '<ul class="warn">';
      d.warnings.forEach(function (x) {
        w += '<li><span class="when">' + age(x.age_seconds) + ' ago</span> <span class="kind">' + esc(x.kind) + '</span> <span class="src">' +
          esc(x.source) + '</span>' + (x.count > 1 ? ' <span class="count">×' + x.count + '</span>' : '') + '<br>' + esc(x.message) + '</li>';
      });
      w += '</ul>';
    }
    $('warnings').innerHTML = w;
    $('uptime').textContent = age(d.uptime_seconds);
    var u = d.updates;
    if (u && u.available && $('upd-last')) {
      $('upd-running').textContent = u.running_slot + ' (' + u.running_version + ')';
      $('upd-other').textContent = slot(u.other_slot);
      $('upd-last').textContent = attempt(u.last_attempt);
    }
    if (d.disk && $('free')) {
      $('free').textContent = bytes(d.disk.data_free_bytes) + ' of ' + bytes(d.disk.data_total_bytes);
      $('store').textContent = bytes(d.disk.store_bytes);
    }
    var t = d.totals;
    $('accepted').textContent = t.updates_accepted + ' · conflicts ' + t.revision_conflicts + ' · duplicates ' + t.duplicates +
      ' · store errors ' + t.store_errors;
    var l = d.limits;
    if (l && $('limits')) {
      $('limits').textContent = l.databases + '/' + l.max_databases + ' databases · ' + l.multi_sessions + '/' + l.max_multi_sessions +
        ' multi-sessions · ' + l.terminals + '/' + l.max_terminals + ' terminals';
    }
    if (d.databases && $('databases')) {
      var dd = $('databases');
      dd.textContent = '';
      d.databases.forEach(function (name, i) {
        if (i) dd.appendChild(document.createTextNode(', '));
        var c = document.createElement('code');
        c.textContent = name;
        dd.appendChild(c);
      });
      if (!d.databases.length) dd.textContent = 'none yet';
      if (d.allowed_databases) dd.appendChild(document.createTextNode(' · allowed: ' + d.allowed_databases.join(', ')));
    }
  }
  var live = $('live');
  function tick() {
    fetch('/status.json', {cache: 'no-store'}).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    }).then(function (d) {
      render(d);
      live.textContent = 'Live: updated ' + new Date().toLocaleTimeString() + ', every ' + EVERY / 1000 + ' s.';
      live.className = 'live';
    }).catch(function (e) {
      live.textContent = 'Cannot reach the box (' + e.message + '); retrying…';
      live.className = 'live lost';
    }).then(function () { setTimeout(tick, EVERY); });
  }
  live.textContent = 'Live: updates every ' + EVERY / 1000 + ' s.';
  setTimeout(tick, EVERY);
})();
