// The per-user limit of open WebSockets (--user-sessions; docs/protocol.md,
// "Per-user limits"): all tokens and all gateways together. Over it an upgrade
// is answered 429 {"error":"rate_limited"} with Retry-After, before any socket
// exists; a session that two gateways let through at once is refused by
// session_open and closed 4029 before hello. Never more than the limit is in
// the user's session set in Redis, and a bystander is served meanwhile. The
// set of users at the limit each gateway keeps survives a gateway restart, a
// reap, a lost subscriber connection and a Redis restart.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { Client, brief, sendAck } from './lib/client.mjs';

const LIMIT = 4;
const cluster = new Cluster('session_limit', { gatewayArgs: ['--user-sessions', String(LIMIT)] });
before(() => cluster.start());
after(() => cluster.stop());

const sessionsKey = (user) => `parley:{u:${user}}:sessions`;
const scard = async (user) => Number(await cluster.redis('SCARD', sessionsKey(user)));

// One sample of gateway i's /metrics.
async function metric(i, name) {
    const text = await (await fetch(`http://127.0.0.1:${cluster.gw(i)}/metrics`)).text();
    const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
    if (!m) throw new Error(`no ${name} in /metrics of gw${i + 1}`);
    return Number(m[1]);
}

// Waits until gateway i knows `n` users at their limit (the announcement of
// session_open/close, or its re-read of parley:sessions:full, has arrived).
const knowsFull = (i, n) =>
    waitFor(async () => (await metric(i, 'parley_gateway_users_at_session_limit')) === n, {
        timeout: 5000,
        what: `gw${i + 1} knowing ${n} user(s) at the session limit`,
    });

// An upgrade that must be refused with 429 and the JSON error body.
async function expect429(i, token, what) {
    const err = await Client.connect(cluster.gw(i), token).then(
        (c) => {
            c.close();
            throw new Error(`${what}: the upgrade on gw${i + 1} was accepted (hello ${brief(c.hello)})`);
        },
        (e) => e,
    );
    assert.equal(err.status, 429, `${what}: 429 on gw${i + 1}, got ${err.message}`);
    const body = JSON.parse(err.body);
    assert.equal(body.error, 'rate_limited', `${what}: error code`);
    assert.equal(typeof body.message, 'string', `${what}: message`);
    assert.match(body.message, new RegExp(`at most ${LIMIT}`), `${what}: the message says the limit`);
    assert.equal(err.headers['retry-after'], '5', `${what}: Retry-After`);
    assert.match(err.headers['content-type'], /^application\/json/, `${what}: JSON`);
}

// LIMIT sessions of user, alternating between the gateways (or all on `only`).
async function fill(user, { only } = {}) {
    const cs = [];
    for (let k = 0; k < LIMIT; k++) cs.push(await Client.connect(cluster.gw(only ?? k % 2), user.token));
    return cs;
}

// Every test starts with no user at the limit (the previous test's sessions
// are closed, and each gateway has heard so).
async function noneFull() {
    await knowsFull(0, 0);
    await knowsFull(1, 0);
}

// a pair of bystanders, one on each gateway, exchanging one text
async function bystanders(tag) {
    const [a, b] = await cluster.users([`${tag}a`, `${tag}b`]);
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    return {
        A,
        B,
        async chat(cid) {
            const ack = await sendAck(A, b.name, `hello ${cid}`, cid);
            const got = await B.next((f) => f.kind === 'text' && f.id === ack.id);
            assert.equal(got.data, `hello ${cid}`, 'the bystander got the text');
        },
    };
}

cluster.test('over the limit across both gateways: 429 with the JSON error and Retry-After; a bystander chats; closing some lets new ones in', async () => {
    await noneFull();
    const [u] = await cluster.users(['heavy']);
    const by = await bystanders('by');
    const cs = await fill(u);
    assert.equal(await scard(u.name), LIMIT, 'the user has the limit of sessions');
    await knowsFull(0, 1);
    await knowsFull(1, 1);
    for (let k = 0; k < 4; k++) await expect429(k % 2, u.token, `extra upgrade ${k + 1}`);
    assert.equal(await scard(u.name), LIMIT, 'no extra session reached Redis');
    await by.chat('during');

    // a message to the user reaches each of its sessions once
    const ack = await sendAck(by.A, u.name, 'to every session', 'every');
    for (const c of cs) await c.next((f) => f.kind === 'text' && f.id === ack.id);
    assert.ok(
        cs.every((c) => c.all((f) => f.kind === 'text' && f.id === ack.id).length === 1),
        'once per session',
    );

    // close one on each gateway: the user is free again everywhere
    await cs.shift().close();
    await cs.shift().close();
    await waitFor(async () => (await scard(u.name)) === LIMIT - 2, { timeout: 5000, what: 'two sessions closed in Redis' });
    await knowsFull(0, 0);
    await knowsFull(1, 0);
    cs.push(await Client.connect(cluster.gw(1), u.token), await Client.connect(cluster.gw(0), u.token));
    assert.equal(await scard(u.name), LIMIT, 'full again');
    await knowsFull(0, 1);
    await knowsFull(1, 1);
    await expect429(1, u.token, 'full again');
    assert.ok((await metric(0, 'parley_gateway_session_limit_total')) >= 2, 'refusals counted');
    await by.chat('after');
});

