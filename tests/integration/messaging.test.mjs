// Messaging across two gateways: ack and delivery, ids and seqs, presence,
// offline messages, idempotent retries, sync (docs/protocol.md). One cluster
// (redis, router, gw1, gw2) shared by the tests; every test uses fresh users.
import assert from 'node:assert/strict';
import { decode } from '@msgpack/msgpack';
import { after, before } from 'node:test';
import { Client, brief } from './lib/client.mjs';
import { Cluster, waitFor } from './lib/cluster.mjs';

const INBOX_CAP = 50;
const cluster = new Cluster('messaging', { routerArgs: ['--inbox-cap', String(INBOX_CAP)] });
before(() => cluster.start());
after(() => cluster.stop());

const GW1 = () => cluster.gw(0);
const GW2 = () => cluster.gw(1);
let cidN = 0;
const cid = (p = 'c') => `${p}-${++cidN}`;

const users = (...bases) => cluster.users(bases);

// Waits until some gateway listens to NAME's presence channel (internals.md),
// so an online/offline published next is not lost to a subscription race.
function inbox(name) {
    return cluster.redisBuffers('LRANGE', `parley:{u:${name}}:inbox`, '0', '-1').then((l) => l.map((b) => decode(b)));
}

const isPosInt = (v) => Number.isInteger(v) && v > 0;

function assertAck(ack, c) {
    assert.equal(ack.kind, 'ack');
    assert.equal(ack.cid, c, `ack.cid: ${brief(ack)}`);
    assert.ok(isPosInt(ack.id), `ack.id must be a positive integer: ${brief(ack)}`);
    assert.ok(isPosInt(ack.seq), `ack.seq must be a positive integer: ${brief(ack)}`);
    assert.ok(Number.isInteger(ack.sent) && Math.abs(ack.sent - Date.now()) < 60000, `ack.sent must be server ms now: ${brief(ack)}`);
}

async function send(client, to, data, c = cid()) {
    client.send({ kind: 'text', to, data, cid: c });
    const ack = await client.next((f) => (f.kind === 'ack' || f.kind === 'error') && f.cid === c);
    assert.equal(ack.kind, 'ack', `${client.name} -> ${to} cid ${c}: expected ack, got ${brief(ack)}`);
    assertAck(ack, c);
    return ack;
}

// ------------------------------------------------------------------ delivery

cluster.test('text from A on gw1 to B on gw2: A gets ack, B gets the text', async () => {
    const [a, b] = await users('a', 'b');
    const B = await Client.connect(GW2(), b.token);
    const A = await Client.connect(GW1(), a.token);
    const c = cid();
    A.send({ kind: 'text', to: b.name, data: 'hello b', cid: c });
    const ack = await A.next({ kind: 'ack', cid: c });
    assertAck(ack, c);
    const t = await B.next({ kind: 'text' });
    assert.equal(t.id, ack.id, `text.id vs ack.id: ${brief(t)} / ${brief(ack)}`);
    assert.equal(t.from, a.name, 'text.from');
    assert.equal(t.to, b.name, 'text.to');
    assert.equal(t.data, 'hello b', 'text.data');
    assert.equal(t.cid, c, 'text.cid');
    assert.equal(t.sent, ack.sent, 'text.sent equals ack.sent');
    assert.equal(t.seq, B.hello.seq + 1, `B's text.seq is hello.seq+1 (hello ${B.hello.seq}): ${brief(t)}`);
    // the sending session does not get its own text back
    await A.expectNone({ kind: 'text' }, 300, 'text echoed to the sending session');
});

cluster.test('successive messages get increasing ids and the recipient seq grows by one', async () => {
    const [a, b] = await users('a', 'b');
    const B = await Client.connect(GW2(), b.token);
    const A = await Client.connect(GW1(), a.token);
    const acks = [];
    for (let i = 0; i < 5; i++) acks.push(await send(A, b.name, `m${i}`));
    const texts = [];
    for (let i = 0; i < 5; i++) texts.push(await B.next({ kind: 'text' }));
    const ids = acks.map((x) => x.id);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `ids must increase: ${ids}`);
    assert.deepEqual(
        texts.map((t) => t.id),
        ids,
        'B receives the acked ids in order',
    );
    assert.deepEqual(
        texts.map((t) => t.data),
        ['m0', 'm1', 'm2', 'm3', 'm4'],
        'B receives the data in order',
    );
    const seqs = texts.map((t) => t.seq);
    const want = seqs.map((_, i) => B.hello.seq + 1 + i);
    assert.deepEqual(seqs, want, `B's seq must grow by one from hello.seq=${B.hello.seq}`);
    const aseqs = acks.map((x) => x.seq);
    for (let i = 1; i < aseqs.length; i++) assert.equal(aseqs[i], aseqs[i - 1] + 1, `sender's ack seqs grow by one: ${aseqs}`);
});

