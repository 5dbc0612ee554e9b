// Mentions, replies and the unread / mention counts (protocol.md "v1
// additions: message lifecycle", Mentions; docs/protocol.md decisions):
// `mentions` set by the server on live, sync and history texts by the
// contract's rule (`@` not after a name character, the longest run of name
// characters, trailing . - _ dropped when that run is not a participant; a
// non-participant never listed; a client's own `mentions` ignored); reply_to
// carried on live, sync and history texts; hello's `unread` and `mentions`
// across reconnects: raised by a mention, cleared by read, lowered by the
// sender's delete of an unread message, unchanged by edits and reactions.
// Cluster: redis, router, gw1, gw2.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief } from './lib/client.mjs';
import { Cluster, makeUsers } from './lib/cluster.mjs';
import { acked, entry, history, inHistory, syncReplay } from './lib/lifecycle.mjs';

const cluster = new Cluster('lifecycle_mentions');
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `lm-${++n}`;
const users = (...bases) => cluster.users(bases);
const text = (c, to, data, extra = {}) => acked(c, { kind: 'text', to, data, cid: cid(), ...extra });
const sorted = (x) => [...(x || [])].sort();

// registers exactly these names; resolves with [{name, token}]
async function named(...names) {
    const tokens = await makeUsers(cluster.gw(0), names);
    return names.map((name) => ({ name, token: tokens[name] }));
}

cluster.test('mentions: the rule on live, sync and history texts; non-participants and client-set mentions never listed', async () => {
    const base = cluster.name('mn');
    // bob and "bob.x" take part; "bob." does not exist; carol exists but is not in the group
    const [a, bob, bobx, carol, dash] = await named(`${base}a`, `${base}bob`, `${base}bob.x`, `${base}carol`, `${base}d-d`);
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), bob.token);
    const g = await cluster.createGroup(A, 'mg', [bob.name, bobx.name, dash.name]);
    await B.next({ kind: 'group', name: g });
    const cases = [
        [`hi @${bob.name}.`, [bob.name], 'a trailing dot dropped when "bob." is not a participant'],
        [`@${bob.name}-_. at the start`, [bob.name], 'trailing . - _ dropped'],
        [`ask @${bobx.name} please`, [bobx.name], 'the longest run: bob.x, not bob'],
        [`ask @${bobx.name}.`, [bobx.name], 'bob.x. -> bob.x'],
        [`x@${bob.name} is an address`, [], 'after a name character: not a mention'],
        [`_@${bob.name} neither`, [], 'after _ (a name character): not a mention'],
        [`(@${bob.name}) and @${dash.name}!`, [bob.name, dash.name], 'after a bracket; a name with a dash'],
        [`@${carol.name} is not here`, [], 'a user who is not a participant'],
        [`@${base}nobody at all`, [], 'no such user'],
        [`@${bob.name} @${bob.name} twice`, [bob.name], 'listed once'],
        [`me: @${a.name}`, [a.name], "the sender's own name is listed"],
        [`@${bob.name.toUpperCase()} shouting`, [], 'upper case letters are not name characters'],
        [`café@${bob.name}`, [bob.name], 'after a non-ASCII letter (not a name character)'],
    ];
    const sent = [];
    for (const [data, want, what] of cases) {
        const ack = await text(A, g, data);
        const live = await B.next({ kind: 'text', id: ack.id });
        assert.deepEqual(sorted(live.mentions), sorted(want), `live: ${what}: ${brief(live)}`);
        sent.push([ack, want, what]);
    }
    // a client's own mentions field is ignored
    const forged = await text(A, g, 'no at sign here', { mentions: [bob.name] });
    const lf = await B.next({ kind: 'text', id: forged.id });
    assert.ok(!lf.mentions || lf.mentions.length === 0, `a client-set mentions field is ignored: ${brief(lf)}`);
    sent.push([forged, [], 'client-set']);
    // the same in history and in a sync replay
    const h = await history(B, g);
    for (const [ack, want, what] of sent) assert.deepEqual(sorted(inHistory(h, ack.id).mentions), sorted(want), `history: ${what}`);
    const first = B.all({ kind: 'text', id: sent[0][0].id })[0];
    const { frames } = await syncReplay(B, first.seq - 1, B.hello.epoch);
    for (const [ack, want, what] of sent) {
        const f = frames.find((x) => x.kind === 'text' && x.id === ack.id);
        assert.ok(f, `sync replays ${ack.id}`);
        assert.deepEqual(sorted(f.mentions), sorted(want), `sync: ${what}`);
    }
    // 1:1: both users are participants, a third is not
    const one = await text(B, a.name, `@${a.name} and @${carol.name}`);
    assert.deepEqual((await A.next({ kind: 'text', id: one.id })).mentions, [a.name]);
    // an edit does not change mentions
    await acked(A, { kind: 'edit', with: g, id: sent[4][0].id, data: `now @${bob.name}`, cid: cid() });
    await B.next({ kind: 'edit', id: sent[4][0].id });
    const he = inHistory(await history(B, g), sent[4][0].id);
    assert.ok(!he.mentions || he.mentions.length === 0, `an edit adds no mention: ${brief(he)}`);
});

