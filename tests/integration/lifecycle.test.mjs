// The message lifecycle (protocol.md "v1 additions: message lifecycle"): the
// path of each change end to end through gateways, router and Redis, 1:1 and
// in a group: reply_to and mentions on a text, edit, react, delete, their acks
// and live frames to the other participant's sessions and the actor's other
// session (on another gateway), sync replaying them, history showing the
// current state, hello's counts. The rights, retries, bounds and the Redis
// scan for a deleted text: lifecycle_*.test.mjs.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, sendAck } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';

const cluster = new Cluster('lifecycle');
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `lc-${++n}`;

// c sends a change frame; resolves with its ack (asserting it is one)
async function change(c, frame) {
    const id = cid();
    c.send({ ...frame, cid: id });
    const f = await c.next((x) => x.cid === id && (x.kind === 'ack' || x.kind === 'error'));
    assert.equal(f.kind, 'ack', `${frame.kind}: ${brief(f)}`);
    assert.equal(f.id, frame.id, 'the ack names the target');
    return f;
}

cluster.test("1:1: reply and mention, edit, react, delete reach the peer and the actor's other session; sync and history show the current state", async () => {
    const [a, b] = await cluster.users(['ann', 'ben']);
    const A1 = await Client.connect(cluster.gw(0), a.token, { name: 'a1' });
    const A2 = await Client.connect(cluster.gw(1), a.token, { name: 'a2' });
    const B = await Client.connect(cluster.gw(1), b.token, { name: 'b' });
    const first = await sendAck(A1, b.name, 'first', cid());
    await B.next({ kind: 'text', id: first.id });
    const c = cid();
    A1.send({ kind: 'text', to: b.name, data: `hi @${b.name}. and @nobody`, cid: c, reply_to: first.id });
    const ack = await A1.next({ kind: 'ack', cid: c });
    const live = await B.next({ kind: 'text', id: ack.id });
    assert.deepEqual([live.reply_to, live.mentions], [first.id, [b.name]], brief(live));
    await A2.next({ kind: 'text', id: ack.id });

    const e = await change(A1, { kind: 'edit', with: b.name, id: ack.id, data: 'edited' });
    for (const [C, w] of [
        [B, a.name],
        [A2, b.name],
    ]) {
        const f = await C.next({ kind: 'edit', id: ack.id });
        assert.deepEqual([f.with, f.from, f.data, f.edited, f.seq > 0], [w, a.name, 'edited', e.sent, true], brief(f));
    }
    await change(B, { kind: 'react', with: a.name, id: ack.id, emoji: '👍', on: true });
    for (const [C, w] of [
        [A1, b.name],
        [A2, b.name],
    ]) {
        const f = await C.next({ kind: 'react', id: ack.id });
        assert.deepEqual([f.with, f.from, f.emoji, f.on], [w, b.name, '👍', true], brief(f));
    }
    // history: the current state
    B.send({ kind: 'history', with: a.name });
    let h = await B.next({ kind: 'history' });
    let m = h.messages.find((x) => x.id === ack.id);
    assert.deepEqual([m.data, m.edited, m.reactions, m.reply_to], ['edited', e.sent, { '👍': [b.name] }, first.id], brief(m));

    // B's counts in hello: 2 unread, 1 mention; a delete of the unread mentioning text takes both off
    const B2 = await Client.connect(cluster.gw(0), b.token, { name: 'b2' });
    let entry = B2.hello.users.find((u) => u.username === a.name);
    assert.deepEqual([entry.unread, entry.mentions], [2, 1], brief(entry));
    const d = await change(A1, { kind: 'delete', with: b.name, id: ack.id });
    const del = await B.next({ kind: 'delete', id: ack.id });
    assert.deepEqual([del.with, del.by, del.deleted], [a.name, a.name, d.sent], brief(del));
    await A2.next({ kind: 'delete', id: ack.id });
    await B2.next({ kind: 'delete', id: ack.id });
    const B3 = await Client.connect(cluster.gw(1), b.token, { name: 'b3' });
    entry = B3.hello.users.find((u) => u.username === a.name);
    assert.deepEqual([entry.unread, entry.mentions ?? 0, entry.last.data, entry.last.deleted], [1, 0, '', d.sent], brief(entry));

    // sync from before the text: the text as deleted, then edit (as the delete), react, delete
    B3.send({ kind: 'sync', after: live.seq - 1, epoch: B3.hello.epoch });
    const got = [];
    for (;;) {
        const f = await B3.next((x) => x.kind !== 'hello');
        if (f.kind === 'sync') break;
        got.push(f);
    }
    assert.deepEqual(
        got.map((f) => [f.kind, f.id, f.data ?? null]),
        [
            ['text', ack.id, ''],
            ['delete', ack.id, null],
            ['react', ack.id, null],
            ['delete', ack.id, null],
        ],
        got.map(brief).join(' | '),
    );
    assert.ok(
        got.every((f, i) => i === 0 || f.seq === got[i - 1].seq + 1),
        'in seq order',
    );
    h = await (B3.send({ kind: 'history', with: a.name }), B3.next({ kind: 'history' }));
    m = h.messages.find((x) => x.id === ack.id);
    assert.deepEqual([m.data, m.deleted, m.reactions], ['', d.sent, undefined], brief(m));
});

