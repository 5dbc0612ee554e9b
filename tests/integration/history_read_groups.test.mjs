// history, read receipts and groups (protocol.md: Frames). The gateway does
// not implement them yet (gateway/README.md: "next issue"), so these tests
// are marked todo: they run and report, but do not fail the suite. Remove
// PENDING from a test once its feature lands.
// Cluster: redis, router, gw1, gw2.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, sendAck } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';

const PENDING = {};
const cluster = new Cluster('history_read_groups');
// Which kinds the gateway answers with unknown_kind (probed once, so a
// pending test fails at once with that reason instead of timing out).
const missing = new Set();
before(async () => {
    await cluster.start();
    const [p] = await users('probe');
    const P = await Client.connect(cluster.gw(0), p.token);
    for (const f of [
        { kind: 'history', with: p.name },
        { kind: 'read', with: p.name, upto: 1 },
        { kind: 'group', op: 'leave', name: '#no-such-group' },
    ]) {
        P.send(f);
        const e = await P.next((x) => x.kind === 'error' || x.kind === f.kind, 1000).catch(() => null);
        if (e && e.kind === 'error' && e.code === 'unknown_kind') missing.add(f.kind);
    }
    await P.close();
});
function requireKinds(...kinds) {
    const absent = kinds.filter((k) => missing.has(k));
    if (absent.length) throw new Error(`the gateway answers unknown_kind to ${absent.join(', ')}: not implemented`);
}
after(() => cluster.stop());

let n = 0;
const cid = () => `hg-${++n}`;

const users = (...bases) => cluster.users(bases);

const send = (c, to, data) => sendAck(c, to, data, cid());

// ------------------------------------------------------------------ history

cluster.test('history pages a conversation newest last, with `more` and `before`', PENDING, async () => {
    requireKinds('history');
    const [a, b] = await users('ha', 'hb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await send(A, b.name, `h${i}`)).id);
    const B = await Client.connect(cluster.gw(1), b.token);
    B.send({ kind: 'history', with: a.name, limit: 3 });
    const p1 = await B.next({ kind: 'history' });
    assert.equal(p1.with, a.name, brief(p1));
    assert.deepEqual(
        p1.messages.map((m) => m.id),
        ids.slice(2),
        `last 3, newest last: ${brief(p1)}`,
    );
    assert.deepEqual(
        p1.messages.map((m) => m.data),
        ['h2', 'h3', 'h4'],
    );
    assert.ok(
        p1.messages.every((m) => m.kind === 'text' && m.from === a.name && m.to === b.name),
        brief(p1),
    );
    assert.equal(p1.more, true, 'older messages exist');
    B.send({ kind: 'history', with: a.name, before: p1.messages[0].id, limit: 3 });
    const p2 = await B.next({ kind: 'history' });
    assert.deepEqual(
        p2.messages.map((m) => m.id),
        ids.slice(0, 2),
        brief(p2),
    );
    assert.equal(p2.more, false, 'nothing older');
});

cluster.test('history with limit out of 1..100 gets bad_field', PENDING, async () => {
    requireKinds('history');
    const [a, b] = await users('hl', 'hm');
    const A = await Client.connect(cluster.gw(0), a.token);
    for (const limit of [0, 101]) {
        A.send({ kind: 'history', with: b.name, limit });
        const e = await A.next({ kind: 'error' });
        assert.equal(e.code, 'bad_field', `limit ${limit}: ${brief(e)}`);
    }
});

// ------------------------------------------------------------------ read

cluster.test("read: the writer gets a read receipt, the reader's other sessions too, and unread drops to 0", PENDING, async () => {
    requireKinds('read');
    const [a, b] = await users('ra', 'rb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const acks = [];
    for (let i = 0; i < 3; i++) acks.push(await send(A, b.name, `r${i}`));
    const B1 = await Client.connect(cluster.gw(1), b.token, { name: 'B1' });
    const entry = B1.hello.users.find((u) => u.username === a.name);
    assert.equal(entry?.unread, 3, `unread from ${a.name} in B's hello: ${brief(B1.hello)}`);
    const B2 = await Client.connect(cluster.gw(0), b.token, { name: 'B2' });
    const upto = acks[2].id;
    B1.send({ kind: 'read', with: a.name, upto });
    const rA = await A.next({ kind: 'read' });
    assert.equal(rA.from, b.name, brief(rA));
    assert.equal(rA.upto, upto, brief(rA));
    const rB2 = await B2.next({ kind: 'read' });
    assert.equal(rB2.from, b.name, brief(rB2));
    assert.equal(rB2.upto, upto, brief(rB2));
    await B1.close();
    await B2.close();
    const B3 = await Client.connect(cluster.gw(1), b.token, { name: 'B3' });
    assert.equal(B3.hello.users.find((u) => u.username === a.name)?.unread, 0, `unread after read: ${brief(B3.hello)}`);
});

// ------------------------------------------------------------------ groups

cluster.test('group create: members get the group frame, a text to #group reaches every member once', PENDING, async () => {
    requireKinds('group');
    const [a, b, c] = await users('ga', 'gb', 'gc');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const C = await Client.connect(cluster.gw(0), c.token);
    const g = `#${cluster.name('team')}`;
    A.send({ kind: 'group', op: 'create', name: g, members: [b.name, c.name] });
    for (const X of [A, B, C]) {
        const f = await X.next({ kind: 'group' });
        assert.equal(f.name, g, brief(f));
        assert.equal(f.op, 'create', brief(f));
        assert.equal(f.by, a.name, brief(f));
        assert.deepEqual([...f.members].sort(), [a.name, b.name, c.name].sort(), brief(f));
    }
    const ack = await send(A, g, 'hello team');
    for (const X of [B, C]) {
        const t = await X.next({ kind: 'text' });
        assert.equal(t.id, ack.id, brief(t));
        assert.equal(t.to, g, brief(t));
        assert.equal(t.from, a.name, brief(t));
        await X.expectNone({ kind: 'text' }, 200, 'a second copy');
    }
});

cluster.test('group: a non-member cannot send to it or join a closed group (forbidden); an open group can be joined', PENDING, async () => {
    requireKinds('group');
    const [a, d] = await users('go', 'gd');
    const A = await Client.connect(cluster.gw(0), a.token);
    const D = await Client.connect(cluster.gw(1), d.token);
    const closed = `#${cluster.name('closed')}`;
    const open = `#${cluster.name('open')}`;
    A.send({ kind: 'group', op: 'create', name: closed, members: [] });
    await A.next({ kind: 'group', name: closed });
    A.send({ kind: 'group', op: 'create', name: open, members: [], open: true });
    await A.next({ kind: 'group', name: open });
    const id = cid();
    D.send({ kind: 'text', to: closed, data: 'let me in', cid: id });
    const e1 = await D.next({ kind: 'error' });
    assert.equal(e1.code, 'forbidden', brief(e1));
    assert.equal(e1.cid, id, brief(e1));
    D.send({ kind: 'group', op: 'join', name: closed });
    const e2 = await D.next({ kind: 'error' });
    assert.equal(e2.code, 'forbidden', `join a closed group: ${brief(e2)}`);
    D.send({ kind: 'group', op: 'join', name: open });
    const j = await A.next({ kind: 'group', name: open, op: 'join' });
    assert.equal(j.by, d.name, brief(j));
    await send(D, open, 'joined');
    await A.next({ kind: 'text', to: open });
});
