// Message lifecycle delivery (protocol.md "v1 additions: message lifecycle"):
// every participant's sessions, two per user on two gateways, get each edit,
// delete and react once and in order (seq increasing, no duplicate), the
// actor's other sessions included and the acting session only the ack; `with`
// names the conversation as the receiver does (the peer, or #group); a retry
// by cid (twice, and again after a reconnect) is answered with the same ack
// and applied once: one event delivered, one inbox entry; a delete of a deleted
// message and a react that changes nothing are acked and send nothing.
// Cluster: redis, router, gw1, gw2.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';
import { acked, answer, assertSeqsIncrease, history, inHistory, inboxOf, isEvent, tag } from './lib/lifecycle.mjs';

const cluster = new Cluster('lifecycle_delivery');
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `ld-${++n}`;
const users = (...bases) => cluster.users(bases);
const text = (c, to, data) => acked(c, { kind: 'text', to, data, cid: cid() });

// two sessions of user u: the first on gw1, the second on gw2
async function twoSessions(u) {
    const s1 = await Client.connect(cluster.gw(0), u.token, { name: `${u.name}@gw1` });
    const s2 = await Client.connect(cluster.gw(1), u.token, { name: `${u.name}@gw2` });
    for (const s of [s1, s2]) s.user = u.name;
    return [s1, s2];
}

// Each session in `expect` (Map session -> [expected event {kind, id, ...fields}])
// gets exactly those events, in that order, with increasing seqs (texts'
// seqs included), and no other event within a short window afterwards.
async function assertEvents(expect) {
    for (const [s, evs] of expect) {
        for (const ev of evs) await s.next({ kind: ev.kind, id: ev.id });
        await s.expectNone(isEvent, 0);
    }
    // absence: a short window, then the whole record of each session
    await new Promise((r) => setTimeout(r, 250));
    for (const [s, evs] of expect) {
        const got = s.all(isEvent);
        assert.deepEqual(got.map(tag), evs.map(tag), `${s.name}: each event once, in order: ${got.map(brief).join(', ')}`);
        for (const [i, ev] of evs.entries()) {
            for (const [k, v] of Object.entries(ev)) assert.deepEqual(got[i][k], v, `${s.name}: ${k} of ${brief(got[i])}`);
        }
        assertSeqsIncrease(
            s.all((f) => isEvent(f) || f.kind === 'text'),
            s.name,
        );
    }
}

cluster.test('1:1: both users, two sessions each on two gateways: each edit, react, delete once, in order; the actor only the ack', async () => {
    const [a, b] = await users('oa', 'ob');
    const [A1, A2] = await twoSessions(a);
    const [B1, B2] = await twoSessions(b);
    const m1 = await text(A1, b.name, 'first');
    const m2 = await text(B2, a.name, 'second');
    for (const s of [A2, B1, B2]) await s.next({ kind: 'text', id: m1.id });
    for (const s of [A1, A2, B1]) await s.next({ kind: 'text', id: m2.id });

    const e1 = await acked(A1, { kind: 'edit', with: b.name, id: m1.id, data: 'first, fixed', cid: cid() });
    const r1 = await acked(B1, { kind: 'react', with: a.name, id: m1.id, emoji: '👍', on: true, cid: cid() });
    const r2 = await acked(A2, { kind: 'react', with: b.name, id: m2.id, emoji: '❤️', on: true, cid: cid() });
    const r3 = await acked(B1, { kind: 'react', with: a.name, id: m1.id, emoji: '👍', on: false, cid: cid() });
    const d1 = await acked(B2, { kind: 'delete', with: a.name, id: m2.id, cid: cid() });

    const edit = (w) => ({ kind: 'edit', id: m1.id, with: w, from: a.name, data: 'first, fixed', edited: e1.sent });
    const reactOn = (w) => ({ kind: 'react', id: m1.id, with: w, from: b.name, emoji: '👍', on: true });
    const heart = (w) => ({ kind: 'react', id: m2.id, with: w, from: a.name, emoji: '❤️', on: true });
    const reactOff = (w) => ({ kind: 'react', id: m1.id, with: w, from: b.name, emoji: '👍', on: false });
    const gone = (w) => ({ kind: 'delete', id: m2.id, with: w, by: b.name, deleted: d1.sent });
    await assertEvents(
        new Map([
            [A1, [reactOn(b.name), heart(b.name), reactOff(b.name), gone(b.name)]],
            [A2, [edit(b.name), reactOn(b.name), reactOff(b.name), gone(b.name)]],
            [B1, [edit(a.name), heart(a.name), gone(a.name)]],
            [B2, [edit(a.name), reactOn(a.name), heart(a.name), reactOff(a.name)]],
        ]),
    );
    // the actor's other session gets the event at the seq of the actor's ack
    assert.equal(A2.all({ kind: 'edit', id: m1.id })[0].seq, e1.seq, 'edit: the seq of the ack');
    assert.equal(B2.all({ kind: 'react', id: m1.id, on: true })[0].seq, r1.seq, 'react: the seq of the ack');
    assert.equal(A1.all({ kind: 'react', id: m2.id })[0].seq, r2.seq);
    assert.equal(B2.all({ kind: 'react', id: m1.id, on: false })[0].seq, r3.seq);
    assert.equal(B1.all({ kind: 'delete', id: m2.id })[0].seq, d1.seq);
    // both sessions of a user see the same seqs (one inbox)
    assert.deepEqual(
        A1.all({ kind: 'delete' }).map((f) => f.seq),
        A2.all({ kind: 'delete' }).map((f) => f.seq),
    );
});

