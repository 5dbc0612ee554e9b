// Message lifecycle rights and refusals (protocol.md "v1 additions: message
// lifecycle"; the decisions in docs/protocol.md): edit by the author only,
// delete by the author or a group's owner/admins, react by any participant;
// every refusal of a right is `error forbidden` with the frame's cid and
// changes nothing; `bad_field` for an id not in the conversation, a reply_to of
// another conversation, the 21st distinct emoji, an emoji over 32 bytes, an
// empty edit, an edit or react of a deleted message; blocks (edit and react
// refused in a blocked 1:1 both ways, delete of one's own allowed).
// Cluster: redis, router, gw1, gw2.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { Client, brief } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';
import { acked, answer, history, inHistory, isEvent, refused } from './lib/lifecycle.mjs';

const cluster = new Cluster('lifecycle_rights');
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `lr-${++n}`;
const users = (...bases) => cluster.users(bases);
const text = (c, to, data, extra = {}) => acked(c, { kind: 'text', to, data, cid: cid(), ...extra });
const edit = (w, id, data) => ({ kind: 'edit', with: w, id, data, cid: cid() });
const del = (w, id) => ({ kind: 'delete', with: w, id, cid: cid() });
const react = (w, id, emoji, on = true) => ({ kind: 'react', with: w, id, emoji, on, cid: cid() });

async function connect(port, u) {
    const c = await Client.connect(port, u.token);
    c.user = u.name;
    return c;
}

// c sends a group op and waits for its own frame back
async function groupOp(c, g, op, members) {
    c.send({ kind: 'group', op, name: g, members });
    const f = await c.next((x) => (x.kind === 'group' && x.name === g && x.op === op) || x.kind === 'error');
    assert.equal(f.kind, 'group', brief(f));
}

cluster.test('edit: the author only; the peer, another member, even the owner get forbidden with the cid; nothing changes', async () => {
    const [a, b, o, m] = await users('ea', 'eb', 'eo', 'em');
    const A = await connect(cluster.gw(0), a);
    const B = await connect(cluster.gw(1), b);
    const O = await connect(cluster.gw(0), o);
    const M = await connect(cluster.gw(1), m);
    const t = await text(A, b.name, 'original 1:1');
    await B.next({ kind: 'text', id: t.id });
    await refused(B, edit(a.name, t.id, 'not yours'), 'forbidden', "the peer edits the author's message");

    const g = await cluster.createGroup(O, 'eg', [a.name, m.name]);
    await groupOp(O, g, 'promote', [m.name]);
    const gt = await text(A, g, 'original group');
    await refused(M, edit(g, gt.id, 'admin edit'), 'forbidden', 'an admin edits another member');
    await refused(O, edit(g, gt.id, 'owner edit'), 'forbidden', 'the owner edits another member');

    // nothing was stored or sent by the refusals
    assert.equal(inHistory(await history(A, b.name), t.id).data, 'original 1:1');
    const gh = inHistory(await history(A, g), gt.id);
    assert.deepEqual([gh.data, gh.edited], ['original group', undefined], brief(gh));
    await A.expectNone(isEvent, 200, 'an event after refused edits');

    // the author may
    const ack = await acked(A, edit(b.name, t.id, 'fixed 1:1'));
    assert.equal(ack.id, t.id);
    const e = await B.next({ kind: 'edit', id: t.id });
    assert.deepEqual([e.with, e.from, e.data], [a.name, a.name, 'fixed 1:1'], brief(e));
    await acked(A, edit(g, gt.id, 'fixed group'));
    assert.equal((await M.next({ kind: 'edit', id: gt.id })).data, 'fixed group');
});