cluster.test('from and sent are set by the server even when the client forges them', async () => {
    const [a, b, m] = await users('a', 'b', 'mallory');
    const B = await Client.connect(GW2(), b.token);
    const A = await Client.connect(GW1(), a.token);
    const c = cid();
    A.send({ kind: 'text', to: b.name, data: 'trust me', cid: c, from: m.name, sent: 1 });
    const ack = await A.next((f) => f.cid === c);
    assert.equal(ack.kind, 'ack', `forged-from send: ${brief(ack)}`);
    const t = await B.next({ kind: 'text' });
    assert.equal(t.from, a.name, `text.from must be the authenticated sender ${a.name}, got ${t.from}`);
    assert.notEqual(t.sent, 1, 'text.sent must be the server clock, not the client value');
    assert.ok(Math.abs(t.sent - Date.now()) < 60000, `text.sent ${t.sent} is not now`);
});

cluster.test("the sender's other session receives its own message", async () => {
    const [a, b] = await users('a', 'b');
    const A1 = await Client.connect(GW1(), a.token, { name: 'A1' });
    const A2 = await Client.connect(GW2(), a.token, { name: 'A2' });
    const B = await Client.connect(GW2(), b.token);
    const ack = await send(A1, b.name, 'copy to my other tab');
    const own = await A2.next({ kind: 'text' });
    assert.equal(own.id, ack.id, `A2 copy: ${brief(own)}`);
    assert.equal(own.from, a.name);
    assert.equal(own.to, b.name);
    assert.equal(own.seq, ack.seq, "the copy's seq is the one the ack gave the sender");
    await B.next({ kind: 'text', id: ack.id });
    await A1.expectNone({ kind: 'text' }, 300, 'text echoed to the sending session');
});

// ------------------------------------------------------------------ presence

cluster.test('presence: B sees online when A connects on the other gateway and offline when A closes', async () => {
    const [a, b] = await users('a', 'b');
    const B = await Client.connect(GW1(), b.token);
    const entry = (B.hello.users || []).find((u) => u.username === a.name);
    assert.ok(entry, `B's hello.users should list ${a.name} (small deployment: everyone is a contact): ${brief(B.hello)}`);
    assert.equal(entry.online, false, `${a.name} is offline in B's hello`);
    await cluster.presenceSubscribed(a.name);
    const A = await Client.connect(GW2(), a.token);
    const on = await B.next({ kind: 'online', from: a.name });
    assert.equal(on.from, a.name);
    assert.ok((await cluster.redis('SMEMBERS', 'parley:online')).includes(a.name), 'parley:online has A');
    await A.close();
    await B.next({ kind: 'offline', from: a.name });
    assert.ok(!(await cluster.redis('SMEMBERS', 'parley:online')).includes(a.name), 'parley:online no longer has A');
});

cluster.test('presence: sessions following the same names close in any order; the others keep getting presence', async () => {
    const [x, f1, f2, f3, f4] = await users('x', 'f1', 'f2', 'f3', 'f4');
    const F = [];
    for (const [i, u] of [f1, f2, f3, f4].entries()) F.push(await Client.connect(GW1(), u.token, { name: `F${i + 1}` }));
    await cluster.presenceSubscribed(x.name);
    // the first and the second follower go (not in the order they came)
    await F[1].close();
    await F[0].close();
    const X = await Client.connect(GW2(), x.token);
    for (const f of [F[2], F[3]]) await f.next({ kind: 'online', from: x.name });
    await F[3].close();
    await X.close();
    await F[2].next({ kind: 'offline', from: x.name });
    // and a follower arriving after the departures is served too
    const F5 = await Client.connect(GW1(), f1.token, { name: 'F1-again' });
    assert.equal(F5.hello.users.find((u) => u.username === x.name)?.online, false, `${x.name} offline in the new hello`);
    const X2 = await Client.connect(GW2(), x.token);
    await F5.next({ kind: 'online', from: x.name });
    await F[2].next({ kind: 'online', from: x.name });
    await X2.close();
    await F5.close();
});