cluster.test(
    'group: every member, two sessions each on two gateways, gets each event once, in order, with #group (a session beside the acting one too)',
    async () => {
        const [o, m, k] = await users('go', 'gm', 'gk');
        const [O1, O2] = await twoSessions(o);
        const [M1, M2] = await twoSessions(m);
        const [K1, K2] = await twoSessions(k);
        // a third session of the owner, on the gateway of the one that deletes
        const O3 = await Client.connect(cluster.gw(1), o.token, { name: `${o.name}@gw2b` });
        const g = await cluster.createGroup(O1, 'evg', [m.name, k.name]);
        for (const s of [O2, O3, M1, M2, K1, K2]) await s.next({ kind: 'group', name: g });
        const t1 = await text(M1, g, 'by m');
        const t2 = await text(K2, g, 'by k');
        for (const s of [O1, O2, O3, M2, K1, K2]) await s.next({ kind: 'text', id: t1.id });
        for (const s of [O1, O2, O3, M1, M2, K1]) await s.next({ kind: 'text', id: t2.id });

        const e = await acked(M2, { kind: 'edit', with: g, id: t1.id, data: 'by m, edited', cid: cid() });
        const r = await acked(K1, { kind: 'react', with: g, id: t1.id, emoji: '🎉', on: true, cid: cid() });
        const d = await acked(O2, { kind: 'delete', with: g, id: t2.id, cid: cid() }); // the owner deletes k's message

        const edit = { kind: 'edit', id: t1.id, with: g, from: m.name, data: 'by m, edited', edited: e.sent };
        const react = { kind: 'react', id: t1.id, with: g, from: k.name, emoji: '🎉', on: true };
        const gone = { kind: 'delete', id: t2.id, with: g, by: o.name, deleted: d.sent };
        await assertEvents(
            new Map([
                [O1, [edit, react, gone]],
                [O2, [edit, react]],
                [O3, [edit, react, gone]],
                [M1, [edit, react, gone]],
                [M2, [react, gone]],
                [K1, [edit, gone]],
                [K2, [edit, react, gone]],
            ]),
        );
        assert.equal(M1.all({ kind: 'edit' })[0].seq, e.seq);
        assert.equal(K2.all({ kind: 'react' })[0].seq, r.seq);
        assert.equal(O1.all({ kind: 'delete' })[0].seq, d.seq);
    },
);

// how many entries of user's inbox are event k ('e', 'd', 'r') about message id
async function inboxEvents(user, k, id) {
    return (await inboxOf(cluster, user)).filter((x) => x.k === k && x.id === id).length;
}

cluster.test('retries by cid: the same edit, delete, react twice and again after a reconnect: one ack id, one event, one inbox entry', async () => {
    const [a, b] = await users('ca', 'cb');
    let A = await Client.connect(cluster.gw(0), a.token);
    const [B1, B2] = await twoSessions(b);
    const m1 = await text(A, b.name, 'to edit');
    const m2 = await text(A, b.name, 'to delete');
    const frames = [
        { kind: 'edit', with: b.name, id: m1.id, data: 'edited once', cid: cid() },
        { kind: 'react', with: b.name, id: m1.id, emoji: '👀', on: true, cid: cid() },
        { kind: 'delete', with: b.name, id: m2.id, cid: cid() },
    ];
    const first = [];
    for (const f of frames) {
        const ack = await acked(A, f);
        first.push(ack);
        const again = await acked(A, f);
        assert.deepEqual([again.id, again.seq, again.sent], [ack.id, ack.seq, ack.sent], `${f.kind}: the retry gets the same ack`);
    }
    // a retry with the same cid but another content changes nothing either
    const changed = await acked(A, { ...frames[0], data: 'edited twice?' });
    assert.deepEqual([changed.id, changed.seq], [first[0].id, first[0].seq]);
    await A.close();
    A = await Client.connect(cluster.gw(1), a.token);
    for (const [i, f] of frames.entries()) {
        const ack = await acked(A, f);
        assert.deepEqual([ack.id, ack.seq, ack.sent], [first[i].id, first[i].seq, first[i].sent], `${f.kind}: the same ack after a reconnect`);
    }
    await assertEvents(
        new Map(
            [B1, B2].map((s) => [
                s,
                [
                    { kind: 'edit', id: m1.id, data: 'edited once' },
                    { kind: 'react', id: m1.id, emoji: '👀', on: true },
                    { kind: 'delete', id: m2.id },
                ],
            ]),
        ),
    );
    for (const u of [a.name, b.name]) {
        assert.equal(await inboxEvents(u, 'e', m1.id), 1, `${u}: one edit entry`);
        assert.equal(await inboxEvents(u, 'r', m1.id), 1, `${u}: one react entry`);
        assert.equal(await inboxEvents(u, 'd', m2.id), 1, `${u}: one delete entry`);
    }
    const h = await history(B1, a.name);
    assert.equal(inHistory(h, m1.id).data, 'edited once');
    assert.deepEqual(inHistory(h, m1.id).reactions, { '👀': [a.name] });
});

