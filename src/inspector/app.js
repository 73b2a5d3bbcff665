// hookcli inspector. Everything from the wire is put in the page with textContent, never as
// markup: a payload carrying <script> stays text.
'use strict';

const TOKEN = new URLSearchParams(location.search).get('token') || '';
const state = { rows: [], last: 0, selected: null, call: null, info: null };

function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  opts.headers['x-hookcli-token'] = TOKEN;
  return fetch(path, opts).then(r => {
    if (!r.ok) { throw new Error(r.status + ' ' + r.statusText); }
    return r.json();
  });
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') { node.className = v; } else if (k.startsWith('on')) { node.addEventListener(k.slice(2), v); } else { node.setAttribute(k, v); }
  }
  for (const child of children) {
    if (child === null || child === undefined) { continue; }
    node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return node;
}

function verdictClass(v) {
  if (v === 'valid') { return 'good'; }
  if (v === 'unsigned' || v === '?') { return 'warn'; }
  return 'bad';
}
function statusClass(s) { return s >= 200 && s < 300 ? 'good' : 'bad'; }
function size(n) {
  if (n >= 1048576) { return (n / 1048576).toFixed(1) + ' MB'; }
  if (n >= 1024) { return (n / 1024).toFixed(1) + ' KB'; }
  return n + ' B';
}
function shortTime(t) { return (t || '').slice(11, 23); }

function appCell(r) {
  const f = r.forwarded;
  if (!f) { return el('td', {}, '-'); }
  if (f.status !== null && f.status !== undefined) { return el('td', { class: statusClass(f.status) }, 'app ' + f.status); }
  return el('td', { class: 'bad', title: f.error || '' }, f.error || 'app failed');
}

function matches(r) {
  const ev = document.getElementById('f-event').value.trim();
  const verdict = document.getElementById('f-verdict').value;
  const call = document.getElementById('f-call').value.trim();
  const status = document.getElementById('f-status').value.trim().toLowerCase();
  if (ev && !(r.event || '').includes(ev)) { return false; }
  if (verdict && r.verdict !== verdict) { return false; }
  if (call && !(r.call_id || '').includes(call)) { return false; }
  if (status) {
    const s = String(r.status === null ? 'dropped' : r.status);
    if (/^[1-5]xx$/.test(status)) { if (s[0] !== status[0] || s.length !== 3) { return false; } } else if (s !== status) { return false; }
  }
  return true;
}

function row(r) {
  const callLink = r.call_id ? el('a', { href: '#', onclick: e => { e.preventDefault(); e.stopPropagation(); showTimeline(r.call_id); } }, r.call_id) : '-';
  const tags = [];
  if (r.duplicate_of) { tags.push(el('span', { class: 'tag warn' }, 'duplicate of #' + r.duplicate_of)); }
  if (r.from_record) { tags.push(el('span', { class: 'tag' }, 'recorded')); }
  const tr = el('tr', { 'data-id': r.id, class: r.from_record ? 'earlier' : '', onclick: () => showDetail(r.id) },
    el('td', {}, r.n === null ? '·' : r.n),
    el('td', {}, shortTime(r.time)),
    el('td', {}, r.event || (r.method + ' ' + r.path), ...tags),
    el('td', { class: 'call' }, callLink),
    el('td', { class: verdictClass(r.verdict) }, r.verdict),
    el('td', { class: statusClass(r.status) }, r.status === null ? 'dropped' : r.status),
    appCell(r),
    el('td', {}, size(r.bytes)),
    el('td', {}, r.forwarded && r.forwarded.ms !== undefined ? r.forwarded.ms + ' ms' : '-'));
  if (state.selected === r.id) { tr.classList.add('selected'); }
  return tr;
}

function render() {
  const body = document.getElementById('rows');
  const shown = state.rows.filter(matches);
  body.replaceChildren(...shown.slice().reverse().map(row));
  document.getElementById('empty').hidden = state.rows.length > 0;
  document.getElementById('count').textContent = shown.length + ' of ' + state.rows.length;
  if (state.call) { showTimeline(state.call); }
}

