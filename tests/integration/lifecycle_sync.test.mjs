// Message lifecycle recovery and current state (protocol.md "v1 additions:
// message lifecycle"; docs/protocol.md decisions): a user who missed edits, a
// delete and reactions gets them in the offline push after reconnecting and
// again from `sync`, in seq order, each replayed text showing the message's
// current state (edited + data, reactions, deleted + by + data ""), an edit
// of a message deleted since replayed as its delete; `history` shows the
// current state to every participant; hello's `last` shows a deleted newest
// message without its text. Cluster: redis, router, gw1, gw2.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';
import { acked, assertSeqsIncrease, entry, framesAfter, history, inHistory, isEvent, syncReplay, tag } from './lib/lifecycle.mjs';

const cluster = new Cluster('lifecycle_sync');
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `ls-${++n}`;
const users = (...bases) => cluster.users(bases);
const text = (c, to, data) => acked(c, { kind: 'text', to, data, cid: cid() });
const edit = (c, w, id, data) => acked(c, { kind: 'edit', with: w, id, data, cid: cid() });
const react = (c, w, id, emoji, on = true) => acked(c, { kind: 'react', with: w, id, emoji, on, cid: cid() });
const del = (c, w, id) => acked(c, { kind: 'delete', with: w, id, cid: cid() });

const replayed = (f) => f.kind === 'text' || isEvent(f);

// What b missed while away, in a conversation `w` (b.name's peer a, or a
// group) where A (a's session) acts: returns the acks and the expected replay
// (tags in seq order) and the expected state of each replayed text.
async function missedActivity(A, w, other) {
    const m2 = await text(A, w, 'two');
    await react(A, w, m2.id, '👍');
    const e2 = await edit(A, w, m2.id, 'two, edited');
    const m3 = await text(A, w, 'three, soon gone');
    const e3 = await edit(A, w, m3.id, 'three, edited then gone');
    await react(A, w, m3.id, '🎉');
    const d3 = await del(A, w, m3.id);
    return {
        m2,
        m3,
        e2,
        e3,
        d3,
        // the inbox order: text m2, react m2, edit m2, text m3, edit m3, react m3, delete m3
        // (the other's own activity, if any, comes before)
        expected: [`text:${m2.id}`, `react:${m2.id}`, `edit:${m2.id}`, `text:${m3.id}`, `delete:${m3.id}`, `react:${m3.id}`, `delete:${m3.id}`],
        other,
    };
}

// The replay (offline push or sync) of what missedActivity made, plus the
// earlier message m1's edit and reaction; checks kinds, order and state.
function checkReplay(frames, x, m1, w, a, what) {
    const got = frames.filter(replayed);
    const want = [`edit:${m1.id}`, `react:${m1.id}`, ...x.expected];
    assert.deepEqual(got.map(tag), want, `${what}: the entries in seq order: ${got.map(brief).join(', ')}`);
    assertSeqsIncrease(got, what);
    const [em1, rm1, t2, r2, e2, t3, e3asDel, r3, d3] = got;
    assert.deepEqual(
        [em1.with, em1.from, em1.data, typeof em1.edited],
        [w, a, 'one, edited twice', 'number'],
        `${what}: an edit replays the current data: ${brief(em1)}`,
    );
    assert.deepEqual([rm1.with, rm1.from, rm1.emoji, rm1.on], [w, a, '🙂', true], brief(rm1));
    // the text m2 as it is now: edited, with its reaction
    assert.deepEqual(
        [t2.data, t2.edited, t2.reactions, t2.from],
        ['two, edited', x.e2.sent, { '👍': [a] }, a],
        `${what}: a replayed text shows its current state: ${brief(t2)}`,
    );
    assert.deepEqual([r2.emoji, r2.on, r2.from], ['👍', true, a], brief(r2));
    assert.deepEqual([e2.data, e2.edited], ['two, edited', x.e2.sent], brief(e2));
    // the text m3, deleted since: no data, deleted + by, no reactions
    assert.deepEqual(
        [t3.data, t3.deleted, t3.by, t3.reactions],
        ['', x.d3.sent, a, undefined],
        `${what}: a deleted text replays without its data: ${brief(t3)}`,
    );
    assert.deepEqual(
        [e3asDel.by, e3asDel.deleted, e3asDel.with, e3asDel.data],
        [a, x.d3.sent, w, undefined],
        `${what}: the edit of a deleted message replays as its delete: ${brief(e3asDel)}`,
    );
    assert.deepEqual([r3.emoji, r3.on], ['🎉', true], brief(r3));
    assert.deepEqual([d3.by, d3.deleted, d3.with], [a, x.d3.sent, w], brief(d3));
    // no text anywhere in the replay carries m3's words
    for (const f of frames) assert.ok(!JSON.stringify(f).includes('three'), `${what}: no trace of the deleted text: ${brief(f)}`);
}

