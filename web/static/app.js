'use strict';
// The flinkgo dashboard: a page per hash route (#/, #/jobs, #/jobs/<id>,
// #/taskmanagers), each drawn from the REST API and refreshed every few
// seconds. API paths are relative to the page, which is served next to
// the API.

const DEFAULT_REFRESH_MS = 3000;
const TERMINAL = new Set(['FINISHED', 'CANCELED', 'FAILED']);
const SVG_NS = 'http://www.w3.org/2000/svg';

// ---- DOM helpers ---------------------------------------------------------

// h creates an HTML element; svg an SVG element. attrs maps attribute
// names to values (null and false are skipped, true sets an empty
// attribute); "onclick" adds a listener. Children are nodes or text.
function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'onclick') el.addEventListener('click', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function empty(text) {
  return h('div', { class: 'empty' }, text);
}

// ---- formatting ----------------------------------------------------------

function fmtInt(n) {
  return Number(n || 0).toLocaleString('en-US');
}

function fmtTime(ms) {
  return ms > 0 ? new Date(ms).toLocaleString() : '–';
}

function fmtDuration(ms) {
  if (ms == null || ms < 0) return '–';
  if (ms < 1000) return `${ms} ms`;
  let s = Math.floor(ms / 1000);
  const parts = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]]) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  parts.push(`${s}s`);
  return parts.slice(0, 2).join(' ');
}