cluster.test('delete: the author; not the 1:1 peer, not a plain group member; a group owner and an admin may', async () => {
    const [a, b, o, ad, m] = await users('da', 'db', 'do', 'dd', 'dm');
    const A = await connect(cluster.gw(0), a);
    const B = await connect(cluster.gw(1), b);
    const O = await connect(cluster.gw(0), o);
    const AD = await connect(cluster.gw(1), ad);
    const M = await connect(cluster.gw(0), m);

    const t1 = await text(A, b.name, 'peer cannot delete');
    await B.next({ kind: 'text', id: t1.id });
    await refused(B, del(a.name, t1.id), 'forbidden', "the 1:1 peer deletes the author's message");
    assert.equal(inHistory(await history(B, a.name), t1.id).data, 'peer cannot delete', 'still there');
    await acked(A, del(b.name, t1.id));
    const d = await B.next({ kind: 'delete', id: t1.id });
    assert.deepEqual([d.with, d.by], [a.name, a.name], brief(d));

    const g = await cluster.createGroup(O, 'dg', [a.name, ad.name, m.name]);
    await groupOp(O, g, 'promote', [ad.name]);
    const g1 = await text(A, g, 'by the admin');
    const g2 = await text(A, g, 'by the owner');
    const g3 = await text(AD, g, "the admin's own");
    await refused(M, del(g, g1.id), 'forbidden', 'a plain member deletes another member');
    await refused(M, del(g, g3.id), 'forbidden', 'a plain member deletes an admin');
    let h = await history(M, g);
    assert.deepEqual(
        [g1, g2, g3].map((x) => inHistory(h, x.id).data),
        ['by the admin', 'by the owner', "the admin's own"],
    );
    await acked(AD, del(g, g1.id));
    await acked(O, del(g, g2.id));
    await acked(O, del(g, g3.id)); // the owner deletes an admin's message
    const g4 = await text(O, g, "the owner's own");
    await acked(AD, del(g, g4.id)); // an admin deletes the owner's message
    for (const [id, by] of [
        [g1.id, ad.name],
        [g2.id, o.name],
        [g3.id, o.name],
        [g4.id, ad.name],
    ]) {
        const f = await M.next({ kind: 'delete', id });
        assert.deepEqual([f.with, f.by], [g, by], brief(f));
    }
    h = await history(A, g);
    for (const [x, by] of [
        [g1, ad.name],
        [g2, o.name],
        [g3, o.name],
    ]) {
        const hm = inHistory(h, x.id);
        assert.deepEqual([hm.data, typeof hm.deleted, hm.by], ['', 'number', by], brief(hm));
    }
});

cluster.test('react: any participant; a non-member of a group, or of no such conversation, is refused', async () => {
    const [a, b, c] = await users('ra', 'rb', 'rc');
    const A = await connect(cluster.gw(0), a);
    const B = await connect(cluster.gw(1), b);
    const C = await connect(cluster.gw(1), c);
    const t = await text(A, b.name, 'react to me');
    await acked(B, react(a.name, t.id, '👍'));
    await acked(A, react(b.name, t.id, '👍')); // the author too
    const g = await cluster.createGroup(A, 'rg', [b.name]);
    const gt = await text(A, g, 'group message');
    await refused(C, react(g, gt.id, '👍'), 'forbidden', 'a non-member reacts');
    await refused(C, edit(g, gt.id, 'x'), 'forbidden', 'a non-member edits');
    await refused(C, del(g, gt.id), 'forbidden', 'a non-member deletes');
    await refused(C, react(`#${cluster.name('nogroup')}`, gt.id, '👍'), 'no_such_user', 'no such group');
    await refused(C, react(cluster.name('nobody'), t.id, '👍'), 'no_such_user', 'no such user');
    await acked(B, react(g, gt.id, '🎉'));
    const h = await history(A, g);
    assert.deepEqual(inHistory(h, gt.id).reactions, { '🎉': [b.name] }, 'only the member reacted');
    const h1 = inHistory(await history(B, a.name), t.id);
    assert.deepEqual([...h1.reactions['👍']].sort(), [a.name, b.name].sort(), brief(h1));
});

cluster.test('a member removed from a group (or who left) may no longer edit, delete or react, even his own messages', async () => {
    const [o, r, l] = await users('mo', 'mr', 'ml');
    const O = await connect(cluster.gw(0), o);
    const R = await connect(cluster.gw(1), r);
    const L = await connect(cluster.gw(0), l);
    const g = await cluster.createGroup(O, 'mg', [r.name, l.name]);
    const mine = await text(R, g, 'written while a member');
    const hers = await text(L, g, 'written before leaving');
    await groupOp(O, g, 'remove', [r.name]);
    await R.next({ kind: 'group', name: g, op: 'remove' });
    L.send({ kind: 'group', op: 'leave', name: g });
    await L.next({ kind: 'group', name: g, op: 'leave' });
    for (const [X, id] of [
        [R, mine.id],
        [L, hers.id],
    ]) {
        await refused(X, edit(g, id, 'still mine?'), 'forbidden', `${X.user}: edit after leaving`);
        await refused(X, del(g, id), 'forbidden', `${X.user}: delete after leaving`);
        await refused(X, react(g, id, '👋'), 'forbidden', `${X.user}: react after leaving`);
    }
    const h = await history(O, g);
    assert.deepEqual(
        [inHistory(h, mine.id).data, inHistory(h, hers.id).data, inHistory(h, mine.id).reactions],
        ['written while a member', 'written before leaving', undefined],
    );
});