// New rows go on top without rebuilding the others: at hundreds of requests a second a full
// render per poll would keep a core busy on the machine listen runs on.
function addRows(added) {
  const body = document.getElementById('rows');
  const shown = added.filter(matches);
  body.prepend(...shown.reverse().map(row));
  while (body.children.length > state.rows.length) { body.lastElementChild.remove(); }
  const kept = new Set(state.rows.map(r => r.id));
  while (body.lastElementChild && !kept.has(Number(body.lastElementChild.dataset.id))) { body.lastElementChild.remove(); }
  document.getElementById('empty').hidden = state.rows.length > 0;
  document.getElementById('count').textContent = body.children.length + ' of ' + state.rows.length;
  if (state.call) { showTimeline(state.call); }
}

function poll() {
  api('/api/requests?after=' + state.last).then(data => {
    if (!state.info) {
      state.info = data;
      const text = data.platform + ' · webhooks to ' + data.listen_url + (data.forward_url ? ' → forwarded to ' + data.forward_url : '');
      document.getElementById('info').textContent = text;
    }
    if (data.requests.length) {
      state.rows.push(...data.requests);
      state.last = data.requests[data.requests.length - 1].id;
      if (state.rows.length > 1000) { state.rows.splice(0, state.rows.length - 1000); }
      addRows(data.requests);
    }
    document.getElementById('live').textContent = 'live';
    document.getElementById('live').className = 'good';
  }).catch(e => {
    document.getElementById('live').textContent = 'disconnected (' + e.message + ')';
    document.getElementById('live').className = 'bad';
  }).finally(() => setTimeout(poll, document.hidden ? 3000 : 700));
}

function jsonTree(value, key) {
  const label = key === undefined ? '' : JSON.stringify(key) + ': ';
  if (value !== null && typeof value === 'object') {
    const isArray = Array.isArray(value);
    const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
    const details = el('details', { class: 'json', open: '' },
      el('summary', {}, label + (isArray ? '[' + entries.length + ']' : '{' + entries.length + '}')));
    for (const [k, v] of entries) { details.append(jsonTree(v, isArray ? undefined : k)); }
    return details;
  }
  return el('div', { class: 'json kv' }, label + JSON.stringify(value));
}

function hexDump(b64) {
  const raw = atob(b64);
  const lines = [];
  for (let i = 0; i < raw.length; i += 16) {
    const chunk = raw.slice(i, i + 16);
    let hex = '';
    let text = '';
    for (let j = 0; j < chunk.length; j++) {
      const c = chunk.charCodeAt(j);
      hex += c.toString(16).padStart(2, '0') + ' ';
      text += c >= 32 && c < 127 ? chunk[j] : '.';
    }
    lines.push(i.toString(16).padStart(8, '0') + '  ' + hex.padEnd(48) + ' ' + text);
  }
  return lines.join('\n');
}

function headerTable(pairs) {
  return el('table', { class: 'kv' }, ...pairs.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v))));
}

function copyBlock(title, text, testid) {
  const pre = el('pre', { 'data-testid': testid }, text);
  const button = el('button', { type: 'button', onclick: () => navigator.clipboard && navigator.clipboard.writeText(text) }, 'copy');
  return el('div', {}, el('h3', {}, title, ' ', button), pre);
}