function fmtBytes(n) {
  if (n == null || n < 0) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function fmtPercent(ratio) {
  return `${Math.round(ratio * 100)}%`;
}

function stateBadge(state, id) {
  return h('span', { class: `state ${state}`, id }, state);
}

// ---- REST API ------------------------------------------------------------

class HTTPError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// request calls the API and returns the decoded JSON body; an error
// response throws an HTTPError with the status and the API's error text.
// A cluster with security on answers 401 without a client certificate or a
// bearer token; the dashboard then asks for the token and keeps it for the
// browser tab (sessionStorage), sending it with every call.
async function request(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' } };
  const token = sessionStorage.getItem('flinkToken');
  if (token) opts.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers['Content-Type'] = 'application/json';
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (resp.status === 401) showLogin(Boolean(token));
  if (!resp.ok) {
    const errors = data && Array.isArray(data.errors) ? data.errors : [];
    throw new HTTPError(resp.status, `${resp.status}: ${errors.length ? errors.join('; ') : text || resp.statusText}`);
  }
  return data;
}

function showLogin(rejected) {
  const form = document.getElementById('login');
  document.getElementById('login-error').hidden = !rejected;
  if (!form.hidden) return;
  form.hidden = false;
  form.onsubmit = (e) => {
    e.preventDefault();
    sessionStorage.setItem('flinkToken', document.getElementById('login-token').value.trim());
    form.hidden = true;
    refresh();
  };
}

function get(path) {
  return request('GET', path);
}

// ---- router and refresh --------------------------------------------------

const routes = [
  { pattern: /^#?\/?$/, nav: 'overview', page: overviewPage },
  { pattern: /^#\/jobs\/?$/, nav: 'jobs', page: jobsPage },
  { pattern: /^#\/jobs\/([0-9a-fA-F]{32})$/, nav: 'jobs', page: jobPage },
  { pattern: /^#\/taskmanagers\/?$/, nav: 'taskmanagers', page: taskManagersPage },
];

let current = null; // the page shown: { update() }

function route() {
  const hash = location.hash || '#/';
  const r = routes.find((r) => r.pattern.test(hash));
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('active', Boolean(r) && a.dataset.nav === r.nav);
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  if (!r) {
    current = null;
    main.append(empty(`There is no page at ${hash}.`));
    return;
  }
  current = r.page(main, ...hash.match(r.pattern).slice(1));
  refresh();
}

// refresh updates the page shown, unless its previous update still runs.
async function refresh() {
  const page = current;
  if (!page || page.busy) return;
  page.busy = true;
  try {
    await page.update();
    setBanner('');
  } catch (e) {
    setBanner(`Cannot reach the cluster: ${e.message}`);
  } finally {
    page.busy = false;
  }
}

function setBanner(text) {
  const b = document.getElementById('banner');
  b.textContent = text;
  b.hidden = !text;
}

async function start() {
  let every = DEFAULT_REFRESH_MS;
  try {
    const cfg = await get('config');
    if (cfg['refresh-interval'] > 0) every = cfg['refresh-interval'];
    document.getElementById('version').textContent = `version ${cfg['flink-version']}`;
  } catch (e) {
    // The pages say what is wrong.
  }
  window.addEventListener('hashchange', route);
  route();
  setInterval(refresh, every);
}

// ---- overview, jobs, task managers ---------------------------------------

function card(label, value, id) {
  return h('div', { class: 'card' }, h('div', { class: 'value', id }, fmtInt(value)), h('div', { class: 'label' }, label));
}

function overviewPage(main) {
  const cards = h('div', { class: 'cards', id: 'overview-cards' });
  const running = h('div');
  main.append(h('h1', {}, 'Cluster overview'), cards, h('h2', {}, 'Running jobs'), running);
  return {
    async update() {
      const [ov, jobs] = await Promise.all([get('overview'), get('jobs/overview')]);
      cards.replaceChildren(
        card('Task managers', ov.taskmanagers, 'ov-taskmanagers'),
        card('Task slots', ov['slots-total'], 'ov-slots-total'),
        card('Free slots', ov['slots-available'], 'ov-slots-available'),
        card('Running jobs', ov['jobs-running'], 'ov-jobs-running'),
        card('Finished jobs', ov['jobs-finished'], 'ov-jobs-finished'),
        card('Canceled jobs', ov['jobs-cancelled'], 'ov-jobs-cancelled'),
        card('Failed jobs', ov['jobs-failed'], 'ov-jobs-failed'),
      );
      running.replaceChildren(jobTable(jobs.jobs.filter((j) => !TERMINAL.has(j.state)), 'No running jobs.'));
    },
  };
}

function jobsPage(main) {
  const list = h('div', { id: 'job-list' });
  main.append(h('h1', {}, 'Jobs'), list);
  return {
    async update() {
      const jobs = await get('jobs/overview');
      list.replaceChildren(jobTable(jobs.jobs, 'No jobs yet.'));
    },
  };
}

// jobTable lists jobs, newest first.
function jobTable(jobs, emptyText) {
  if (!jobs.length) return empty(emptyText);
  const rows = [...jobs].sort((a, b) => b['start-time'] - a['start-time']).map((j) =>
    h('tr', { 'data-job-id': j.jid },
      h('td', {}, h('a', { href: `#/jobs/${j.jid}` }, j.name)),
      h('td', { class: 'mono' }, j.jid),
      h('td', {}, stateBadge(j.state)),
      h('td', {}, fmtTime(j['start-time'])),
      h('td', { class: 'num' }, fmtDuration(j.duration)),
      h('td', {}, taskSummary(j.tasks))));
  return h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Job ID'), h('th', {}, 'Status'),
      h('th', {}, 'Started'), h('th', { class: 'num' }, 'Duration'), h('th', {}, 'Subtasks'))),
    h('tbody', {}, rows));
}

// taskSummary says how many subtasks are in each state, e.g. "4 running".
function taskSummary(tasks) {
  const parts = Object.entries(tasks || {})
    .filter(([state, n]) => state !== 'total' && n > 0)
    .map(([state, n]) => `${n} ${state}`);
  return parts.length ? parts.join(', ') : '–';
}

function taskManagersPage(main) {
  const list = h('div', { id: 'taskmanager-list' });
  main.append(h('h1', {}, 'Task managers'), list);
  return {
    async update() {
      const { taskmanagers } = await get('taskmanagers');
      if (!taskmanagers.length) {
        list.replaceChildren(empty('No task manager is registered.'));
        return;
      }
      list.replaceChildren(h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, 'ID'), h('th', {}, 'Address'), h('th', { class: 'num' }, 'Slots'),
          h('th', { class: 'num' }, 'Free slots'), h('th', {}, 'Used'),
          h('th', { class: 'num', title: 'Go heap in use / held from the OS (the process\'s)' }, 'Heap'),
          h('th', { title: 'Network buffers in use / all' }, 'Network buffers'))),
        h('tbody', {}, taskmanagers.map((tm) => {
          const used = tm.slotsNumber ? (tm.slotsNumber - tm.freeSlots) / tm.slotsNumber : 0;
          const m = tm.metrics;
          const buffers = m.nettyShuffleMemorySegmentsTotal ? m.nettyShuffleMemorySegmentsUsed / m.nettyShuffleMemorySegmentsTotal : 0;
          return h('tr', { 'data-tm-id': tm.id },
            h('td', { class: 'mono' }, tm.id), h('td', { class: 'mono' }, tm.path),
            h('td', { class: 'num' }, fmtInt(tm.slotsNumber)), h('td', { class: 'num' }, fmtInt(tm.freeSlots)),
            h('td', {}, bar(used), fmtPercent(used)),
            h('td', { class: 'num tm-heap' }, `${fmtBytes(m.heapUsed)} / ${fmtBytes(m.heapCommitted)}`),
            h('td', { class: 'tm-buffers' }, bar(buffers),
              `${fmtInt(m.nettyShuffleMemorySegmentsUsed)} / ${fmtInt(m.nettyShuffleMemorySegmentsTotal)} (${fmtBytes(m.nettyShuffleMemoryTotal)})`));
        }))));
    },
  };
}