cluster.test('bad_field: an id not of this conversation, a reply_to of another, a missing or unknown id', async () => {
    const [a, b, c] = await users('ba', 'bb', 'bc');
    const A = await connect(cluster.gw(0), a);
    const B = await connect(cluster.gw(1), b);
    const tab = await text(A, b.name, 'a to b');
    const tac = await text(A, c.name, 'a to c');
    const g = await cluster.createGroup(A, 'bg', [b.name, c.name]);
    const tg = await text(A, g, 'a to the group');
    // A is the author everywhere: the conversation, not the right, is what is wrong
    for (const [w, id, what] of [
        [c.name, tab.id, 'a 1:1 id used in another 1:1'],
        [b.name, tg.id, 'a group id used in a 1:1'],
        [g, tac.id, 'a 1:1 id used in a group'],
        [b.name, tab.id + 1000000, 'an id nobody has'],
    ]) {
        await refused(A, edit(w, id, 'moved'), 'bad_field', `edit: ${what}`);
        await refused(A, del(w, id), 'bad_field', `delete: ${what}`);
        await refused(A, react(w, id, '👍'), 'bad_field', `react: ${what}`);
    }
    // reply_to: of another conversation, of an unknown id; nothing stored
    await refused(A, { kind: 'text', to: b.name, data: 'reply elsewhere', reply_to: tac.id, cid: cid() }, 'bad_field', 'reply_to of another 1:1');
    await refused(A, { kind: 'text', to: g, data: 'reply elsewhere', reply_to: tab.id, cid: cid() }, 'bad_field', 'reply_to of a 1:1 in a group');
    await refused(A, { kind: 'text', to: b.name, data: 'reply to nothing', reply_to: tab.id + 1000000, cid: cid() }, 'bad_field', 'reply_to unknown');
    assert.deepEqual(
        (await history(B, a.name)).messages.map((m) => m.data),
        ['a to b'],
        'no refused reply stored',
    );
    // a reply in the conversation is stored and delivered with reply_to
    const r = await text(B, a.name, 'my answer', { reply_to: tab.id });
    const live = await A.next({ kind: 'text', id: r.id });
    assert.equal(live.reply_to, tab.id, brief(live));
    // field shapes
    for (const [f, what] of [
        [{ kind: 'edit', with: b.name, data: 'no id', cid: cid() }, 'edit without id'],
        [{ kind: 'edit', with: b.name, id: tab.id, cid: cid() }, 'edit without data'],
        [{ kind: 'edit', with: b.name, id: String(tab.id), data: 'x', cid: cid() }, 'edit with a string id'],
        [{ kind: 'delete', id: tab.id, cid: cid() }, 'delete without with'],
        [{ kind: 'react', with: b.name, id: tab.id, on: true, cid: cid() }, 'react without emoji'],
        [{ kind: 'react', with: b.name, id: tab.id, emoji: '👍', on: 1, cid: cid() }, 'react with a non-boolean on'],
        [{ kind: 'react', with: b.name, id: tab.id, emoji: '👍', cid: cid() }, 'react without on'],
    ])
        await refused(A, f, 'bad_field', what);
    assert.equal(inHistory(await history(A, b.name), tab.id).data, 'a to b', 'unchanged');
});

cluster.test('bad_field: an empty edit, an emoji over 32 bytes or empty, the 21st distinct emoji; at 20 the known ones still work', async () => {
    const [a, b] = await users('ka', 'kb');
    const A = await connect(cluster.gw(0), a);
    const B = await connect(cluster.gw(1), b);
    const t = await text(A, b.name, 'keep me');
    await refused(A, edit(b.name, t.id, ''), 'bad_field', 'an empty edit');
    const e32 = '😀'.repeat(8); // 32 bytes of UTF-8
    assert.equal(Buffer.byteLength(e32), 32);
    await refused(B, react(a.name, t.id, `${e32}x`), 'bad_field', 'an emoji of 33 bytes');
    await refused(B, react(a.name, t.id, ''), 'bad_field', 'an empty emoji');
    await acked(B, react(a.name, t.id, e32));
    // 20 distinct emoji in all, from both users
    for (let i = 1; i < 20; i++) await acked(i % 2 ? A : B, react(i % 2 ? b.name : a.name, t.id, `e${i}`));
    await refused(B, react(a.name, t.id, 'e20'), 'bad_field', 'the 21st distinct emoji');
    await refused(A, react(b.name, t.id, 'e21'), 'bad_field', 'the 21st distinct emoji (the other user)');
    // a known emoji is not a 21st: another user adds himself to it
    await acked(A, react(b.name, t.id, e32));
    const h = inHistory(await history(A, b.name), t.id);
    assert.equal(Object.keys(h.reactions).length, 20, brief(h));
    assert.deepEqual([...h.reactions[e32]].sort(), [a.name, b.name].sort());
    assert.equal(h.reactions.e20, undefined);
    assert.equal(h.data, 'keep me');
    // taking one off makes room again
    await acked(A, react(b.name, t.id, 'e1', false));
    await acked(B, react(a.name, t.id, 'e20'));
    // strings must be valid UTF-8 msgpack str: not bin, not invalid bytes
    await refused(A, { ...edit(b.name, t.id, ''), data: new Uint8Array([104, 105]) }, 'bad_field', 'edit data as bin');
    await refused(B, { ...react(a.name, t.id, ''), emoji: new Uint8Array([104, 105]) }, 'bad_field', 'emoji as bin');
    for (const [frame, field] of [
        [edit(b.name, t.id), 'data'],
        [react(b.name, t.id, undefined), 'emoji'],
    ]) {
        delete frame[field];
        const head = Buffer.from(encode(frame));
        assert.equal(head[0] & 0xf0, 0x80, 'a fixmap');
        A.sendRaw(Buffer.concat([Buffer.from([head[0] + 1]), head.subarray(1), Buffer.from(encode(field)), Buffer.from([0xa2, 0xff, 0xfe])]));
        const e = await A.next((x) => x.kind === 'error' || (x.kind === 'ack' && x.cid === frame.cid));
        assert.deepEqual([e.kind, e.code], ['error', 'bad_field'], `${field} of invalid UTF-8: ${brief(e)}`);
    }
    const h2 = inHistory(await history(A, b.name), t.id);
    assert.deepEqual([h2.data, h2.edited], ['keep me', undefined], 'no edit went through');
});

