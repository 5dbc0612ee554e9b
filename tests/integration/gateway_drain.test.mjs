// SIGTERM a gateway: it drains (/healthz 503), closes its sockets with 1001
// (going away), closes its sessions (contacts see offline) and exits 0
// (protocol.md: Transport/Shutdown, HTTP API /healthz). gw2 is the one
// terminated; it is started again before each test.
import assert from 'node:assert/strict';
import { after, before, beforeEach } from 'node:test';
import { Client, healthz } from './lib/client.mjs';
import { Cluster, sleep } from './lib/cluster.mjs';

const DRAIN_TIMEOUT_MS = 3000;
const cluster = new Cluster('gateway_drain', {
    gatewayArgs: (i) => (i === 1 ? ['--drain-timeout', String(DRAIN_TIMEOUT_MS)] : []),
});
before(() => cluster.start());
after(() => cluster.stop());
beforeEach(() => cluster.ensureGateway(1));

const users = (...bases) => cluster.users(bases);

// SIGTERM gw2 without waiting; resolves with {code, signal} or {error}.
function terminate() {
    const g = cluster.gateways[1];
    const t0 = Date.now();
    const exited = g.proc.signal('SIGTERM', { timeout: DRAIN_TIMEOUT_MS + 5000 }).then(
        (v) => ({ ...v, ms: Date.now() - t0 }),
        (e) => ({ error: e.message, ms: Date.now() - t0 }),
    );
    return { g, t0, exited };
}

cluster.test('SIGTERM a gateway: /healthz answers 503 while it drains', async () => {
    const [v] = await users('stalled');
    // v stops reading its socket: it does not answer the close handshake, so
    // a gateway that waits for its sockets to finish stays in the drain a while
    const V = await Client.connect(cluster.gw(1), v.token, { name: 'stalled@gw2' });
    V.ws._socket.pause();
    assert.equal(await healthz(cluster.gw(1)), 200, 'healthy before SIGTERM');
    const { g, t0, exited } = terminate();
    const answers = [];
    let saw503 = false;
    while (Date.now() - t0 < DRAIN_TIMEOUT_MS + 2000) {
        const h = await healthz(g.port, 500);
        answers.push(`+${Date.now() - t0}ms:${h}`);
        if (h === 503) {
            saw503 = true;
            break;
        }
        if (!g.proc.running) break;
        await sleep(10);
    }
    V.ws._socket.resume();
    const ex = await exited;
    assert.ok(
        saw503,
        `expected /healthz 503 during the drain; answers after SIGTERM: ${answers.slice(0, 8).join(' ')}${answers.length > 8 ? ` ... (${answers.length})` : ''}; the process exited ${ex.ms} ms after SIGTERM with ${JSON.stringify(ex)}`,
    );
});

cluster.test('SIGTERM a gateway: its WebSockets are closed with 1001 (going away)', async () => {
    const [a, b] = await users('v', 'w');
    const A = await Client.connect(cluster.gw(1), a.token, { name: 'v@gw2' });
    const B = await Client.connect(cluster.gw(1), b.token, { name: 'w@gw2' });
    const { exited } = terminate();
    const ca = await A.waitClosed(DRAIN_TIMEOUT_MS + 1000);
    const cb = await B.waitClosed(DRAIN_TIMEOUT_MS + 1000);
    assert.deepEqual([ca.code, cb.code], [1001, 1001], `close codes of the two sockets: expected 1001, got ${ca.code}, ${cb.code}`);
    await exited;
    // clients reconnect to the other gateway
    const back = await Client.connect(cluster.gw(0), a.token, { name: 'v@gw1' });
    assert.equal(back.hello.user, a.name);
});

cluster.test('SIGTERM a gateway: it closes its sessions (contacts see offline) and exits 0', async () => {
    const [obs, v] = await users('obs', 'v');
    const O = await Client.connect(cluster.gw(0), obs.token, { name: 'obs@gw1' });
    await cluster.presenceSubscribed(v.name);
    await Client.connect(cluster.gw(1), v.token, { name: 'v@gw2' });
    await O.next({ kind: 'online', from: v.name });
    const { exited } = terminate();
    const ex = await exited;
    assert.deepEqual({ code: ex.code, signal: ex.signal }, { code: 0, signal: null }, `gateway exit after SIGTERM (${JSON.stringify(ex)})`);
    assert.ok(ex.ms <= DRAIN_TIMEOUT_MS + 2000, `drain took ${ex.ms} ms, --drain-timeout is ${DRAIN_TIMEOUT_MS}`);
    // the sessions were closed by the drain itself, not left to the reaper
    await O.next({ kind: 'offline', from: v.name }, 1000);
    assert.ok(!(await cluster.redis('SMEMBERS', 'parley:online')).includes(v.name), 'parley:online after the drain');
    assert.deepEqual(await cluster.redis('SMEMBERS', `parley:{u:${v.name}}:sessions`), [], 'session set after the drain');
});