cluster.test("group: mentions count per member, the owner deletes a member's text, a plain member may not, read clears mentions", async () => {
    const [o, p, q] = await cluster.users(['own', 'pam', 'quin']);
    const O = await Client.connect(cluster.gw(0), o.token, { name: 'o' });
    const P = await Client.connect(cluster.gw(1), p.token, { name: 'p' });
    const Q = await Client.connect(cluster.gw(1), q.token, { name: 'q' });
    const g = '#lcg';
    O.send({ kind: 'group', op: 'create', name: g, members: [p.name, q.name] });
    await P.next({ kind: 'group', name: g });
    const t = await sendAck(P, g, `@${q.name} look`, cid());
    const qt = await Q.next({ kind: 'text', id: t.id });
    assert.deepEqual(qt.mentions, [q.name]);
    const c = cid();
    Q.send({ kind: 'delete', with: g, id: t.id, cid: c });
    const err = await Q.next({ cid: c });
    assert.deepEqual([err.kind, err.code], ['error', 'forbidden'], brief(err));
    const Q2 = await Client.connect(cluster.gw(0), q.token, { name: 'q2' });
    const ge = Q2.hello.users.find((u) => u.username === g);
    assert.deepEqual([ge.unread, ge.mentions], [1, 1], brief(ge));
    Q2.send({ kind: 'read', with: g, upto: t.id });
    await Q2.close();
    const Q3 = await Client.connect(cluster.gw(0), q.token, { name: 'q3' });
    const ge3 = Q3.hello.users.find((u) => u.username === g);
    assert.deepEqual([ge3.unread, ge3.mentions ?? 0], [0, 0], brief(ge3));
    await change(O, { kind: 'delete', with: g, id: t.id });
    for (const C of [P, Q, Q3]) {
        const f = await C.next({ kind: 'delete', id: t.id });
        assert.deepEqual([f.with, f.by], [g, o.name], brief(f));
    }
});

cluster.test("a member removed from a group gets `gone` in place of the group's entries of his inbox: nothing edited or reacted after he left", async () => {
    const [o, x] = await cluster.users(['exo', 'exx']);
    const O = await Client.connect(cluster.gw(0), o.token, { name: 'o' });
    const g = '#lcx';
    O.send({ kind: 'group', op: 'create', name: g, members: [x.name] });
    await O.next({ kind: 'group', name: g });
    const t = await sendAck(O, g, 'plan: noon', cid());
    O.send({ kind: 'group', op: 'remove', name: g, members: [x.name] });
    await O.next({ kind: 'group', name: g, op: 'remove' });
    await change(O, { kind: 'edit', with: g, id: t.id, data: 'SECRET after he left' });
    await change(O, { kind: 'react', with: g, id: t.id, emoji: '🤫', on: true });
    const X = await Client.connect(cluster.gw(1), x.token, { name: 'x' });
    const f = await X.next({ id: t.id });
    assert.deepEqual([f.kind, f.with, f.data], ['gone', g, undefined], brief(f));
    X.send({ kind: 'sync', after: 0, epoch: X.hello.epoch });
    const got = [];
    for (;;) {
        const e = await X.next((y) => y.kind !== 'hello');
        if (e.kind === 'sync') {
            assert.equal(e.recovered, true, brief(e));
            break;
        }
        got.push(e);
    }
    assert.ok(!JSON.stringify(X.frames).includes('SECRET'), 'nothing of the edit after the removal');
    assert.ok(
        got.filter((e) => e.id === t.id).every((e) => e.kind === 'gone'),
        got.map(brief).join(' | '),
    );
});
