// Conversations (issue 3): history paging and access, unread counts across
// reconnects and gateway restarts, read receipts across gateways, groups
// (fan-out across gateways exactly once, offline members, leave, add, join,
// typing), multi-device views of one's own messages and read positions.
// Cluster: redis, router, gw1, gw2.
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import { after, before } from 'node:test';
import { Client, brief, sendAck } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';

const cluster = new Cluster('conversations');
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `cv-${++n}`;

const users = (...bases) => cluster.users(bases);

const send = (c, to, data) => sendAck(c, to, data, cid());

async function refused(c, frame, code) {
    c.send(frame);
    const e = await c.next({ kind: 'error' });
    assert.equal(e.code, code, `${JSON.stringify(frame)}: ${brief(e)}`);
    return e;
}

async function history(c, withName, opts = {}) {
    c.send({ kind: 'history', with: withName, ...opts });
    const f = await c.next((x) => x.kind === 'history' || x.kind === 'error');
    assert.equal(f.kind, 'history', brief(f));
    return f;
}

const entry = (hello, name) => hello.users.find((u) => u.username === name);

// ------------------------------------------------------------------ history

cluster.test('history: walking back page by page returns every message exactly once, in order', async () => {
    const [a, b] = await users('pa', 'pb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const ids = [];
    for (let i = 0; i < 47; i++) {
        // both directions, so the pages mix senders
        const f = i % 3 === 2 ? await send(B, a.name, `m${i}`) : await send(A, b.name, `m${i}`);
        ids.push(f.id);
    }
    for (const [X, other] of [
        [A, b.name],
        [B, a.name],
    ]) {
        const seen = [];
        let beforeId;
        let pages = 0;
        for (;;) {
            const p = await history(X, other, { limit: 10, ...(beforeId ? { before: beforeId } : {}) });
            assert.equal(p.with, other, brief(p));
            assert.ok(p.messages.length <= 10, `page of ${p.messages.length}`);
            const pageIds = p.messages.map((m) => m.id);
            assert.deepEqual(
                pageIds,
                [...pageIds].sort((x, y) => x - y),
                `newest last: ${pageIds}`,
            );
            seen.unshift(...pageIds);
            pages++;
            if (!p.more) break;
            beforeId = pageIds[0];
        }
        assert.equal(pages, 5, '47 messages in pages of 10');
        assert.deepEqual(seen, ids, `${X.name}: every message once, in id order`);
    }
    const p = await history(A, b.name);
    assert.equal(p.messages.length, 47, 'default limit 50 holds all 47');
    assert.equal(p.more, false);
    assert.deepEqual(
        p.messages.map((m) => m.data),
        ids.map((_, i) => `m${i}`),
    );
    assert.ok(
        p.messages.every((m) => m.kind === 'text' && typeof m.sent === 'number' && m.cid),
        brief(p.messages[0]),
    );
});

cluster.test('history: an empty conversation, a missing user, a group one is not in', async () => {
    const [a, b, c] = await users('ea', 'eb', 'ec');
    const A = await Client.connect(cluster.gw(0), a.token);
    const C = await Client.connect(cluster.gw(1), c.token);
    const empty = await history(A, b.name);
    assert.deepEqual(empty.messages, []);
    assert.equal(empty.more, false);
    await refused(A, { kind: 'history', with: cluster.name('nobody') }, 'no_such_user');
    await refused(A, { kind: 'history', with: `#${cluster.name('nogroup')}` }, 'no_such_user');
    const g = await cluster.createGroup(A, 'priv', [b.name]);
    await send(A, g, 'members only');
    await refused(C, { kind: 'history', with: g }, 'forbidden');
    await refused(C, { kind: 'read', with: g, upto: 1 }, 'forbidden');
    const h = await history(A, g);
    assert.deepEqual(
        h.messages.map((m) => m.data),
        ['members only'],
    );
    assert.equal(h.messages[0].to, g);
    // the connection stays usable after refusals
    await send(C, a.name, 'still here');
});

// ------------------------------------------------------------------ unread

cluster.test('unread counts survive reconnect and a gateway restart; read lowers them', async () => {
    const [a, b] = await users('ua', 'ub');
    const A = await Client.connect(cluster.gw(0), a.token);
    const acks = [];
    for (let i = 0; i < 4; i++) acks.push(await send(A, b.name, `u${i}`));
    let B = await Client.connect(cluster.gw(1), b.token);
    assert.equal(entry(B.hello, a.name)?.unread, 4, brief(B.hello));
    assert.equal(entry(A.hello, b.name)?.unread ?? 0, 0, "the sender's own messages are not unread");
    await B.close();

    // restart gw2 (the gateway B used): counts live in Redis, not in it
    await cluster.killGateway(1, 'SIGTERM');
    await cluster.startGateway({ index: 1 });
    B = await Client.connect(cluster.gw(1), b.token);
    assert.equal(entry(B.hello, a.name)?.unread, 4, `after a gateway restart: ${brief(B.hello)}`);

    B.send({ kind: 'read', with: a.name, upto: acks[1].id });
    const r = await A.next({ kind: 'read' });
    assert.deepEqual([r.from, r.with, r.upto], [b.name, a.name, acks[1].id], brief(r));
    await B.close();
    B = await Client.connect(cluster.gw(0), b.token);
    const e = entry(B.hello, a.name);
    assert.equal(e?.unread, 2, `two left after reading up to the second: ${brief(B.hello)}`);
    assert.equal(e?.read, acks[1].id, 'hello carries the read position');
    const ea = entry((await Client.connect(cluster.gw(1), a.token, { name: 'A2' })).hello, b.name);
    assert.equal(ea?.peer_read, acks[1].id, "the writer's hello carries the reader's position");

    // a read that does not move the position forward sends no receipt
    B.send({ kind: 'read', with: a.name, upto: acks[0].id });
    await A.expectNone({ kind: 'read' }, 300, 'a receipt for an older position');
    // upto beyond the newest id is clamped to it
    B.send({ kind: 'read', with: a.name, upto: acks[3].id + 1000 });
    const r2 = await A.next({ kind: 'read' });
    assert.equal(r2.upto, acks[3].id, brief(r2));
    await B.close();
    B = await Client.connect(cluster.gw(1), b.token);
    assert.equal(entry(B.hello, a.name)?.unread, 0, brief(B.hello));
});

cluster.test('unread: a message arriving after a read counts again; own messages never do', async () => {
    const [a, b] = await users('va', 'vb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const m1 = await send(A, b.name, 'one');
    await B.next({ kind: 'text', id: m1.id });
    B.send({ kind: 'read', with: a.name, upto: m1.id });
    await A.next({ kind: 'read' });
    await send(B, a.name, 'my reply');
    await send(A, b.name, 'two');
    await B.close();
    const B2 = await Client.connect(cluster.gw(0), b.token);
    assert.equal(entry(B2.hello, a.name)?.unread, 1, brief(B2.hello));
});

// ------------------------------------------------------------------ receipts / multi-device

cluster.test("multi-device: the reader's other session gets the receipt; own sends reach the other session", async () => {
    const [a, b] = await users('ma', 'mb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B1 = await Client.connect(cluster.gw(0), b.token, { name: 'B1' });
    const B2 = await Client.connect(cluster.gw(1), b.token, { name: 'B2' });
    const m = await send(A, b.name, 'to both devices');
    await B1.next({ kind: 'text', id: m.id });
    await B2.next({ kind: 'text', id: m.id });
    B1.send({ kind: 'read', with: a.name, upto: m.id });
    const rb2 = await B2.next({ kind: 'read' });
    assert.deepEqual([rb2.from, rb2.with, rb2.upto], [b.name, a.name, m.id], brief(rb2));
    await B1.expectNone({ kind: 'read' }, 200, 'its own receipt');
    const ra = await A.next({ kind: 'read' });
    assert.equal(ra.upto, m.id);
    const own = await send(B2, a.name, 'from device 2');
    const copy = await B1.next({ kind: 'text', id: own.id });
    assert.equal(copy.from, b.name, brief(copy));
    assert.equal(typeof copy.seq, 'number');
});

// ------------------------------------------------------------------ groups

cluster.test('group fan-out: every member on either gateway gets each message exactly once, with its own seq', async () => {
    const [a, b, c, d] = await users('fa', 'fb', 'fc', 'fd');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const C1 = await Client.connect(cluster.gw(0), c.token, { name: 'C1' });
    const C2 = await Client.connect(cluster.gw(1), c.token, { name: 'C2' });
    const D = await Client.connect(cluster.gw(1), d.token);
    const g = await cluster.createGroup(A, 'fan', [b.name, c.name, d.name]);
    for (const X of [B, C1, C2, D]) {
        const f = await X.next({ kind: 'group', name: g });
        assert.deepEqual(f.members, [a.name, b.name, c.name, d.name].sort(), brief(f));
        assert.equal(f.open, false);
    }
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await send(i % 2 ? B : A, g, `g${i}`));
    // a sending session never gets its own message back: A sees B's 2, B sees A's 3
    const expected = new Map([
        [A, 2],
        [B, 3],
        [C1, 5],
        [C2, 5],
        [D, 5],
    ]);
    for (const [X, count] of expected) {
        const texts = [];
        for (let i = 0; i < count; i++) texts.push(await X.next({ kind: 'text', to: g }));
        await X.expectNone({ kind: 'text', to: g }, 200, 'a second copy');
        const seqs = texts.map((t) => t.seq);
        assert.ok(
            seqs.every((s, i) => i === 0 || s > seqs[i - 1]),
            `${X.name}: seqs increase ${seqs}`,
        );
        const ids = texts.map((t) => t.id);
        assert.deepEqual(
            ids,
            [...ids].sort((x, y) => x - y),
            `${X.name}: id order`,
        );
        assert.ok(
            ids.every((id) => sent.some((s) => s.id === id)),
            `${X.name}: known ids`,
        );
    }
    // both of C's sessions got the same seqs (one inbox), and the inbox holds them
    const c1 = C1.all({ kind: 'text', to: g }).map((t) => t.seq);
    const c2 = C2.all({ kind: 'text', to: g }).map((t) => t.seq);
    assert.deepEqual(c1, c2);
    assert.equal(c1.length, 5);
    const inbox = await cluster.cli(['inbox', c.name, '--count', '5']);
    assert.ok(inbox.ok, inbox.stderr);
    assert.match(inbox.stdout, new RegExp(g.replace('#', '\\#')), inbox.stdout);
    // the sender's own copy reaches its other sessions, not the sending one
    const A2 = await Client.connect(cluster.gw(1), a.token, { name: 'A2' });
    const m = await send(A, g, 'from A');
    const copy = await A2.next({ kind: 'text', id: m.id });
    assert.equal(copy.seq, m.seq, 'the ack seq is the seq of the sender copy');
    await A.expectNone({ kind: 'text', id: m.id }, 200, 'its own message back');
});

cluster.test('group: offline members get messages on connect with the unread count; sync replays them', async () => {
    const [a, b] = await users('oa', 'ob');
    const A = await Client.connect(cluster.gw(0), a.token);
    const g = await cluster.createGroup(A, 'away', [b.name]);
    const m1 = await send(A, g, 'while you were out 1');
    const m2 = await send(A, g, 'while you were out 2');
    const B = await Client.connect(cluster.gw(1), b.token);
    const ge = entry(B.hello, g);
    assert.ok(ge, `the group is in hello: ${brief(B.hello)}`);
    assert.equal(ge.unread, 2, brief(ge));
    assert.equal(ge.online, true, 'another member (A) is online');
    const t1 = await B.next({ kind: 'text', id: m1.id });
    const t2 = await B.next({ kind: 'text', id: m2.id });
    assert.equal(t2.seq, t1.seq + 1);
    // a session that missed messages recovers them with sync
    const epoch = B.hello.epoch;
    await B.close();
    // m3 is stored once B's session has left Redis (A, a member, is told b is offline): sent
    // earlier, it would count as pushed to B's closing session (session_close.lua), and B2's
    // offline push would rightly not carry it (a client recovers it with sync, as below)
    await A.next({ kind: 'offline', from: b.name });
    const m3 = await send(A, g, 'missed');
    const B2 = await Client.connect(cluster.gw(0), b.token, { name: 'B2' });
    await B2.next({ kind: 'text', id: m3.id }); // pushed as offline
    B2.send({ kind: 'sync', after: t1.seq, epoch });
    const r2 = await B2.next({ kind: 'text', id: m2.id });
    const r3 = await B2.next({ kind: 'text', id: m3.id });
    assert.equal(r3.seq, r2.seq + 1);
    const end = await B2.next({ kind: 'sync' });
    assert.equal(end.recovered, true);
    B2.send({ kind: 'read', with: g, upto: m3.id });
    const receipt = await A.next({ kind: 'read', with: g });
    assert.deepEqual([receipt.from, receipt.upto], [b.name, m3.id], brief(receipt));
});

cluster.test('group: leaving stops delivery; the leaver is refused afterwards; add brings a new member in', async () => {
    const [a, b, c, d] = await users('la', 'lb', 'lc', 'ld');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const C = await Client.connect(cluster.gw(0), c.token);
    const D = await Client.connect(cluster.gw(1), d.token);
    const g = await cluster.createGroup(A, 'leave', [b.name, c.name]);
    await C.next({ kind: 'group', name: g });
    C.send({ kind: 'group', op: 'leave', name: g });
    for (const X of [A, B, C]) {
        const f = await X.next({ kind: 'group', name: g, op: 'leave' });
        assert.equal(f.by, c.name);
        assert.deepEqual(f.members, [a.name, b.name].sort(), brief(f));
    }
    const m = await send(A, g, 'after the leave');
    await B.next({ kind: 'text', id: m.id });
    await C.expectNone({ kind: 'text', to: g }, 300, 'a message after leaving');
    const e = await refused(C, { kind: 'text', to: g, data: 'back?', cid: 'c-left' }, 'forbidden');
    assert.equal(e.cid, 'c-left');
    await refused(C, { kind: 'history', with: g }, 'forbidden');
    await refused(C, { kind: 'group', op: 'leave', name: g }, 'forbidden');
    await refused(D, { kind: 'group', op: 'add', name: g, members: [d.name] }, 'forbidden');

    // a closed group: only its owner and admins add (v1 additions, Group roles)
    A.send({ kind: 'group', op: 'promote', name: g, members: [b.name] });
    await B.next({ kind: 'group', name: g, op: 'promote' });
    B.send({ kind: 'group', op: 'add', name: g, members: [d.name] });
    const added = await D.next({ kind: 'group', name: g, op: 'add' });
    assert.equal(added.by, b.name);
    assert.deepEqual(added.members, [a.name, b.name, d.name].sort());
    await A.next({ kind: 'group', name: g, op: 'add' });
    const m2 = await send(A, g, 'welcome');
    await D.next({ kind: 'text', id: m2.id });
    await C.expectNone({ kind: 'text', to: g }, 200, 'nothing for the leaver');
    // the new member can read the history
    const h = await history(D, g);
    assert.deepEqual(h.messages.map((x) => x.data).slice(-2), ['after the leave', 'welcome']);
});

cluster.test('group: create/join/add errors, joining an open group, typing to the other members', async () => {
    const [a, b, c] = await users('ja', 'jb', 'jc');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const C = await Client.connect(cluster.gw(1), c.token);
    const g = await cluster.createGroup(A, 'open', [b.name], true);
    await B.next({ kind: 'group', name: g });
    await refused(C, { kind: 'group', op: 'create', name: g, members: [] }, 'forbidden');
    await refused(A, { kind: 'group', op: 'create', name: `#${cluster.name('x')}`, members: [cluster.name('ghost')] }, 'no_such_user');
    await refused(A, { kind: 'group', op: 'add', name: g, members: [cluster.name('ghost')] }, 'no_such_user');
    await refused(C, { kind: 'group', op: 'join', name: `#${cluster.name('none')}` }, 'no_such_user');
    await refused(C, { kind: 'typing', to: g }, 'forbidden');
    C.send({ kind: 'group', op: 'join', name: g });
    for (const X of [A, B, C]) {
        const f = await X.next({ kind: 'group', name: g, op: 'join' });
        assert.equal(f.by, c.name);
        assert.equal(f.open, true);
        assert.equal(f.members.length, 3);
    }
    // joining again changes nothing: only the joiner gets the state back
    C.send({ kind: 'group', op: 'join', name: g });
    await C.next({ kind: 'group', name: g, op: 'join' });
    await A.expectNone({ kind: 'group', op: 'join' }, 200, 'a second join notice');
    C.send({ kind: 'typing', to: g });
    for (const X of [A, B]) {
        const t = await X.next({ kind: 'typing' });
        assert.deepEqual([t.from, t.to], [c.name, g], brief(t));
    }
    await C.expectNone({ kind: 'typing' }, 200, 'its own typing');
    const idx = await refused(A, { kind: 'group', op: 'create', name: 'nohash', members: [] }, 'bad_field');
    assert.ok(idx.message);
});

// ------------------------------------------------------------------ CLI

cluster.test('parley group / parley history show a group and a conversation, decoded', async () => {
    const [a, b] = await users('ka', 'kb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const g = await cluster.createGroup(A, 'cli', [b.name], true);
    await send(A, g, 'for the group');
    const m = await send(A, b.name, 'just for b');
    const gr = await cluster.cli(['group', g]);
    assert.ok(gr.ok, gr.stderr);
    assert.match(gr.stdout, new RegExp(`${g}: open, created by ${a.name}`));
    assert.match(gr.stdout, /2 member\(s\)/);
    assert.match(gr.stdout, new RegExp(`${a.name}\\s+online\\s+unread=0`));
    assert.match(gr.stdout, new RegExp(`${b.name}\\s+offline\\s+unread=1`));
    const h = await cluster.cli(['history', a.name, b.name]);
    assert.ok(h.ok, h.stderr);
    assert.match(h.stdout, /1 message\(s\) kept/);
    assert.match(h.stdout, /just for b/);
    assert.match(h.stdout, new RegExp(`${b.name}: unread=1 read=0`));
    assert.ok(h.stdout.includes(String(m.id)), h.stdout);
    const hg = await cluster.cli(['history', g, '--count', '5']);
    assert.ok(hg.ok && hg.stdout.includes('for the group'), hg.stdout + hg.stderr);
    const bad = await cluster.cli(['group', 'nohash']);
    assert.equal(bad.code, 2, 'a bad name is a usage error');
    const none = await cluster.cli(['group', `#${cluster.name('none')}`]);
    assert.equal(none.code, 1, 'a missing group is an error');
    assert.match(none.stderr, /no such group/);
});

// The storage of issue 14 (docs/protocol.md, "Message lifecycle"), written
// straight into Redis: history messages in their current state and inbox
// entries that reference the history, next to an old full copy.
cluster.test('parley history / parley inbox show edits, deletions, reactions, replies, mentions and inbox references', async () => {
    const [a, b] = [cluster.name('la'), cluster.name('lb')];
    const g = `#${cluster.name('lg')}`;
    const T = 1700000000000; // 2023-11-14T22:13:20.000Z
    const hist = (conv) => `parley:{c:${conv}}:history`;
    const pair = [a, b].sort().join('|');
    const put = (key, ...frames) => cluster.redis('ZADD', key, ...frames.flatMap((f) => [String(f.id), Buffer.from(encode(f))]));
    const text = (id, data, more = {}) => ({ kind: 'text', id, from: a, to: b, data, sent: T + id, cid: `c${id}`, ...more });
    await put(
        hist(pair),
        text(1, 'the original question, long enough to be cut in its quote'),
        text(2, 'fixed typo', { edited: T + 60500, reactions: { '👍': [b, a], ok: [b] } }),
        text(3, '', { reply_to: 1, mentions: [b], deleted: T + 3000, by: a }),
        text(4, `@${b} see above`, { reply_to: 1, mentions: [b] }),
        text(5, 'replying to a deleted one', { reply_to: 3 }),
    );
    const h = await cluster.cli(['history', a, b]);
    assert.ok(h.ok, h.stderr);
    const line = (id) => h.stdout.split('\n').find((l) => l.startsWith(`id=${id} `)) || '';
    assert.match(h.stdout, /5 message\(s\) kept/);
    assert.match(line(2), /data="fixed typo" edited=2023-11-14T22:14:20\.500Z reactions=\{"👍": [^;]+; "ok": [^}]+\}/, h.stdout);
    assert.ok(line(2).includes(`"👍": ${b},${a}`), line(2));
    assert.match(line(3), new RegExp(`reply_to=1 .*mentions=${b} \\[message deleted by ${a} at 2023-11-14T22:13:23\\.000Z\\]$`), h.stdout);
    assert.ok(!line(3).includes('data='), 'a deleted message shows no data');
    assert.match(line(4), /reply_to=1 \("the original question, long enough to be"\.\.\.\) mentions=/, h.stdout);
    assert.match(line(5), /reply_to=3 \(a deleted message\)/, h.stdout);
    // a page that no longer holds the replied message: the id alone
    const h2 = await cluster.cli(['history', a, b, '--count', '3']);
    assert.ok(h2.ok, h2.stderr);
    assert.match(h2.stdout, /id=4 from=\S+ to=\S+ sent=\S+ cid=c4 reply_to=1 mentions=/, h2.stdout);
    assert.match(h2.stdout, /id=5 .*reply_to=3 \(a deleted message\)/, 'message 3 is on the page');

    await put(hist(g), { kind: 'text', id: 7, from: a, to: g, data: `hi @${b}`, sent: T, mentions: [b] });
    const inbox = `parley:{u:${b}}:inbox`;
    const entries = [
        { kind: 'text', id: 6, from: a, to: b, data: 'an old full copy', sent: T, seq: 1 },
        { seq: 2, id: 2, w: a },
        { seq: 3, id: 7, w: g },
        { seq: 4, id: 3, w: a },
        { seq: 5, k: 'e', id: 2, w: a, from: a, at: T + 60500 },
        { seq: 6, k: 'd', id: 3, w: a, by: a, at: T + 3000 },
        { seq: 7, k: 'r', id: 2, w: a, from: b, emoji: '👍', on: true },
        { seq: 8, k: 'r', id: 2, w: a, from: b, emoji: 'ok', on: false },
        { seq: 9, id: 99, w: a },
    ];
    await cluster.redis('RPUSH', inbox, ...entries.map((e) => Buffer.from(encode(e))));
    await cluster.redis('HSET', `parley:{u:${b}}:meta`, 'seq', '9', 'epoch', 'e1');
    const ib = await cluster.cli(['inbox', b]);
    assert.ok(ib.ok, ib.stderr);
    const lines = ib.stdout.trim().split('\n');
    assert.equal(lines[0], `${b}: seq=9 epoch=e1 pushed=0`);
    const want = [
        `seq=1 id=6 from=${a} to=${b} sent=2023-11-14T22:13:20.000Z data="an old full copy"`,
        `seq=2 text id=2 with=${a} -> id=2 from=${a} to=${b} sent=2023-11-14T22:13:20.002Z cid=c2 data="fixed typo" edited=`,
        `seq=3 text id=7 with=${g} -> id=7 from=${a} to=${g} sent=2023-11-14T22:13:20.000Z mentions=${b} data="hi @${b}"`,
        `seq=4 text id=3 with=${a} -> id=3 from=${a} to=${b} sent=2023-11-14T22:13:20.003Z cid=c3 reply_to=1 mentions=${b} [message deleted by ${a} at`,
        `seq=5 edit id=2 with=${a} from=${a} at=2023-11-14T22:14:20.500Z`,
        `seq=6 delete id=3 with=${a} by=${a} at=2023-11-14T22:13:23.000Z`,
        `seq=7 react id=2 with=${a} from=${b} emoji="👍" on`,
        `seq=8 react id=2 with=${a} from=${b} emoji="ok" off`,
        `seq=9 text id=99 with=${a} -> (no longer in the history)`,
    ];
    assert.equal(lines.length, 1 + want.length, ib.stdout);
    want.forEach((w, i) => assert.ok(lines[i + 1].startsWith(w), `line ${i + 1}:\n${lines[i + 1]}\nwant:\n${w}`));
});

cluster.test('parley history / parley inbox after real edit, react, reply and delete frames', async () => {
    const [a, b] = await users('ra', 'rb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const change = async (X, frame) => {
        const id = cid();
        X.send({ ...frame, cid: id });
        const f = await X.next((x) => x.cid === id && (x.kind === 'ack' || x.kind === 'error'));
        assert.equal(f.kind, 'ack', `${frame.kind}: ${brief(f)}`);
        return f;
    };
    const q = await send(A, b.name, 'a question');
    const c = cid();
    B.send({ kind: 'text', to: a.name, data: `@${a.name} an answer`, cid: c, reply_to: q.id });
    const r = await B.next({ kind: 'ack', cid: c });
    await change(A, { kind: 'edit', with: b.name, id: q.id, data: 'a better question' });
    await change(B, { kind: 'react', with: a.name, id: q.id, emoji: '👍', on: true });
    await change(B, { kind: 'delete', with: a.name, id: r.id });
    const h = await cluster.cli(['history', a.name, b.name]);
    assert.ok(h.ok, h.stderr);
    const line = (id) => h.stdout.split('\n').find((l) => l.startsWith(`id=${id} `)) || '';
    assert.match(line(q.id), new RegExp(`data="a better question" edited=\\S+ reactions=\\{"👍": ${b.name}\\}`), h.stdout);
    assert.match(line(r.id), new RegExp(`reply_to=${q.id} \\("a better question"\\) mentions=${a.name} \\[message deleted by ${b.name} at `), h.stdout);
    assert.ok(!h.stdout.includes('an answer'), 'the deleted text is gone');
    assert.match(h.stdout, new RegExp(`${a.name}: unread=0 read=\\d+ mentions=0`), h.stdout);
    const ib = await cluster.cli(['inbox', a.name]);
    assert.ok(ib.ok, ib.stderr);
    for (const re of [
        `text id=${q.id} with=${b.name} -> id=${q.id} from=${a.name} .*data="a better question" edited=`,
        `text id=${r.id} with=${b.name} -> id=${r.id} from=${b.name} .*\\[message deleted by ${b.name} at `,
        `edit id=${q.id} with=${b.name} from=${a.name} at=`,
        `react id=${q.id} with=${b.name} from=${b.name} emoji="👍" on`,
        `delete id=${r.id} with=${b.name} by=${b.name} at=`,
    ]) {
        assert.match(ib.stdout, new RegExp(`^seq=\\d+ ${re}`, 'm'), ib.stdout);
    }
});

cluster.test('GET /api/users?q=#PREFIX finds open groups (to join), never closed ones', async () => {
    const [a] = await users('sa');
    const A = await Client.connect(cluster.gw(0), a.token);
    const base = cluster.name('srch');
    const open = await cluster.createGroup(A, `${base}o`, [], true);
    const closed = await cluster.createGroup(A, `${base}c`, [], false);
    const get = async (q) => {
        const res = await fetch(`http://127.0.0.1:${cluster.gw(1)}/api/users?q=${encodeURIComponent(q)}`, {
            headers: { cookie: `parley_token=${a.token}` },
        });
        assert.equal(res.status, 200);
        return res.json();
    };
    const found = await get(`#${base}`);
    assert.deepEqual(found, [{ username: open, online: false, open: true }], JSON.stringify(found));
    assert.ok(!(await get('#')).some((x) => x.username === closed), 'a closed group is never listed');
    assert.deepEqual(await get('#Bad!'), [], 'an invalid prefix finds nothing');
    assert.ok(
        (await get(a.name)).some((x) => x.username === a.name && x.online === true),
        'users as before',
    );
});

cluster.test('everyone mode: a user who registers after hello is followed, so their online reaches open sessions', async () => {
    const [a] = await users('na');
    const A = await Client.connect(cluster.gw(0), a.token);
    const A2 = await Client.connect(cluster.gw(1), a.token, { name: 'A2' });
    const [late] = await users('nlate');
    assert.ok(!entry(A.hello, late.name), 'not in the earlier hello');
    const L = await Client.connect(cluster.gw(1), late.token);
    for (const X of [A, A2]) {
        const on = await X.next({ kind: 'online', from: late.name });
        assert.equal(on.from, late.name);
    }
    await L.close();
    await A.next({ kind: 'offline', from: late.name });
});

cluster.test("hello: each entry's last is the conversation's newest message (nil when none)", async () => {
    const [a, b, c] = await users('la2', 'lb2', 'lc2');
    const A = await Client.connect(cluster.gw(0), a.token);
    await send(A, b.name, 'older');
    const m = await send(A, b.name, 'newest to b');
    const g = await cluster.createGroup(A, 'lastg', [c.name]);
    const gm = await send(A, g, 'newest in group');
    const C = await Client.connect(cluster.gw(1), c.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const eb = entry(B.hello, a.name);
    assert.equal(eb.last?.id, m.id, brief(eb));
    assert.equal(eb.last.data, 'newest to b');
    assert.equal(eb.last.from, a.name);
    assert.equal(eb.last.seq, undefined, 'a history entry has no seq');
    assert.equal(entry(C.hello, g).last?.data, 'newest in group');
    assert.equal(entry(C.hello, g).last.id, gm.id);
    assert.equal(entry(B.hello, c.name)?.last, null, 'no conversation: last is nil');
});