cluster.test('reply_to is carried on live texts (both sessions), sync replays and history, 1:1 and group', async () => {
    const [a, b] = await users('pa', 'pb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const A2 = await Client.connect(cluster.gw(1), a.token, { name: 'A2' });
    const B = await Client.connect(cluster.gw(1), b.token);
    const g = await cluster.createGroup(A, 'pg', [b.name]);
    await B.next({ kind: 'group', name: g });
    for (const [to, w] of [
        [b.name, a.name],
        [g, g],
    ]) {
        const orig = await text(A, to, 'the question');
        await B.next({ kind: 'text', id: orig.id });
        const rep = await text(B, w, 'the answer', { reply_to: orig.id });
        for (const X of [A, A2]) assert.equal((await X.next({ kind: 'text', id: rep.id })).reply_to, orig.id, `${X.name} live`);
        const own = await text(A, to, 'me again', { reply_to: rep.id });
        assert.equal((await A2.next({ kind: 'text', id: own.id })).reply_to, rep.id, "the sender's other session");
        assert.equal((await B.next({ kind: 'text', id: own.id })).reply_to, rep.id);
        const h = await history(A, to);
        assert.deepEqual([inHistory(h, orig.id).reply_to, inHistory(h, rep.id).reply_to, inHistory(h, own.id).reply_to], [undefined, orig.id, rep.id]);
        const seq = A2.all({ kind: 'text', id: rep.id })[0].seq;
        const { frames } = await syncReplay(A2, seq - 1, A2.hello.epoch);
        const byId = (id) => frames.find((f) => f.kind === 'text' && f.id === id);
        assert.deepEqual([byId(rep.id)?.reply_to, byId(own.id)?.reply_to], [orig.id, rep.id], frames.map(brief).join(', '));
        // a reply to a message deleted since keeps its reply_to
        await acked(A, { kind: 'delete', with: to, id: orig.id, cid: cid() });
        assert.equal(inHistory(await history(B, w), rep.id).reply_to, orig.id);
    }
});

cluster.test('mentions: at most 64 distinct @ candidates are looked at per text; beyond them nothing is a mention', async () => {
    const [a, b] = await users('qa', 'qb');
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const others = (k) => Array.from({ length: k }, (_, i) => `@zz${i}q`).join(' ');
    const within = await text(A, b.name, `${others(63)} @${b.name}`);
    assert.deepEqual((await B.next({ kind: 'text', id: within.id })).mentions, [b.name], 'the 64th candidate is looked at');
    const beyond = await text(A, b.name, `${others(64)} @${b.name}`);
    const f = await B.next({ kind: 'text', id: beyond.id });
    assert.ok(!f.mentions || f.mentions.length === 0, `the 65th is not: ${brief(f)}`);
});

// b's hello entry for conversation w: [unread, mentions] (0 when omitted)
async function counts(u, w, gw) {
    const c = await Client.connect(cluster.gw(gw), u.token, { name: `${u.name}-count` });
    const e = entry(c.hello, w);
    await c.close();
    assert.ok(e, `${w} in ${u.name}'s hello`);
    return [e.unread ?? 0, e.mentions ?? 0];
}

cluster.test("unread and mention counts across reconnect: mention, edit, react, the sender's delete, read", async () => {
    const [a, b, c] = await users('ca', 'cb', 'cc');
    const A = await Client.connect(cluster.gw(0), a.token);
    const g = await cluster.createGroup(A, 'cg', [b.name, c.name]);
    const m1 = await text(A, g, `hey @${b.name}`);
    const m2 = await text(A, g, 'plain');
    const m3 = await text(A, g, `@${b.name} again, and @${a.name}`);
    assert.deepEqual(await counts(b, g, 1), [3, 2], 'b: 3 unread, 2 mentioning him');
    assert.deepEqual(await counts(c, g, 0), [3, 0], 'c: not mentioned');
    assert.deepEqual(await counts(a, g, 1), [0, 0], "the sender: his own messages and his own name don't count");

    // edits and reactions change no count (not even an edit that adds a mention)
    await acked(A, { kind: 'edit', with: g, id: m2.id, data: `plain, now @${b.name}`, cid: cid() });
    await acked(A, { kind: 'edit', with: g, id: m1.id, data: 'hey (no mention)', cid: cid() });
    await acked(A, { kind: 'react', with: g, id: m1.id, emoji: '👍', on: true, cid: cid() });
    const C = await Client.connect(cluster.gw(1), c.token);
    await acked(C, { kind: 'react', with: g, id: m3.id, emoji: '👀', on: true, cid: cid() });
    await C.close();
    assert.deepEqual(await counts(b, g, 0), [3, 2], 'b: unchanged by edits and reactions');
    assert.deepEqual(await counts(c, g, 1), [3, 0], 'c: unchanged by his own reaction');

    // the sender deletes an unread message that mentions b: one off each
    await acked(A, { kind: 'delete', with: g, id: m3.id, cid: cid() });
    assert.deepEqual(await counts(b, g, 1), [2, 1], 'b: the deleted mention is gone from both counts');
    assert.deepEqual(await counts(c, g, 0), [2, 0], 'c: one unread less');
    // the sender deletes an unread message whose edit added a mention: unread only
    await acked(A, { kind: 'delete', with: g, id: m2.id, cid: cid() });
    assert.deepEqual(await counts(b, g, 0), [1, 1], 'b: m2 never mentioned him');

    // read clears both
    const B = await Client.connect(cluster.gw(1), b.token);
    assert.deepEqual([entry(B.hello, g).unread, entry(B.hello, g).mentions], [1, 1]);
    B.send({ kind: 'read', with: g, upto: m1.id });
    await A.next({ kind: 'read', from: b.name });
    await B.close();
    assert.deepEqual(await counts(b, g, 0), [0, 0], 'read clears unread and mentions');

    // a deleted message the user had read already takes nothing off
    const m4 = await text(A, g, `@${b.name} read this`);
    const B2 = await Client.connect(cluster.gw(0), b.token);
    assert.deepEqual([entry(B2.hello, g).unread, entry(B2.hello, g).mentions], [1, 1]);
    B2.send({ kind: 'read', with: g, upto: m4.id });
    await A.next({ kind: 'read', from: b.name, upto: m4.id });
    await acked(A, { kind: 'delete', with: g, id: m4.id, cid: cid() });
    await B2.close();
    assert.deepEqual(await counts(b, g, 1), [0, 0], 'never below zero');

    // a later mention counts again
    await text(A, g, `@${b.name} once more`);
    assert.deepEqual(await counts(b, g, 0), [1, 1], 'a mention after the read counts');
});

cluster.test(
    "counts: the owner deletes another's unread message (everyone but its author loses it); a partial read recomputes without deleted ones",
    async () => {
        const [o, a, b] = await users('ro', 'ra', 'rb');
        const O = await Client.connect(cluster.gw(0), o.token);
        const g = await cluster.createGroup(O, 'rg', [a.name, b.name]);
        const A = await Client.connect(cluster.gw(1), a.token);
        const m1 = await text(A, g, `@${b.name} first`);
        const m2 = await text(A, g, 'second');
        const m3 = await text(A, g, `@${b.name} @${o.name} third`);
        const m4 = await text(O, g, `fourth, @${a.name}`);
        assert.deepEqual(await counts(b, g, 0), [4, 2]);
        assert.deepEqual(await counts(o, g, 1), [3, 1]);
        assert.deepEqual(await counts(a, g, 0), [1, 1]);
        await acked(O, { kind: 'delete', with: g, id: m3.id, cid: cid() }); // the owner deletes a's message
        assert.deepEqual(await counts(b, g, 1), [3, 1], 'b: m3 off both counts');
        assert.deepEqual(await counts(o, g, 0), [2, 0], 'the owner (who deleted it) had not read it either');
        assert.deepEqual(await counts(a, g, 1), [1, 1], 'a, its author: his counts never held it');
        // b reads up to m1: what is left after it is m2 and m4 (m3 is deleted), no mention
        const B = await Client.connect(cluster.gw(1), b.token);
        B.send({ kind: 'read', with: g, upto: m1.id });
        await O.next({ kind: 'read', from: b.name, upto: m1.id });
        await B.close();
        assert.deepEqual(await counts(b, g, 0), [2, 0], 'read recomputes: m2 and m4 unread, no mention left');
        assert.ok(m4.id > m2.id);
    },
);

cluster.test('1:1 counts: a mention raises both, the delete of it lowers both, read clears', async () => {
    const [a, b] = await users('da', 'db');
    const A = await Client.connect(cluster.gw(0), a.token);
    const m1 = await text(A, b.name, `@${b.name} look`);
    const m2 = await text(A, b.name, 'no mention');
    assert.deepEqual(await counts(b, a.name, 1), [2, 1]);
    await acked(A, { kind: 'react', with: b.name, id: m1.id, emoji: '👍', on: true, cid: cid() });
    assert.deepEqual(await counts(b, a.name, 0), [2, 1], 'a reaction changes nothing');
    await acked(A, { kind: 'delete', with: b.name, id: m1.id, cid: cid() });
    assert.deepEqual(await counts(b, a.name, 1), [1, 0]);
    const B = await Client.connect(cluster.gw(0), b.token);
    B.send({ kind: 'read', with: a.name, upto: m2.id });
    await A.next({ kind: 'read', from: b.name });
    assert.deepEqual(await counts(b, a.name, 1), [0, 0]);
});