cluster.test('presence: with two sessions of A, closing one sends no offline, closing both does', async () => {
    const [a, b] = await users('a', 'b');
    const B = await Client.connect(GW1(), b.token);
    await cluster.presenceSubscribed(a.name);
    const A1 = await Client.connect(GW1(), a.token, { name: 'A1' });
    await B.next({ kind: 'online', from: a.name });
    const A2 = await Client.connect(GW2(), a.token, { name: 'A2' });
    await A1.close();
    // the close was processed once the session set holds only A2's session
    await waitFor(async () => (await cluster.redis('SCARD', `parley:{u:${a.name}}:sessions`)) === 1, {
        timeout: 3000,
        what: `parley:{u:${a.name}}:sessions down to 1`,
    }).catch(() => {}); // internal detail; the frame checks below are the contract
    await B.expectNone({ from: a.name }, 500, `presence frame about ${a.name} while A2 is still connected`);
    assert.ok((await cluster.redis('SMEMBERS', 'parley:online')).includes(a.name), 'A stays in parley:online');
    await A2.close();
    await B.next({ kind: 'offline', from: a.name });
    await B.expectNone({ from: a.name }, 300, 'a second presence frame');
    assert.equal(B.all({ kind: 'online', from: a.name }).length, 1, 'exactly one online for A');
    assert.equal(B.all({ kind: 'offline', from: a.name }).length, 1, 'exactly one offline for A');
});

// ------------------------------------------------------------------ offline

cluster.test('offline message: pushed right after hello, and not again on the next connect', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(GW1(), a.token);
    const ack = await send(A, b.name, 'while you were away');
    const B = await Client.connect(GW2(), b.token);
    assert.equal(B.frames[0].kind, 'hello', `first frame must be hello: ${B.dump()}`);
    const t = await B.next({ kind: 'text' });
    assert.equal(t.id, ack.id, `offline text: ${brief(t)}`);
    assert.equal(t.data, 'while you were away');
    assert.equal(t.from, a.name);
    assert.ok(B.hello.seq >= t.seq, `hello.seq ${B.hello.seq} should cover the pushed entry seq ${t.seq}`);
    await B.expectNone({ kind: 'text' }, 300, 'a second copy');
    await B.close();
    const B2 = await Client.connect(GW1(), b.token, { name: 'B-again' });
    await B2.expectNone({ kind: 'text' }, 600, 'the offline message pushed a second time');
});

// ------------------------------------------------------------------ retries

cluster.test('a retry with the same cid yields one message: same id twice, one delivery, one inbox entry', async () => {
    const [a, b] = await users('a', 'b');
    const B = await Client.connect(GW2(), b.token);
    const A = await Client.connect(GW1(), a.token);
    const c = cid('retry');
    A.send({ kind: 'text', to: b.name, data: 'once', cid: c });
    A.send({ kind: 'text', to: b.name, data: 'once', cid: c });
    const ack1 = await A.next((f) => f.cid === c);
    const ack2 = await A.next((f) => f.cid === c);
    assert.equal(ack1.kind, 'ack', brief(ack1));
    assert.equal(ack2.kind, 'ack', brief(ack2));
    assert.equal(ack2.id, ack1.id, `both acks must carry the same id: ${brief(ack1)} / ${brief(ack2)}`);
    const t = await B.next({ kind: 'text' });
    assert.equal(t.id, ack1.id);
    await B.expectNone({ kind: 'text' }, 500, 'a second delivery of the retried message');
    const len = await cluster.redis('LLEN', `parley:{u:${b.name}}:inbox`);
    assert.equal(len, 1, `parley:{u:${b.name}}:inbox must hold one entry, holds ${len}`);
    const [entry] = await inbox(b.name);
    assert.equal(entry.id, ack1.id, `inbox entry: ${brief(entry)}`);
    // a later retry (after delivery) is still the same message
    const ack3 = await send(A, b.name, 'once', c);
    assert.equal(ack3.id, ack1.id, 'a late retry still gets the same id');
    await B.expectNone({ kind: 'text' }, 300, 'a delivery of the late retry');
    assert.equal(await cluster.redis('LLEN', `parley:{u:${b.name}}:inbox`), 1, 'still one inbox entry after the late retry');
});

// ------------------------------------------------------------------ sync

