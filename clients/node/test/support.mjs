// Test support: a real breakerd binary on a free port, a fake M-Pesa answering with the
// published samples in tests/fixtures/providers/mpesa (sources named in each file), a second
// Node process driven over IPC, and polling waits (never sleeps).

import { spawn, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..', '..');
export const ADMIN_TOKEN = 'admin-secret-0123456789';
export const REPORT_TOKEN = 'report-secret-0123456789';

/** The breakerd binary: $BREAKERD_BIN (the Rust test passes cargo's), else target/debug. */
export const BIN = process.env.BREAKERD_BIN || join(repo, 'target', 'debug', 'breakerd');

/** Waits until `check()` is truthy (checked every 5 ms), failing after `timeoutMs`. */
export async function waitFor(check, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 5));
  }
}

export async function freePort() {
  const server = createNetServer();
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/** A published sample: `{ status, headers, body }` of tests/fixtures/providers/mpesa/NAME.http. */
export function fixture(name) {
  const text = readFileSync(join(repo, 'tests', 'fixtures', 'providers', 'mpesa', `${name}.http`), 'utf8');
  const lines = text.split('\n').filter((line) => !line.startsWith('#'));
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  let index = 1;
  for (; index < lines.length && lines[index].trim() !== ''; index++) {
    const colon = lines[index].indexOf(':');
    headers[lines[index].slice(0, colon).trim().toLowerCase()] = lines[index].slice(colon + 1).trim();
  }
  return { status, headers, body: lines.slice(index + 1).join('\n') };
}

/** A fake Daraja: each path answers its fixture (changeable), after an optional delay; every
 * request is recorded with its time. */
export async function fakeMpesa() {
  const routes = {
    '/oauth/v1/generate': { fixture: 'oauth_success', delayMs: 0 },
    '/mpesa/stkpush/v1/processrequest': { fixture: 'stk_push_success', delayMs: 0 },
    '/mpesa/stkpushquery/v1/query': { fixture: 'stk_query_success', delayMs: 0 },
  };
  const requests = [];
  const server = createServer((request, response) => {
    const path = request.url.split('?')[0];
    requests.push({ method: request.method, path, at: Date.now() });
    request.resume();
    const route = routes[path];
    if (!route) {
      response.writeHead(404).end();
      return;
    }
    const answer = fixture(route.fixture);
    setTimeout(() => {
      response.writeHead(answer.status, answer.headers);
      response.end(answer.body);
    }, route.delayMs);
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    routes,
    requests,
    /** Requests to `path` since `since` (ms since the epoch). */
    count(path, since = 0) {
      return requests.filter((request) => request.path === path && request.at >= since).length;
    },
    close: () => new Promise((done) => {
      server.closeAllConnections?.();
      server.close(done);
    }),
  };
}

/** breakerd with one service `mpesa` in front of `provider`; `settings` go into its table. */
export async function startDaemon(provider, settings = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'breakerd-node-'));
  // Kept across a kill and a restart (its state_dir), removed when the test process ends.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const service = {
    failure_threshold: 3,
    timeout: '"1s"',
    reset_timeout: '"1h"',
    ...settings,
  };
  const config = [
    '[server]',
    `listen = "127.0.0.1:${port}"`,
    `admin_token = "${ADMIN_TOKEN}"`,
    `report_token = "${REPORT_TOKEN}"`,
    '[alerts]',
    `state_dir = "${join(dir, 'state')}"`,
    '[services.mpesa]',
    'preset = "mpesa"',
    `base_url = "${provider.url}"`,
    'consumer_key = "test-key"',
    'consumer_secret = "test-secret"',
    'every = "1h"',
    ...Object.entries(service).map(([key, value]) => `${key} = ${value}`),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'alerts.toml'), config);
  const url = `http://127.0.0.1:${port}`;
  const daemon = {
    url,
    dir,
    child: null,
    log: '',
    async start() {
      const child = spawn(BIN, ['run', '--config', join(dir, 'alerts.toml')], {
        cwd: dir,
        env: { ...process.env, RUST_LOG: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr.on('data', (chunk) => {
        daemon.log += chunk;
      });
      daemon.child = child;
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`breakerd exited: ${daemon.log}`);
        try {
          return (await fetch(`${url}/-/ready`)).ok;
        } catch {
          return false;
        }
      }, 'breakerd to serve');
    },
    /** Kills it at once (SIGKILL): no goodbye on any connection. */
    async kill() {
      const child = daemon.child;
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      const child = daemon.child;
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      await exited;
    },
    async get(path) {
      return (await fetch(url + path)).json();
    },
    async admin(path) {
      const response = await fetch(url + path, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      return { status: response.status, body: await response.json() };
    },
    /** The time (ms since the epoch) of the service's last transition into `to`. */
    async transitionAt(to) {
      const events = await daemon.get('/api/v1/circuit-breakers/mpesa/events');
      const last = events.transitions.filter((transition) => transition.to === to).at(-1);
      return last ? Date.parse(last.at) : null;
    },
  };
  await daemon.start();
  return daemon;
}

/** A second Node process with its own client, driven over IPC (test/worker.mjs). */
export function startWorker() {
  const child = fork(join(here, 'worker.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map();
  const events = [];
  let next = 0;
  child.on('message', (message) => {
    if (message.event) {
      events.push(message);
      return;
    }
    const waiting = pending.get(message.id);
    pending.delete(message.id);
    waiting?.(message);
  });
  return {
    events,
    /** Sends `command` and waits for its answer. */
    ask(command) {
      const id = next++;
      return new Promise((done) => {
        pending.set(id, done);
        child.send({ ...command, id });
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.send({ cmd: 'exit' });
      await exited;
    },
  };
}