cluster.test('many upgrades at once on both gateways: never more than the limit open; the rest 429 or closed 4029 before hello', async () => {
    await noneFull();
    const [u] = await cluster.users(['storm']);
    const by = await bystanders('st');
    let max = 0;
    let sampling = true;
    const sampler = (async () => {
        while (sampling) max = Math.max(max, await scard(u.name));
    })();
    const attempts = Array.from({ length: 40 }, (_, k) => Client.connect(cluster.gw(k % 2), u.token, { timeoutMs: 15000 }));
    const chat = by.chat('storm');
    const results = await Promise.allSettled(attempts);
    await chat;
    sampling = false;
    await sampler;
    const opened = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
    const odd = refused.filter((e) => e.status !== 429 && e.closeCode !== 4029);
    assert.deepEqual(
        odd.map((e) => e.message),
        [],
        'every refusal is a 429 or a close 4029',
    );
    assert.equal(
        opened.length,
        LIMIT,
        `exactly the limit got hello (429: ${refused.filter((e) => e.status === 429).length}, 4029: ${refused.filter((e) => e.closeCode === 4029).length})`,
    );
    assert.ok(max <= LIMIT, `the session set never held more than ${LIMIT} (at most ${max} seen)`);
    await waitFor(async () => (await scard(u.name)) === LIMIT, { timeout: 5000, what: 'the set holding exactly the open sessions' });
    assert.ok(
        opened.every((c) => c.isOpen),
        'the sessions that got hello stay open',
    );
    await by.chat('after storm');
});

cluster.test('the users at the limit are re-learned: a restarted gateway, a lost subscriber connection, a reaped gateway, a Redis restart', async () => {
    await noneFull();
    const [u] = await cluster.users(['relearn']);
    // a restarted gateway reads the marks at its subscription
    let cs = await fill(u, { only: 0 });
    await cluster.gateways[1].proc.stop();
    await cluster.startGateway({ index: 1 });
    await knowsFull(1, 1);
    await expect429(1, u.token, 'after the restart of gw2');

    // gw2's subscriber connection killed while a session closes: re-read on resubscribe
    const list = await cluster.redis('CLIENT', 'LIST');
    const id = list
        .split('\n')
        .find((l) => / name=parley-gw:gw2:subscriber /.test(l))
        ?.match(/^id=(\d+)/)?.[1];
    assert.ok(id, `gw2's subscriber connection in CLIENT LIST:\n${list}`);
    await cluster.redis('CLIENT', 'KILL', 'ID', id);
    await cs.pop().close();
    await waitFor(async () => (await scard(u.name)) === LIMIT - 1, { timeout: 5000, what: 'one session closed' });
    await knowsFull(1, 0);
    cs.push(await Client.connect(cluster.gw(1), u.token));
    await knowsFull(1, 1);
    await knowsFull(0, 1);
    await expect429(0, u.token, 'full again after the resubscription');

    // gw2 killed: the reaper closes its session and frees the user
    await cluster.killGateway(1);
    await waitFor(async () => (await scard(u.name)) === LIMIT - 1, { timeout: 10000, what: "the reaper closing gw2's session" });
    await knowsFull(0, 0);
    cs.push(await Client.connect(cluster.gw(0), u.token));
    await cluster.startGateway({ index: 1 });
    await knowsFull(1, 1);
    await expect429(1, u.token, 'full on gw1 alone, seen from the restarted gw2');

    // Redis restarted (its data kept): the sessions re-open, the marks are read again
    await cluster.stopRedis();
    await cluster.startRedis();
    await cluster.waitHealthy(0);
    await cluster.waitHealthy(1);
    await knowsFull(0, 1);
    await knowsFull(1, 1);
    await expect429(1, u.token, 'after the Redis restart');
    cs = cs.filter((c) => c.isOpen);
    assert.equal(cs.length, LIMIT, `the sessions survived the Redis restart: ${cs.length}`);
    await waitFor(async () => (await scard(u.name)) === LIMIT, { timeout: 10000, what: 're-opened sessions in the set' });
    await cs.pop().close();
    await knowsFull(0, 0);
    await knowsFull(1, 0);
    await Client.connect(cluster.gw(1), u.token);
});

cluster.test('a mark left behind locks nobody out: after 10 s one upgrade goes to session_open, which deletes it', async () => {
    await noneFull();
    const [u] = await cluster.users(['stale']);
    // a mark no script would leave: the user has no session at all
    await cluster.redis('HSET', 'parley:sessions:full', u.name, LIMIT);
    await cluster.redis('PUBLISH', 'parley:sessions:limit', `full ${u.name} ${LIMIT}`);
    await knowsFull(0, 1);
    await knowsFull(1, 1);
    await expect429(0, u.token, 'under a stale mark');
    const t0 = Date.now();
    const c = await waitFor(() => Client.connect(cluster.gw(0), u.token).catch(() => null), {
        timeout: 15000,
        interval: 500,
        what: 'an upgrade let through to the script under the stale mark',
    });
    assert.ok(c.hello, `hello after ${Date.now() - t0} ms`);
    assert.equal(await cluster.redis('HEXISTS', 'parley:sessions:full', u.name), 0, 'the mark is deleted');
    await noneFull();
    await Client.connect(cluster.gw(1), u.token);
});