cluster.test(
    "one cid space: a text's cid reused by an edit gets the text's ack; an edit retried after its message was deleted gets its ack again",
    async () => {
        const [a, b] = await users('sa', 'sb');
        const A = await Client.connect(cluster.gw(0), a.token);
        const B = await Client.connect(cluster.gw(1), b.token);
        const t = await text(A, b.name, 'a text');
        const other = await text(A, b.name, 'another');
        const reuse = await answer(A, { kind: 'edit', with: b.name, id: other.id, data: 'edited?', cid: t.cid });
        assert.deepEqual([reuse.kind, reuse.id, reuse.seq], ['ack', t.id, t.seq], `the text's ack again: ${brief(reuse)}`);
        const ed = { kind: 'edit', with: b.name, id: other.id, data: 'edited for real', cid: cid() };
        const e1 = await acked(A, ed);
        await acked(A, { kind: 'delete', with: b.name, id: other.id, cid: cid() });
        const e2 = await acked(A, ed); // a late retry: the message is deleted now
        assert.deepEqual([e2.id, e2.seq, e2.sent], [e1.id, e1.seq, e1.sent], 'the same ack, not bad_field');
        await assertEvents(
            new Map([
                [
                    B,
                    [
                        { kind: 'edit', id: other.id, data: 'edited for real' },
                        { kind: 'delete', id: other.id },
                    ],
                ],
            ]),
        );
        const h = await history(B, a.name);
        assert.deepEqual([inHistory(h, t.id).data, inHistory(h, other.id).data], ['a text', '']);
    },
);

cluster.test('retries by cid in a group: one event per member session, one inbox entry each', async () => {
    const [o, m] = await users('co', 'cm');
    const O = await Client.connect(cluster.gw(0), o.token);
    const [M1, M2] = await twoSessions(m);
    const g = await cluster.createGroup(O, 'cg', [m.name]);
    const t = await text(O, g, 'group text');
    const f = { kind: 'edit', with: g, id: t.id, data: 'group text, edited', cid: cid() };
    const a1 = await acked(O, f);
    const a2 = await acked(O, f);
    assert.deepEqual([a2.id, a2.seq], [a1.id, a1.seq]);
    await assertEvents(new Map([M1, M2].map((s) => [s, [{ kind: 'edit', id: t.id, with: g, from: o.name }]])));
    assert.equal(await inboxEvents(m.name, 'e', t.id), 1);
    assert.equal(await inboxEvents(o.name, 'e', t.id), 1);
});

cluster.test('nothing new: a delete of a deleted message and a react that changes nothing are acked and send nothing', async () => {
    const [a, b] = await users('na', 'nb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const [B1, B2] = await twoSessions(b);
    const m1 = await text(A, b.name, 'react twice');
    const m2 = await text(A, b.name, 'delete twice');
    await acked(A, { kind: 'react', with: b.name, id: m1.id, emoji: '👍', on: true, cid: cid() });
    await acked(A, { kind: 'react', with: b.name, id: m1.id, emoji: '👍', on: true, cid: cid() }); // already on
    await acked(A, { kind: 'react', with: b.name, id: m1.id, emoji: '🙃', on: false, cid: cid() }); // never on
    await acked(A, { kind: 'delete', with: b.name, id: m2.id, cid: cid() });
    await acked(A, { kind: 'delete', with: b.name, id: m2.id, cid: cid() }); // already deleted
    await assertEvents(
        new Map(
            [B1, B2].map((s) => [
                s,
                [
                    { kind: 'react', id: m1.id, emoji: '👍', on: true },
                    { kind: 'delete', id: m2.id },
                ],
            ]),
        ),
    );
    assert.equal(await inboxEvents(b.name, 'r', m1.id), 1, 'one react entry');
    assert.equal(await inboxEvents(b.name, 'd', m2.id), 1, 'one delete entry');
    // an answer for each, never an error
    const r = await answer(A, { kind: 'react', with: b.name, id: m1.id, emoji: '👍', on: true, cid: cid() });
    assert.equal(r.kind, 'ack', brief(r));
});
