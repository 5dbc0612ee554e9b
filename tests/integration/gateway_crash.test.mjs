// A gateway dies (SIGKILL): its users go offline everywhere once its heartbeat
// expires and a router reaps it; nothing acknowledged is lost (protocol.md:
// Delivery guarantees, Offline messages and recovery). Cluster: redis,
// router, gw1, gw2; gw2 is killed (and restarted before the next test).
// Also: a gateway that was alive but whose heartbeats came late (reaped by
// mistake) opens its sessions again at its next beat.
import assert from 'node:assert/strict';
import { decode } from '@msgpack/msgpack';
import { after, before, beforeEach } from 'node:test';
import { Client, brief, sendAck, sendReliably } from './lib/client.mjs';
import { spawn } from 'node:child_process';
import { Cluster, HEARTBEAT_TTL_MS, REAP_INTERVAL_MS, freePort, waitFor } from './lib/cluster.mjs';

const cluster = new Cluster('gateway_crash');
before(() => cluster.start());
after(() => cluster.stop());
beforeEach(() => cluster.ensureGateway(1));

const SLACK_MS = 2000;
const OFFLINE_DEADLINE_MS = HEARTBEAT_TTL_MS + REAP_INTERVAL_MS + SLACK_MS;

const users = (...bases) => cluster.users(bases);

// A fresh user on gw2 and a fresh observer on gw1 who follows its presence;
// resolves once the observer has seen it come online.
async function watchedOnGw2(base, observerBase) {
    const [user, observer] = await users(base, observerBase);
    const O = await Client.connect(cluster.gw(0), observer.token, { name: `${observerBase}@gw1` });
    await cluster.presenceSubscribed(user.name);
    const U = await Client.connect(cluster.gw(1), user.token, { name: `${base}@gw2` });
    await O.next({ kind: 'online', from: user.name });
    return { user, observer, U, O };
}

cluster.test('SIGKILL a gateway: its users go offline within heartbeat TTL + reap interval', async () => {
    const { user: victim, U: V, O } = await watchedOnGw2('victim', 'observer');
    assert.ok((await cluster.redis('SMEMBERS', 'parley:online')).includes(victim.name), 'victim in parley:online before the kill');

    const t0 = Date.now();
    await cluster.killGateway(1, 'SIGKILL');
    const off = await O.next({ kind: 'offline', from: victim.name }, OFFLINE_DEADLINE_MS + 1000);
    const dt = Date.now() - t0;
    assert.ok(dt <= OFFLINE_DEADLINE_MS, `offline came ${dt} ms after the kill; expected within ${OFFLINE_DEADLINE_MS} ms`);
    assert.equal(off.from, victim.name);
    await waitFor(async () => !(await cluster.redis('SMEMBERS', 'parley:online')).includes(victim.name), {
        timeout: Math.max(100, OFFLINE_DEADLINE_MS - (Date.now() - t0)),
        what: `${victim.name} gone from SMEMBERS parley:online`,
    });
    assert.deepEqual(await cluster.redis('SMEMBERS', `parley:{u:${victim.name}}:sessions`), [], "the victim's session set is empty");
    await V.waitClosed(5000); // the TCP connection died with the process
    await O.expectNone({ kind: 'offline', from: victim.name }, 300, 'a second offline');
});