for (const kind of ['1:1', 'group']) {
    cluster.test(`${kind}: missed edits, a delete and reactions come in the offline push after reconnecting, and again from sync`, async () => {
        const [a, b] = await users('sa', 'sb');
        const A = await Client.connect(cluster.gw(0), a.token);
        let B = await Client.connect(cluster.gw(1), b.token);
        let w = a.name; // the conversation as b names it
        let to = b.name; // as a names it
        if (kind === 'group') {
            to = await cluster.createGroup(A, 'sg', [b.name]);
            w = to;
            await B.next({ kind: 'group', name: to });
        }
        const m1 = await text(A, to, 'one');
        const seen = await B.next({ kind: 'text', id: m1.id });
        const epoch = B.hello.epoch;
        await B.close();
        // B's session has left Redis once A is told B is offline: from then on what A does is
        // not pushed to that session, it waits in B's inbox for the next one
        await A.next({ kind: 'offline', from: b.name });
        await edit(A, to, m1.id, 'one, edited');
        await react(A, to, m1.id, '🙂');
        const x = await missedActivity(A, to, b.name);
        // m1 edited again: its first edit entry replays with the current data
        await edit(A, to, m1.id, 'one, edited twice');
        const want = 1 + 1 + x.expected.length + 1;

        B = await Client.connect(cluster.gw(0), b.token, { name: 'B-back' });
        const pushed = await framesAfter(B, 0, replayed, want);
        // the last entry (m1's second edit) also replays with the current data
        const last = pushed[want - 1];
        assert.deepEqual([tag(last), last.data], [`edit:${m1.id}`, 'one, edited twice'], brief(last));
        checkReplay(pushed.slice(0, want - 1), x, m1, w, a.name, 'offline push');
        assert.ok(pushed[0].seq > seen.seq, 'after what the session had');

        const { frames, end } = await syncReplay(B, seen.seq, epoch);
        assert.equal(end.recovered, true, brief(end));
        assert.equal(frames.filter(replayed).length, want, `sync replays every entry after ${seen.seq}: ${frames.map(brief).join(', ')}`);
        checkReplay(frames.slice(0, want - 1), x, m1, w, a.name, 'sync');
        assert.deepEqual(
            frames.map((f) => f.seq),
            pushed.map((f) => f.seq),
            'the same entries, at the same seqs',
        );
        assert.equal(end.seq, frames[frames.length - 1].seq, 'the end names the last seq');
        // a sync from the edit's own seq on: just what came after
        const from = frames.find((f) => f.kind === 'text' && f.id === x.m3.id).seq;
        const tail = await syncReplay(B, from, epoch);
        assert.deepEqual(
            tail.frames.map(tag),
            [`delete:${x.m3.id}`, `react:${x.m3.id}`, `delete:${x.m3.id}`, `edit:${m1.id}`],
            tail.frames.map(brief).join(', '),
        );
    });
}