cluster.test('sync after reconnecting to the other gateway replays exactly what was missed', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(GW1(), a.token);
    const B1 = await Client.connect(GW1(), b.token, { name: 'B1' }); // stays: entries count as pushed
    const B2 = await Client.connect(GW2(), b.token, { name: 'B2' });
    const first = await send(A, b.name, 'seen by both');
    const seen = await B2.next({ kind: 'text', id: first.id });
    await B1.next({ kind: 'text', id: first.id });
    const after = seen.seq;
    const epoch = B2.hello.epoch;
    await B2.close();
    const missed = [];
    for (let i = 0; i < 3; i++) missed.push(await send(A, b.name, `missed ${i}`));
    for (const m of missed) await B1.next({ kind: 'text', id: m.id });

    const B3 = await Client.connect(GW1(), b.token, { name: 'B2-back' });
    assert.equal(B3.hello.epoch, epoch, 'epoch is stable while the inbox is kept');
    assert.equal(B3.hello.seq, after + 3, `hello.seq after 3 missed entries (was ${after})`);
    B3.send({ kind: 'sync', after, epoch });
    const end = await B3.next({ kind: 'sync' });
    assert.equal(end.recovered, true, `sync end: ${brief(end)}`);
    assert.equal(end.seq, after + 3, `sync end seq: ${brief(end)}`);
    const texts = B3.all({ kind: 'text' });
    assert.deepEqual(
        texts.map((t) => [t.id, t.seq, t.data]),
        missed.map((m, i) => [m.id, after + 1 + i, `missed ${i}`]),
        `B must receive exactly the 3 missed entries in order before the sync end; got ${B3.dump()}`,
    );
    const endIdx = B3.frames.indexOf(end);
    assert.ok(
        B3.frames.slice(endIdx + 1).every((f) => f.kind !== 'text'),
        'no text after the sync end',
    );
});

cluster.test('sync with a wrong epoch answers recovered:false and replays nothing', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(GW1(), a.token);
    const B = await Client.connect(GW2(), b.token);
    const ack = await send(A, b.name, 'one');
    await B.next({ kind: 'text', id: ack.id });
    B.send({ kind: 'sync', after: 0, epoch: `${B.hello.epoch}-not` });
    const end = await B.next({ kind: 'sync' });
    assert.equal(end.recovered, false, `sync with a wrong epoch: ${brief(end)}`);
    assert.equal(end.seq, B.hello.seq + 1, `sync end seq is the current seq: ${brief(end)}`);
    assert.deepEqual(B.pending({ kind: 'text' }), [], 'no text replayed for a wrong epoch');
});

cluster.test('sync with after equal to the current seq answers recovered:true with nothing', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(GW1(), a.token);
    await send(A, b.name, 'x');
    const B = await Client.connect(GW2(), b.token);
    await B.next({ kind: 'text' }); // the offline push
    B.send({ kind: 'sync', after: B.hello.seq, epoch: B.hello.epoch });
    const end = await B.next({ kind: 'sync' });
    assert.equal(end.recovered, true, brief(end));
    assert.equal(end.seq, B.hello.seq, brief(end));
    assert.deepEqual(B.pending({ kind: 'text' }), [], 'nothing replayed');
});

cluster.test('sync with after older than what the capped inbox kept answers recovered:false', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(GW1(), a.token);
    const B = await Client.connect(GW2(), b.token);
    const after = B.hello.seq;
    const epoch = B.hello.epoch;
    await B.close();
    const n = INBOX_CAP + 10;
    for (let i = 0; i < n; i++) A.send({ kind: 'text', to: b.name, data: `flood ${i}`, cid: `cap-${i}` });
    for (let i = 0; i < n; i++) await A.next({ kind: 'ack', cid: `cap-${i}` });
    assert.equal(await cluster.redis('LLEN', `parley:{u:${b.name}}:inbox`), INBOX_CAP, `inbox capped at --inbox-cap ${INBOX_CAP}`);
    const B2 = await Client.connect(GW1(), b.token);
    B2.send({ kind: 'sync', after, epoch });
    const end = await B2.next({ kind: 'sync' });
    assert.equal(end.recovered, false, `sync after=${after} when seq ${after + 1}.. were trimmed: ${brief(end)}`);
    assert.equal(end.seq, after + n, `sync end seq: ${brief(end)}`);
});

// ------------------------------------------------------------------ typing