cluster.test('SIGKILL a gateway: every message acked before the kill reaches the recipient after reconnecting', async () => {
    const [sender, rcpt] = await users('sender', 'rcpt');
    const S = await Client.connect(cluster.gw(0), sender.token, { name: 'sender@gw1' });
    const R = await Client.connect(cluster.gw(1), rcpt.token, { name: 'rcpt@gw2' });
    const epoch = R.hello.epoch;
    const cids = [];
    // 10 delivered while R is up ...
    for (let i = 0; i < 10; i++) {
        const c = `k-${i}`;
        cids.push(c);
        S.send({ kind: 'text', to: rcpt.name, data: `m${i}`, cid: c });
    }
    const acks = [];
    for (const c of cids) acks.push(await S.next({ kind: 'ack', cid: c }));
    for (let i = 0; i < 10; i++) await R.next({ kind: 'text' });
    // ... then 10 more fired at once with the kill right behind them
    for (let i = 10; i < 20; i++) {
        const c = `k-${i}`;
        cids.push(c);
        S.send({ kind: 'text', to: rcpt.name, data: `m${i}`, cid: c });
    }
    await cluster.killGateway(1, 'SIGKILL');
    for (const c of cids.slice(10)) {
        const f = await S.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === c);
        assert.equal(f.kind, 'ack', `sender on the surviving gateway: ${brief(f)}`);
        acks.push(f);
    }
    const acked = acks.map((a) => a.id);
    const liveTexts = R.all({ kind: 'text' });
    const lastSeen = Math.max(R.hello.seq, ...liveTexts.map((t) => t.seq));

    // every acked message is in the recipient's inbox
    const inbox = (await cluster.redisBuffers('LRANGE', `parley:{u:${rcpt.name}}:inbox`, '0', '-1')).map((b) => decode(b));
    const inboxIds = new Set(inbox.map((e) => e.id));
    const missing = acked.filter((id) => !inboxIds.has(id));
    assert.deepEqual(missing, [], `acked ids missing from parley:{u:${rcpt.name}}:inbox`);

    // reconnect (to the surviving gateway, at once, before the reaper ran) and recover
    const R2 = await Client.connect(cluster.gw(0), rcpt.token, { name: 'rcpt@gw1' });
    assert.equal(R2.hello.epoch, epoch, 'epoch unchanged');
    R2.send({ kind: 'sync', after: lastSeen, epoch: R2.hello.epoch });
    const end = await R2.next({ kind: 'sync' });
    assert.equal(end.recovered, true, `sync after the crash: ${brief(end)}`);
    const got = [...liveTexts, ...R2.all({ kind: 'text' })].map((t) => t.id);
    const unique = [...new Set(got)];
    assert.deepEqual(
        [...unique].sort((x, y) => x - y),
        [...acked].sort((x, y) => x - y),
        `after de-duplication by id the recipient must hold exactly the acked ids (live ${liveTexts.length}, after reconnect ${R2.all({ kind: 'text' }).length})`,
    );
    for (let i = 1; i < unique.length; i++) assert.ok(unique[i] > unique[i - 1], `ids must arrive in increasing order: ${unique}`);
});

cluster.test('a gateway restarted with the same id after SIGKILL serves again and cleans its old sessions', async () => {
    const [u] = await users('again');
    await Client.connect(cluster.gw(1), u.token, { name: 'again@gw2' });
    await cluster.killGateway(1, 'SIGKILL');
    await cluster.startGateway({ index: 1 });
    await waitFor(async () => !(await cluster.redis('SMEMBERS', 'parley:online')).includes(u.name), {
        timeout: OFFLINE_DEADLINE_MS,
        what: `${u.name} gone from parley:online after the restart`,
    });
    const c = await Client.connect(cluster.gw(1), u.token, { name: 'again@gw2-new' });
    assert.equal(c.hello.user, u.name);
    assert.deepEqual((await cluster.redis('SMEMBERS', `parley:{u:${u.name}}:sessions`)).length, 1, 'only the new session is registered');
});

cluster.test("the sender's gateway dies mid-stream: retrying the unacked cids through the other gateway gives each message exactly once", async () => {
    const [sender, rcpt] = await users('s', 'r');
    const R = await Client.connect(cluster.gw(0), rcpt.token, { name: 'r@gw1' });
    const S = await Client.connect(cluster.gw(1), sender.token, { name: 's@gw2' });
    const N = 50;
    const cids = Array.from({ length: N }, (_, i) => `mid-${i}`);
    for (const c of cids) S.send({ kind: 'text', to: rcpt.name, data: `data of ${c}`, cid: c });
    await S.next({ kind: 'ack', cid: cids[5] }); // part of the stream is through
    await cluster.killGateway(1, 'SIGKILL');
    const ackedBefore = new Map(S.all({ kind: 'ack' }).map((a) => [a.cid, a.id]));

    console.error(`sender's gateway killed: ${ackedBefore.size} of ${N} acked before the kill`);
    const S2 = await Client.connect(cluster.gw(0), sender.token, { name: 's@gw1' });
    const ids = new Map(ackedBefore);
    for (const c of cids) {
        if (ids.has(c)) continue;
        const ack = await sendReliably(S2, { kind: 'text', to: rcpt.name, data: `data of ${c}`, cid: c });
        ids.set(c, ack.id);
    }
    // one retry of an already acked cid gets the id it had
    const again = await sendReliably(S2, { kind: 'text', to: rcpt.name, data: `data of ${cids[0]}`, cid: cids[0] });
    assert.equal(again.id, ackedBefore.get(cids[0]), 'a retried acked cid keeps its id');

    const all = [...ids.values()];
    assert.equal(new Set(all).size, N, `${N} cids, ${N} distinct ids (acked before the kill: ${ackedBefore.size})`);
    const inbox = (await cluster.redisBuffers('LRANGE', `parley:{u:${rcpt.name}}:inbox`, '0', '-1')).map((b) => decode(b));
    assert.equal(inbox.length, N, `the recipient's inbox holds ${N} entries, not ${inbox.length}`);
    assert.deepEqual(
        inbox.map((e) => e.id).sort((x, y) => x - y),
        [...all].sort((x, y) => x - y),
        'inbox ids are the acked ids',
    );
    const got = [];
    for (let i = 0; i < N; i++) got.push((await R.next({ kind: 'text' })).id);
    await R.expectNone({ kind: 'text' }, 300, `a text beyond the ${N} messages`);
    assert.deepEqual(
        got.filter((id, i) => got.indexOf(id) !== i),
        [],
        'the recipient got duplicate ids',
    );
    for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `ids in increasing order at ${i}: ${got[i - 1]} then ${got[i]}`);
});