cluster.test('history shows the current state to every participant: edited + data, reactions, deleted + by + no data, reply_to', async () => {
    const [a, b, c] = await users('ha', 'hb', 'hc');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const C = await Client.connect(cluster.gw(0), c.token);
    const g = await cluster.createGroup(A, 'hg', [b.name, c.name]);
    await B.next({ kind: 'group', name: g });
    await C.next({ kind: 'group', name: g });
    const m1 = await text(A, g, 'typo');
    const m2 = await text(B, g, 'react here');
    const m3 = await text(C, g, 'regrettable');
    const m4 = await acked(B, { kind: 'text', to: g, data: 'answering the typo', reply_to: m1.id, cid: cid() });
    const e1 = await edit(A, g, m1.id, 'no typo');
    await react(A, g, m2.id, '👍');
    await react(C, g, m2.id, '👍');
    await react(C, g, m2.id, '😂');
    await react(B, g, m2.id, '🙃');
    await react(B, g, m2.id, '🙃', false); // off again: the emoji goes
    await react(A, g, m3.id, '👍');
    const d3 = await del(C, g, m3.id);
    for (const X of [A, B, C]) {
        const h = await history(X, g);
        assert.deepEqual(
            h.messages.map((m) => m.id),
            [m1.id, m2.id, m3.id, m4.id],
            `${X.name}: every message still listed`,
        );
        const [h1, h2, h3, h4] = h.messages;
        assert.deepEqual([h1.data, h1.edited, h1.from, h1.reactions], ['no typo', e1.sent, a.name, undefined], brief(h1));
        assert.deepEqual([h2.data, h2.edited], ['react here', undefined], brief(h2));
        assert.deepEqual(Object.keys(h2.reactions).sort(), ['👍', '😂'].sort(), brief(h2));
        assert.deepEqual([...h2.reactions['👍']].sort(), [a.name, c.name].sort());
        assert.deepEqual(h2.reactions['😂'], [c.name]);
        assert.deepEqual([h3.data, h3.deleted, h3.by, h3.reactions, h3.from], ['', d3.sent, c.name, undefined, c.name], brief(h3));
        assert.deepEqual([h4.data, h4.reply_to], ['answering the typo', m1.id], brief(h4));
        assert.ok(!JSON.stringify(h).includes('regrettable'), 'the deleted text is not in history');
    }
    // 1:1: the same, seen from both sides
    const t = await text(A, b.name, 'one to one');
    await edit(A, b.name, t.id, 'one to one, edited');
    await react(B, a.name, t.id, '👍');
    for (const [X, w] of [
        [A, b.name],
        [B, a.name],
    ]) {
        const h = inHistory(await history(X, w), t.id);
        assert.deepEqual([h.data, typeof h.edited, h.reactions], ['one to one, edited', 'number', { '👍': [b.name] }], brief(h));
    }
});

cluster.test("hello's last: the current state of the newest message (edited data; a deleted one without its text)", async () => {
    const [a, b] = await users('la', 'lb');
    const A = await Client.connect(cluster.gw(0), a.token);
    await text(A, b.name, 'older');
    const m = await text(A, b.name, 'newest');
    await edit(A, b.name, m.id, 'newest, edited');
    let B = await Client.connect(cluster.gw(1), b.token);
    let last = entry(B.hello, a.name).last;
    assert.deepEqual([last.id, last.data, typeof last.edited], [m.id, 'newest, edited', 'number'], brief(last));
    await B.close();
    await del(A, b.name, m.id);
    B = await Client.connect(cluster.gw(0), b.token);
    last = entry(B.hello, a.name).last;
    assert.deepEqual([last.id, last.data, typeof last.deleted, last.by], [m.id, '', 'number', a.name], brief(last));
    const A2 = await Client.connect(cluster.gw(1), a.token);
    assert.equal(entry(A2.hello, b.name).last.data, '', "the author's hello too");
});