// bar is a small bar filled to ratio.
function bar(ratio) {
  const fill = h('span');
  fill.style.width = fmtPercent(ratio);
  return h('span', { class: 'bar' }, fill);
}

// ---- the job page --------------------------------------------------------

function jobPage(main, jid) {
  jid = jid.toLowerCase();
  const title = h('h1', { id: 'job-name' }, jid);
  const state = stateBadge('', 'job-state');
  const facts = h('span', { class: 'muted', id: 'job-facts' });
  const message = h('div', { class: 'message', id: 'job-message' });
  const savepointBtn = h('button', { id: 'trigger-savepoint', onclick: triggerSavepoint }, 'Trigger savepoint');
  const cancelBtn = h('button', { id: 'cancel-job', class: 'danger', onclick: askCancel }, 'Cancel job');
  const confirmBtn = h('button', { id: 'confirm-cancel', class: 'danger confirm', hidden: true, onclick: cancelJob }, 'Yes, cancel it');
  const keepBtn = h('button', { id: 'keep-job', hidden: true, onclick: keepJob }, 'No');
  const graph = h('div', { class: 'graph', id: 'job-graph' });
  const vertices = h('div', { id: 'job-vertices' });
  const exceptions = h('div', { id: 'job-exceptions' });
  const checkpoints = h('div', { id: 'job-checkpoints' });
  main.append(
    h('div', { class: 'job-head' },
      h('div', { class: 'facts' }, title, h('div', {}, state, ' ', facts)),
      h('div', { class: 'actions' }, savepointBtn, cancelBtn, confirmBtn, keepBtn)),
    message,
    h('h2', {}, 'Job graph'), graph, legend(),
    h('h2', {}, 'Vertices'), vertices,
    h('h2', {}, 'Exceptions'), exceptions,
    h('h2', {}, 'Checkpoints'), checkpoints,
  );

  let plan = null; // the job's plan never changes: fetched once
  let terminal = false;
  const page = { update };
  return page;

  async function update() {
    let job;
    try {
      job = await get(`jobs/${jid}`);
    } catch (e) {
      if (e.status !== 404 && e.status !== 400) throw e;
      title.textContent = 'Job not found';
      say(e.message, true);
      return;
    }
    const ended = TERMINAL.has(job.state);
    if (!plan) plan = await loadPlan(job);
    // Fetch the rest after the job (so it is at least as new), then draw
    // everything at once: the page never shows a state next to the
    // exceptions or checkpoints of an earlier one.
    const [pressure, showExceptions, showCheckpoints] = await Promise.all([
      ended ? new Map() : loadPressure(job.vertices), loadExceptions(), loadCheckpoints()]);

    title.textContent = job.name;
    state.textContent = job.state;
    state.className = `state ${job.state}`;
    facts.textContent = [jid, `started ${fmtTime(job['start-time'])}`, `duration ${fmtDuration(job.duration)}`,
      job.restarts ? `${job.restarts} restarts` : null].filter(Boolean).join(' · ');
    terminal = ended;
    savepointBtn.disabled = terminal;
    cancelBtn.disabled = terminal;
    if (terminal) keepJob();
    drawGraph(graph, job.vertices, plan, pressure);
    vertices.replaceChildren(vertexTable(job.vertices, pressure));
    showExceptions();
    showCheckpoints();
  }

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle('error', Boolean(isError));
  }

  // loadPlan returns the job's plan: in the job's details, as newer Flink
  // versions put it, or from /jobs/<id>/plan; null when neither has it.
  async function loadPlan(job) {
    let p = job.plan;
    if (typeof p === 'string') p = JSON.parse(p);
    if (p && p.nodes) return p;
    try {
      return (await get(`jobs/${jid}/plan`)).plan;
    } catch (e) {
      return null;
    }
  }

  // loadPressure returns each vertex's backpressure: the highest ratio of
  // its subtasks and Flink's level for it, or no entry while unknown.
  async function loadPressure(vs) {
    const out = new Map();
    await Promise.all(vs.map(async (v) => {
      try {
        const bp = await get(`jobs/${jid}/vertices/${v.id}/backpressure`);
        const subtasks = bp.subtasks || [];
        if (!subtasks.length) return;
        out.set(String(v.id), { level: bp.backpressureLevel, ratio: Math.max(...subtasks.map((s) => s.ratio)) });
      } catch (e) {
        // Unknown backpressure is drawn as such.
      }
    }));
    return out;
  }

  // loadExceptions fetches the job's exceptions and returns a function
  // that draws them.
  async function loadExceptions() {
    let ex;
    try {
      ex = await get(`jobs/${jid}/exceptions`);
    } catch (e) {
      return () => exceptions.replaceChildren(empty(`Cannot load the exceptions: ${e.message}`));
    }
    const entries = [];
    if (ex.exceptionHistory && Array.isArray(ex.exceptionHistory.entries)) {
      for (const e of ex.exceptionHistory.entries) {
        entries.push({ time: e.timestamp, text: e.stacktrace || e.exceptionName, where: e.taskName });
      }
    } else if (ex['root-exception']) {
      entries.push({ time: ex.timestamp, text: ex['root-exception'] });
      for (const e of ex['all-exceptions'] || []) {
        const text = typeof e === 'string' ? e : e.exception;
        if (text && text !== ex['root-exception']) entries.push({ time: e.timestamp, text, where: e.task });
      }
    }
    if (!entries.length) return () => exceptions.replaceChildren(empty('No exceptions.'));
    return () => exceptions.replaceChildren(...entries.map((e) => h('div', {},
      h('div', { class: 'muted' }, [fmtTime(e.time), e.where].filter(Boolean).join(' · ')),
      h('pre', { class: 'exception' }, e.text))));
  }

  // loadCheckpoints fetches the job's checkpoint statistics and returns a
  // function that draws them.
  async function loadCheckpoints() {
    let cp;
    try {
      cp = await get(`jobs/${jid}/checkpoints`);
    } catch (e) {
      return () => checkpoints.replaceChildren(empty(e.status === 404 ? 'No checkpoints.' : `Cannot load the checkpoints: ${e.message}`));
    }
    const counts = (cp && cp.counts) || {};
    const history = (cp && cp.history) || [];
    if (!history.length && !counts.total) return () => checkpoints.replaceChildren(empty('No checkpoints.'));
    const latest = (cp.latest && cp.latest.completed) || null;
    return () => checkpoints.replaceChildren(
      h('p', { id: 'checkpoint-counts' },
        `Completed ${fmtInt(counts.completed)} · Failed ${fmtInt(counts.failed)} · ` +
        `In progress ${fmtInt(counts.in_progress)} · Restored ${fmtInt(counts.restored)}`,
        latest ? h('span', { class: 'muted' }, ` · latest: #${latest.id} ${latest.external_path || ''}`) : null),
      history.length ? h('table', {},
        h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'ID'), h('th', {}, 'Status'), h('th', {}, 'Type'),
          h('th', {}, 'Triggered'), h('th', { class: 'num' }, 'Duration'), h('th', { class: 'num' }, 'Size'),
          h('th', { class: 'num' }, 'Acknowledged'))),
        h('tbody', {}, history.map((c) => h('tr', {},
          h('td', { class: 'num' }, c.id),
          h('td', {}, stateBadge(c.status)),
          h('td', {}, c.checkpoint_type || (c.is_savepoint ? 'SAVEPOINT' : 'CHECKPOINT')),
          h('td', {}, fmtTime(c.trigger_timestamp)),
          h('td', { class: 'num' }, fmtDuration(c.end_to_end_duration)),
          h('td', { class: 'num' }, fmtBytes(c.checkpointed_size != null ? c.checkpointed_size : c.state_size)),
          h('td', { class: 'num' }, `${fmtInt(c.num_acknowledged_subtasks)}/${fmtInt(c.num_subtasks)}`))))) : null);
  }

  function askCancel() {
    cancelBtn.hidden = true;
    confirmBtn.hidden = false;
    keepBtn.hidden = false;
  }

  function keepJob() {
    cancelBtn.hidden = false;
    confirmBtn.hidden = true;
    keepBtn.hidden = true;
  }

  async function cancelJob() {
    keepJob();
    cancelBtn.disabled = true;
    try {
      await request('PATCH', `jobs/${jid}?mode=cancel`);
      say('Cancellation requested.');
    } catch (e) {
      say(`Cancelling failed: ${e.message}`, true);
      cancelBtn.disabled = terminal;
    }
    refresh();
  }

  async function triggerSavepoint() {
    savepointBtn.disabled = true;
    say('Triggering a savepoint…');
    try {
      const r = await request('POST', `jobs/${jid}/savepoints`, { 'cancel-job': false });
      const rid = r && r['request-id'];
      if (!rid) {
        say('Savepoint triggered.');
        return;
      }
      say(`Savepoint triggered (request ${rid}); waiting for it to complete…`);
      // A savepoint under backpressure waits for its barriers to pass the
      // queued records: keep asking as long as the job's page is shown.
      while (current === page) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const st = await get(`jobs/${jid}/savepoints/${rid}`);
        if (st && st.status && st.status.id === 'COMPLETED') {
          const op = st.operation || {};
          const cause = op['failure-cause'];
          if (cause) say(`Savepoint failed: ${cause['stack-trace'] || cause.class || JSON.stringify(cause)}`, true);
          else say(`Savepoint completed: ${op.location}`);
          return;
        }
      }
    } catch (e) {
      say(`Savepoint failed: ${e.message}`, true);
    } finally {
      savepointBtn.disabled = terminal;
    }
  }
}