cluster.test('a deleted message: edit and react are bad_field; a second delete is acked and sends nothing', async () => {
    const [a, b] = await users('xa', 'xb');
    const A = await connect(cluster.gw(0), a);
    const B = await connect(cluster.gw(1), b);
    const t = await text(A, b.name, 'soon gone');
    await B.next({ kind: 'text', id: t.id });
    const d1 = await acked(A, del(b.name, t.id));
    await B.next({ kind: 'delete', id: t.id });
    await refused(A, edit(b.name, t.id, 'back'), 'bad_field', 'edit of a deleted message');
    await refused(B, react(a.name, t.id, '👍'), 'bad_field', 'react on a deleted message');
    await refused(A, react(b.name, t.id, '👍', false), 'bad_field', 'react off on a deleted message');
    const d2 = await acked(A, del(b.name, t.id));
    assert.equal(d2.id, t.id);
    assert.notEqual(d2.cid, d1.cid);
    // the right comes first: the peer's delete or edit of it is forbidden, not acked or bad_field
    await refused(B, del(a.name, t.id), 'forbidden', "the peer deletes the author's deleted message");
    await refused(B, edit(a.name, t.id, 'mine now'), 'forbidden', "the peer edits the author's deleted message");
    await B.expectNone(isEvent, 300, 'an event after the refusals and the second delete');
    const h = inHistory(await history(B, a.name), t.id);
    assert.deepEqual([h.data, h.deleted, h.by, h.reactions], ['', h.deleted, a.name, undefined]);
    assert.equal(typeof h.deleted, 'number');
});

cluster.test('blocks: in a blocked 1:1 edit and react are forbidden both ways, deleting one own message is allowed', async () => {
    const [a, b] = await users('la', 'lb');
    const A = await connect(cluster.gw(0), a);
    const B = await connect(cluster.gw(1), b);
    const ta = await text(A, b.name, 'from the blocker');
    const tb = await text(B, a.name, 'from the blocked');
    await A.next({ kind: 'text', id: tb.id });
    A.send({ kind: 'block', user: b.name, on: true });
    const bf = await A.next((x) => x.kind === 'block' || x.kind === 'error');
    assert.deepEqual([bf.kind, bf.on], ['block', true], brief(bf));
    await refused(B, edit(a.name, tb.id, 'edited while blocked'), 'forbidden', 'the blocked user edits');
    await refused(B, react(a.name, ta.id, '👍'), 'forbidden', 'the blocked user reacts');
    await refused(A, edit(b.name, ta.id, 'edited by the blocker'), 'forbidden', 'the blocker edits');
    await refused(A, react(b.name, tb.id, '👍'), 'forbidden', 'the blocker reacts');
    const h0 = await history(A, b.name);
    assert.deepEqual(
        h0.messages.map((m) => [m.data, m.edited, m.reactions]),
        [
            ['from the blocker', undefined, undefined],
            ['from the blocked', undefined, undefined],
        ],
    );
    await acked(B, del(a.name, tb.id));
    await acked(A, del(b.name, ta.id));
    const h = await history(B, a.name);
    assert.deepEqual(
        h.messages.map((m) => [m.id, m.data, m.by]),
        [
            [ta.id, '', a.name],
            [tb.id, '', b.name],
        ],
        'both deleted',
    );
    // the right of the other is still checked while blocked
    const tb2 = await answer(B, { kind: 'text', to: a.name, data: 'x', cid: cid() });
    assert.equal(tb2.code, 'forbidden', 'texts still refused');
});