cluster.test('typing from A on gw1 reaches B on gw2 and is not stored', async () => {
    const [a, b] = await users('a', 'b');
    const B = await Client.connect(GW2(), b.token);
    const A = await Client.connect(GW1(), a.token);
    A.send({ kind: 'typing', to: b.name });
    const t = await B.next({ kind: 'typing' });
    assert.equal(t.from, a.name, `typing.from: ${brief(t)}`);
    assert.equal(t.to, b.name, `typing.to: ${brief(t)}`);
    assert.equal(await cluster.redis('LLEN', `parley:{u:${b.name}}:inbox`), 0, 'typing is not stored in the inbox');
    await A.expectNone({ kind: 'error' }, 200, 'an error for a valid typing frame');
});

// ------------------------------------------------------------------ volume
// A backlog bigger than the gateway's per-socket send queue (default 1 MiB)
// must still reach a client that reads normally: the replay has to be paced,
// not dumped into the queue at once (which would cut the client off as a slow
// consumer, at every retry).

const CHUNK = 'q'.repeat(48 * 1024);
const BACKLOG = 40; // 40 x 48 KiB = 1.9 MiB, within the inbox cap (50)

cluster.test('offline push of a backlog bigger than the send queue reaches a reading client completely', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(GW1(), a.token);
    for (let i = 0; i < BACKLOG; i++) A.send({ kind: 'text', to: b.name, data: CHUNK, cid: `ob-${i}` });
    const acks = [];
    for (let i = 0; i < BACKLOG; i++) acks.push((await A.next({ kind: 'ack', cid: `ob-${i}` })).id);
    const B = await Client.connect(GW2(), b.token);
    for (const id of acks) await B.next({ kind: 'text', id }, 10000);
    assert.equal(B.closeInfo, null, `B must stay connected: ${JSON.stringify(B.closeInfo)}`);
});

cluster.test('sync of a backlog bigger than the send queue replays it completely to a reading client', async () => {
    const [a, b] = await users('a', 'b');
    const A = await Client.connect(GW1(), a.token);
    const B1 = await Client.connect(GW1(), b.token, { name: 'B1' }); // keeps entries "pushed"
    const B2 = await Client.connect(GW2(), b.token, { name: 'B2' });
    const after = B2.hello.seq;
    const epoch = B2.hello.epoch;
    await B2.close();
    // sent in rounds of 10 (480 KiB) that B1 reads before the next: live,
    // B1 gets them as fast as A sends, and a 1.9 MiB burst into a client that
    // a busy machine keeps from reading for a moment trips the slow-consumer
    // limit (the policy, not what this test is about)
    const acks = [];
    for (let r = 0; r < BACKLOG; r += 10) {
        for (let i = r; i < r + 10; i++) A.send({ kind: 'text', to: b.name, data: CHUNK, cid: `sb-${i}` });
        const round = [];
        for (let i = r; i < r + 10; i++) round.push((await A.next({ kind: 'ack', cid: `sb-${i}` })).id);
        for (const id of round) await B1.next({ kind: 'text', id }, 10000);
        acks.push(...round);
    }
    const B3 = await Client.connect(GW2(), b.token, { name: 'B2-back' });
    B3.send({ kind: 'sync', after, epoch });
    const end = await B3.next({ kind: 'sync' }, 15000);
    assert.equal(end.recovered, true, brief(end));
    assert.deepEqual(
        B3.all({ kind: 'text' }).map((t) => t.id),
        acks,
        'the whole backlog, in order, before the sync end',
    );
    assert.equal(B3.closeInfo, null, `B must stay connected: ${JSON.stringify(B3.closeInfo)}`);
});

cluster.test("sync also replays the user's own messages sent from another session", async () => {
    const [a, b] = await users('a', 'b');
    const A1 = await Client.connect(GW1(), a.token, { name: 'A1' });
    const A2 = await Client.connect(GW2(), a.token, { name: 'A2' });
    const after = A2.hello.seq;
    const epoch = A2.hello.epoch;
    await A2.close();
    const acks = [await send(A1, b.name, 'own 1'), await send(A1, b.name, 'own 2')];
    const A3 = await Client.connect(GW2(), a.token, { name: 'A2-back' });
    A3.send({ kind: 'sync', after, epoch });
    const end = await A3.next({ kind: 'sync' });
    assert.equal(end.recovered, true, brief(end));
    const texts = A3.all({ kind: 'text' });
    assert.deepEqual(
        texts.map((t) => [t.id, t.seq, t.from, t.to]),
        acks.map((x) => [x.id, x.seq, a.name, b.name]),
        `A's own messages with the seqs their acks gave: ${A3.dump()}`,
    );
});