function legend() {
  return h('div', { class: 'legend' },
    h('span', { class: 'ok' }, 'backpressure OK (≤ 10%)'),
    h('span', { class: 'low' }, 'low (≤ 50%)'),
    h('span', { class: 'high' }, 'high'),
    h('span', { class: 'unknown' }, 'unknown'));
}

function vertexTable(vs, pressure) {
  return h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', { class: 'num' }, 'Parallelism'), h('th', {}, 'Status'),
      h('th', { class: 'num' }, 'Records in'), h('th', { class: 'num' }, 'Records out'),
      h('th', { class: 'num', title: 'Serialized bytes over the network exchange' }, 'Bytes in'),
      h('th', { class: 'num', title: 'Serialized bytes over the network exchange' }, 'Bytes out'),
      h('th', { class: 'num' }, 'Backpressure'), h('th', {}, 'Subtasks'))),
    h('tbody', {}, vs.map((v) => {
      const bp = pressure.get(String(v.id));
      return h('tr', { 'data-vertex-id': v.id },
        h('td', {}, v.name), h('td', { class: 'num' }, v.parallelism), h('td', {}, stateBadge(v.status)),
        h('td', { class: 'num' }, fmtInt(v.metrics['read-records'])),
        h('td', { class: 'num' }, fmtInt(v.metrics['write-records'])),
        h('td', { class: 'num vertex-bytes-in' }, fmtBytes(v.metrics['read-bytes'])),
        h('td', { class: 'num vertex-bytes-out' }, fmtBytes(v.metrics['write-bytes'])),
        h('td', { class: 'num' }, bp ? `${fmtPercent(bp.ratio)} (${bp.level})` : '–'),
        h('td', {}, taskSummary(lowerKeys(v.tasks))));
    })));
}