cluster.test('a live gateway reaped after late heartbeats opens its sessions again at its next beat: presence and live delivery come back', async () => {
    const { user: lapsed, observer: watcher, U: L, O: W } = await watchedOnGw2('lapsed', 'watcher');
    const metric = async () => {
        const text = await (await fetch(`http://127.0.0.1:${cluster.gw(1)}/metrics`)).text();
        return Number(/^parley_gateway_heartbeat_lapses_total (\d+)$/m.exec(text)[1]);
    };
    const lapses0 = await metric();

    // late heartbeats: gw2 is paused (SIGSTOP) past its heartbeat TTL, right
    // after a beat landed (PTTL back near the TTL: no beat waits for its
    // answer), until the reaper has closed the session on it and taken gw2
    // out of parley:gateways (the end of its round); then it runs on
    const pid = cluster.gateways[1].proc.pid;
    await waitFor(async () => (await cluster.redis('PTTL', 'parley:gw:gw2:alive')) > HEARTBEAT_TTL_MS - 100, {
        interval: 5,
        what: 'a fresh gw2 heartbeat',
    });
    process.kill(pid, 'SIGSTOP');
    try {
        await W.next({ kind: 'offline', from: lapsed.name }, HEARTBEAT_TTL_MS + REAP_INTERVAL_MS + 3000);
        await waitFor(async () => (await cluster.redis('SISMEMBER', 'parley:gateways', 'gw2')) === 0, {
            timeout: 3000,
            what: 'the reaper taking gw2 out of parley:gateways',
        });
        assert.equal(await cluster.redis('SISMEMBER', 'parley:online', lapsed.name), 0, 'reaped: offline in parley:online');
    } finally {
        process.kill(pid, 'SIGCONT');
    }

    // gw2's next beat (every ttl/3) finds its key gone and opens the session again
    await W.next({ kind: 'online', from: lapsed.name }, HEARTBEAT_TTL_MS + 2000);
    assert.equal(await cluster.redis('SISMEMBER', 'parley:online', lapsed.name), 1, `${lapsed.name} online again`);
    assert.equal((await cluster.redis('SMEMBERS', `parley:{u:${lapsed.name}}:sessions`)).length, 1, 'one session again');
    assert.equal(await metric(), lapses0 + 1, 'parley_gateway_heartbeat_lapses_total counted it once');
    assert.equal(L.closeInfo, null, "the lapsed user's socket stayed open");

    // and texts reach it live, not only its inbox
    await sendAck(W, lapsed.name, 'after the lapse', 'lapse-1');
    const t = await L.next({ kind: 'text', data: 'after the lapse' });
    assert.equal(t.from, watcher.name);
    // the reaper leaves the gateway alone from then on
    await W.expectNone({ kind: 'offline', from: lapsed.name }, REAP_INTERVAL_MS * 3, 'an offline in the next three reap rounds');
    assert.equal(await cluster.redis('SISMEMBER', 'parley:online', lapsed.name), 1, 'still online after three reap rounds');
    assert.equal(await cluster.redis('SISMEMBER', 'parley:gateways', 'gw2'), 1, 'gw2 in parley:gateways');
});

cluster.test("a gateway started with a live gateway's id stops with a one-line reason; the live one goes on", async () => {
    const g = cluster.gateways[1];
    const args = [...g.args];
    args[args.indexOf('--port') + 1] = String(await freePort());
    const child = spawn(cluster.bin('parley-gateway'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => (err += d));
    const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)));
    assert.ok(code !== 0 && /gateway id gw2 is in use by a running gateway/.test(err), `exit ${code}: ${err}`);
    assert.ok(g.proc.running, 'gw2 still runs');
    assert.equal(await cluster.redis('SISMEMBER', 'parley:gateways', 'gw2'), 1, 'and is still known');
});