function replayControls(d) {
  const result = el('span', { 'data-testid': 'replay-result', class: 'dim' });
  const send = to => {
    result.textContent = 'sending…';
    result.className = 'dim';
    api('/api/replay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: d.id, to: to }) })
      .then(r => {
        if (r.error && (r.status === null || r.status === undefined)) { result.textContent = r.error; result.className = 'bad'; return; }
        result.textContent = (r.signed ? 're-signed, ' : 'unsigned, ') + 'sent to ' + r.url + ': ' + r.status + ' in ' + r.ms + ' ms';
        result.className = r.accepted ? 'good' : 'bad';
      })
      .catch(e => { result.textContent = 'failed: ' + e.message; result.className = 'bad'; });
  };
  const url = el('input', { placeholder: 'http://127.0.0.1:3000/webhook', size: 32, 'aria-label': 'replay to URL' });
  const box = el('div', { class: 'actions' },
    el('button', { type: 'button', 'data-testid': 'replay-listen', onclick: () => send('listen') }, 'replay through listen'));
  if (state.info && state.info.forward_url) {
    box.append(el('button', { type: 'button', 'data-testid': 'replay-forward', onclick: () => send('forward') }, 'replay to the app'));
  }
  box.append(url, el('button', { type: 'button', onclick: () => send(url.value.trim()) }, 'replay to URL'), result);
  return box;
}

function showDetail(id) {
  state.selected = id;
  for (const tr of document.querySelectorAll('#rows tr')) { tr.classList.toggle('selected', Number(tr.dataset.id) === id); }
  api('/api/requests/' + id).then(d => {
    const pane = document.getElementById('detail');
    const verdict = el('p', { 'data-testid': 'why' }, el('b', { class: verdictClass(d.verdict) }, d.verdict), ': ', d.why);
    const parts = [
      el('h2', {}, (d.event || d.method + ' ' + d.path) + (d.n === null ? ' (recorded)' : ' #' + d.n)),
      el('p', { class: 'dim' }, d.time + ' · ' + d.method + ' ' + d.path + ' · ' + size(d.bytes) + (d.call_id ? ' · call ' + d.call_id : '')),
      verdict,
    ];
    if (d.note) { parts.push(el('p', { class: 'dim' }, d.note)); }
    const answer = el('p', {}, 'answered ', el('b', { class: statusClass(d.status) }, d.status === null ? 'dropped' : String(d.status)));
    if (d.forwarded) {
      answer.append(d.forwarded.status !== null ? ' (the app\'s answer, in ' + d.forwarded.ms + ' ms)' : ' (' + (d.forwarded.error || 'app failed') + ')');
    }
    parts.push(answer, replayControls(d), el('h3', {}, 'headers'), headerTable(d.headers), el('h3', {}, 'body'));
    if (d.body_json !== null) { parts.push(jsonTree(d.body_json)); } else { parts.push(el('pre', {}, d.body_text)); }
    parts.push(el('details', {}, el('summary', {}, 'raw bytes (' + size(atob(d.body_base64).length) + ')'), el('pre', { class: 'hex', 'data-testid': 'raw' }, hexDump(d.body_base64))));
    if (d.forwarded && d.app_headers.length + d.app_body_text.length > 0) {
      parts.push(el('h3', {}, 'the app\'s answer'), headerTable(d.app_headers), el('pre', {}, d.app_body_text));
    }
    parts.push(copyBlock('copy as hookcli send', d.copy_send, 'copy-send'), copyBlock('copy as curl', d.copy_curl, 'copy-curl'));
    pane.replaceChildren(...parts);
    pane.hidden = false;
  }).catch(e => { document.getElementById('detail').replaceChildren(el('p', { class: 'bad' }, 'cannot load #' + id + ': ' + e.message)); });
}

function showTimeline(call) {
  state.call = call;
  const events = state.rows.filter(r => r.call_id === call).sort((a, b) => a.time_ms - b.time_ms || a.id - b.id);
  const seen = new Map();
  const items = events.map((r, i) => {
    const gap = i === 0 ? '' : '+' + ((r.time_ms - events[i - 1].time_ms) / 1000).toFixed(3) + ' s ';
    const key = r.event || '';
    const again = seen.has(key);
    seen.set(key, true);
    const li = el('li', { 'data-id': r.id },
      el('span', { class: 'dim' }, gap),
      el('a', { href: '#', onclick: e => { e.preventDefault(); showDetail(r.id); } }, r.event || '-'),
      ' ', el('span', { class: verdictClass(r.verdict) }, r.verdict),
      ' ', el('span', { class: statusClass(r.status) }, r.status === null ? 'dropped' : String(r.status)));
    if (r.duplicate_of) { li.append(el('span', { class: 'tag warn' }, 'duplicate of #' + r.duplicate_of)); } else if (again) { li.append(el('span', { class: 'tag warn' }, 'again')); }
    return li;
  });
  const pane = document.getElementById('timeline');
  pane.replaceChildren(
    el('h2', {}, 'call ', call, ' ', el('button', { type: 'button', onclick: () => { state.call = null; pane.hidden = true; } }, 'close')),
    el('ol', { class: 'timeline', 'data-testid': 'timeline' }, ...items));
  pane.hidden = false;
}

document.addEventListener('DOMContentLoaded', () => {
  for (const id of ['f-event', 'f-verdict', 'f-call', 'f-status']) {
    document.getElementById(id).addEventListener('input', render);
    document.getElementById(id).addEventListener('change', render);
  }
  document.getElementById('f-clear').addEventListener('click', () => {
    for (const id of ['f-event', 'f-verdict', 'f-call', 'f-status']) { document.getElementById(id).value = ''; }
    render();
  });
  poll();
});