function lowerKeys(m) {
  return Object.fromEntries(Object.entries(m || {}).map(([k, v]) => [k.toLowerCase(), v]));
}

// ---- the job graph -------------------------------------------------------

const BOX_W = 250;
const LINE_H = 16;
const PAD = 10;
const GAP_X = 100;
const GAP_Y = 24;
const MAX_CHARS = 34;

// drawGraph draws the vertices as boxes, left to right by depth, with the
// plan's edges between them; a box's colour is its backpressure level.
function drawGraph(container, vertices, plan, pressure) {
  const inputs = new Map();
  for (const n of (plan && plan.nodes) || []) {
    inputs.set(String(n.id), (n.inputs || []).map((i) => ({ id: String(i.id), ship: i.ship_strategy })));
  }
  // Depth: a vertex sits one column right of its deepest input. Vertices
  // come in topological order.
  const boxes = new Map();
  const columns = [];
  for (const v of vertices) {
    const id = String(v.id);
    const ins = (inputs.get(id) || []).filter((i) => boxes.has(i.id));
    const depth = ins.length ? 1 + Math.max(...ins.map((i) => boxes.get(i.id).depth)) : 0;
    const lines = boxLines(v, pressure.get(id));
    const box = { v, id, depth, lines, ins, w: BOX_W, h: 2 * PAD + lines.length * LINE_H };
    boxes.set(id, box);
    (columns[depth] = columns[depth] || []).push(box);
  }
  const heights = columns.map((col) => col.reduce((sum, b) => sum + b.h, 0) + GAP_Y * (col.length - 1));
  const height = Math.max(0, ...heights);
  columns.forEach((col, depth) => {
    let y = PAD + (height - heights[depth]) / 2;
    for (const b of col) {
      b.x = PAD + depth * (BOX_W + GAP_X);
      b.y = y;
      y += b.h + GAP_Y;
    }
  });

  const root = svg('svg', {
    width: 2 * PAD + columns.length * BOX_W + Math.max(0, columns.length - 1) * GAP_X,
    height: height + 2 * PAD,
    role: 'img',
    'aria-label': 'job graph',
  }, svg('defs', {}, svg('marker', {
    id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse',
  }, svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }))));

  for (const b of boxes.values()) {
    for (const i of b.ins) {
      const a = boxes.get(i.id);
      const x1 = a.x + a.w;
      const y1 = a.y + a.h / 2;
      const x2 = b.x;
      const y2 = b.y + b.h / 2;
      const bend = GAP_X / 2;
      root.append(
        svg('path', { class: 'edge', d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, 'marker-end': 'url(#arrow)' }),
        svg('text', { class: 'ship', x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle' }, i.ship || ''));
    }
  }
  for (const b of boxes.values()) {
    const bp = pressure.get(b.id);
    const g = svg('g', { class: `vertex ${bp ? bp.level : 'unknown'}`, 'data-vertex-id': b.id },
      svg('title', {}, b.v.name),
      svg('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: 6 }));
    b.lines.forEach((line, n) => {
      g.append(svg('text', { class: line.cls, x: b.x + PAD, y: b.y + PAD + (n + 1) * LINE_H - 4 }, line.text));
    });
    root.append(g);
  }
  container.replaceChildren(vertices.length ? root : empty('The job has no vertices.'));
}

// boxLines are a vertex's lines of text: one per chained operator, then
// its parallelism and status, records, and backpressure.
function boxLines(v, bp) {
  const names = v.name.replace(/^Source: /, '').split(' -> ');
  const lines = names.map((n, i) => ({
    cls: 'name',
    text: clip((i === 0 && v.name.startsWith('Source: ') ? 'Source: ' : '') + n),
  }));
  lines.push(
    { cls: 'detail', text: `Parallelism ${v.parallelism} · ${v.status}` },
    { cls: 'detail', text: `In ${fmtInt(v.metrics['read-records'])} · Out ${fmtInt(v.metrics['write-records'])}` },
    { cls: 'detail', text: bp ? `Backpressure ${fmtPercent(bp.ratio)} (${bp.level})` : 'Backpressure –' },
  );
  return lines;
}

function clip(s) {
  return s.length > MAX_CHARS ? `${s.slice(0, MAX_CHARS - 1)}…` : s;
}

start();
