// Edit and delete in a 1,000-member group stay bounded (issue 14, with the
// bounded-work rules of issue 12, docs/internals.md "Bounded work per call"):
// both acked, every member's inbox gets each event (one EVAL checks all 1,000),
// the connected members on both gateways get each once, an offline member's
// push after reconnecting replays them and his unread count loses the deleted
// message; and no script or function call writes more than --fanout-chunk + 1
// member inboxes, read from Redis MONITOR (every command a script runs is
// listed there, between the calls: a structural bound, not a timing).
// Cluster: redis, router (--fanout-chunk 100), gw1, gw2 (its own, so 1,000
// users do not change the "everyone is a contact" mode of the other files).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, mintToken } from './lib/client.mjs';
import { Cluster, SECRET } from './lib/cluster.mjs';
import { Monitor, acked, entry, framesAfter, isEvent, scriptCalls, syncReplay, tag } from './lib/lifecycle.mjs';

const MEMBERS = 1000;
const CHUNK = 100;
const LIVE = 20; // members with a live session, over both gateways
const cluster = new Cluster('lifecycle_bounded', { routerArgs: ['--fanout-chunk', String(CHUNK)] });
let prefix;
before(async () => {
    await cluster.start();
    prefix = `lb${Date.now() % 100000}x`;
    const r = await cluster.cli(['bulk-users', String(MEMBERS), '--prefix', prefix, '--password', 'bulk password 1'], 60000);
    assert.ok(r.ok, `bulk-users: ${r.stderr}`);
});
after(() => cluster.stop());

const token = (name) => mintToken(SECRET, name, Math.floor(Date.now() / 1000) + 3600);

// members (of 0..MEMBERS-1) whose inbox entries about message id (among their newest 20) are
// not exactly the text's reference then the events `ks` (e.g. ['e', 'd']), each with w = g; at
// most 5 listed, with what they hold
async function inboxesWithout(g, id, ks) {
    return cluster.redis(
        'EVAL',
        'local want, out = cjson.decode(ARGV[5]), {} ' +
            'for i = 0, tonumber(ARGV[2]) - 1 do ' +
            "local u = ARGV[1] .. i local got = {} for _, e in ipairs(redis.call('LRANGE', 'parley:{u:' .. u .. '}:inbox', -20, -1)) do " +
            'local m = cmsgpack.unpack(e) if m.id == tonumber(ARGV[3]) then ' +
            "got[#got + 1] = (m.w == ARGV[4] and '' or 'w?') .. (m.k or 't') end end " +
            'local ok = #got == #want for j = 1, #want do ok = ok and got[j] == want[j] end ' +
            "if not ok and #out < 5 then out[#out + 1] = u .. ': ' .. table.concat(got, ',') end end return out",
        '0',
        prefix,
        String(MEMBERS),
        String(id),
        g,
        JSON.stringify(['t', ...ks]),
    );
}

cluster.test(
    `edit and delete in a ${MEMBERS}-member group: acked, in every inbox, once per session, in steps of at most ${CHUNK} + 1 inbox writes`,
    { timeout: 120000 },
    async (t) => {
        const names = Array.from({ length: MEMBERS }, (_, i) => `${prefix}${i}`);
        const last = names[MEMBERS - 1]; // offline all along, mentioned
        const A = await Client.connect(cluster.gw(0), token(names[0]), { name: 'author' });
        const A2 = await Client.connect(cluster.gw(1), token(names[0]), { name: 'author-2' });
        const g = `#${cluster.name('big')}`;
        A.send({ kind: 'group', op: 'create', name: g, members: names.slice(1) });
        const created = await A.next((x) => (x.kind === 'group' && x.name === g) || x.kind === 'error', 30000);
        assert.equal(created.kind, 'group', brief(created));
        assert.equal(created.members.length, MEMBERS);
        const live = [A2];
        for (let i = 1; i <= LIVE; i++) live.push(await Client.connect(cluster.gw(i % 2), token(names[i]), { name: names[i] }));
        const early = await acked(A, { kind: 'text', to: g, data: 'edited at the end', cid: 'lb-0' }, 30000);
        await Promise.all(live.map((c) => c.next({ kind: 'text', id: early.id }, 30000)));
        const msg = await acked(A, { kind: 'text', to: g, data: `to be edited, then deleted, @${last}`, cid: 'lb-1' }, 30000);
        const texts = await Promise.all(live.map((c) => c.next({ kind: 'text', id: msg.id }, 30000)));
        assert.deepEqual(texts[1].mentions, [last], brief(texts[1]));
        assert.equal(Number(await cluster.redis('HGET', `parley:{u:${last}}:mentions`, g)), 1, 'the offline member counts the mention');

        const mon = await Monitor.open(cluster.redisPort);
        t.after(() => mon.close());
        await mon.mark(cluster, 'start');
        const t0 = performance.now();
        // sent twice at once: the retry comes while the first is stored and queued
        const editFrame = { kind: 'edit', with: g, id: msg.id, data: 'edited for all', cid: 'lb-2' };
        A.send(editFrame);
        const e = await acked(A, editFrame, 30000);
        const editMs = performance.now() - t0;
        await Promise.all(live.map((c) => c.next({ kind: 'edit', id: msg.id }, 30000)));
        const t1 = performance.now();
        const d = await acked(A, { kind: 'delete', with: g, id: msg.id, cid: 'lb-3' }, 30000);
        const deleteMs = performance.now() - t1;
        await Promise.all(live.map((c) => c.next({ kind: 'delete', id: msg.id }, 30000)));
        await mon.mark(cluster, 'end');
        t.diagnostic(`${MEMBERS} members: edit acked after ${editMs.toFixed(1)} ms, delete after ${deleteMs.toFixed(1)} ms`);
        const editAcks = A.all((x) => x.cid === 'lb-2');
        assert.ok(
            editAcks.every((x) => x.kind === 'ack' && x.id === msg.id && x.seq === e.seq),
            `the retried edit: the same ack each time: ${editAcks.map(brief).join(', ')}`,
        );

        // every inbox: the text, one edit, one delete
        assert.deepEqual(await inboxesWithout(g, msg.id, ['e', 'd']), [], 'inboxes without exactly the text, one edit, one delete');
        // each connected session: once each, in order, with #group
        for (const c of live) {
            await c.expectNone(isEvent, 20, 'a second event');
            const evs = c.all(isEvent);
            assert.deepEqual(evs.map(tag), [`edit:${msg.id}`, `delete:${msg.id}`], c.name);
            assert.deepEqual([evs[0].with, evs[0].data, evs[0].from, evs[1].with, evs[1].by], [g, 'edited for all', names[0], g, names[0]], brief(evs[0]));
            assert.ok(evs[1].seq > evs[0].seq, `${c.name}: seqs increase`);
        }
        assert.equal(A2.all({ kind: 'edit' })[0].seq, e.seq, "the author's other session: the ack's seq");
        await A.expectNone(isEvent, 0, "the acting session's own events");

        // the bound: every script call in between wrote at most CHUNK + 1 inboxes
        const calls = scriptCalls(mon.between('start', 'end'));
        const writing = calls.filter((c) => c.inboxes > 0);
        const most = Math.max(0, ...writing.map((c) => c.inboxes));
        const total = writing.reduce((s, c) => s + c.inboxes, 0);
        t.diagnostic(`${calls.length} script calls, ${writing.length} writing inboxes (at most ${most} each, ${total} in all)`);
        assert.ok(total >= 2 * MEMBERS, `MONITOR saw every member written for both events: ${total} inbox writes`);
        const over = writing.filter((c) => c.inboxes > CHUNK + 1);
        assert.deepEqual(
            over.map((c) => `${c.inboxes} inboxes in ${c.call}`),
            [],
            `calls writing more than --fanout-chunk + 1 = ${CHUNK + 1} inboxes`,
        );

        // a live member's sync from the text on: the edit (as a delete: the message is gone since)
        // and the delete
        const M = live[1];
        const { frames } = await syncReplay(M, texts[1].seq, M.hello.epoch);
        assert.deepEqual(frames.map(tag), [`delete:${msg.id}`, `delete:${msg.id}`], frames.map(brief).join(', '));
        // the offline member: the push replays the deleted text, its edit (as a delete) and the
        // delete; the deleted message no longer counts as unread nor as a mention
        const off = await Client.connect(cluster.gw(1), token(last), { name: last });
        const ge = entry(off.hello, g);
        assert.deepEqual(
            [ge?.unread ?? 0, ge?.mentions ?? 0],
            [1, 0],
            `only \`early\` is unread; the deleted message is neither unread nor a mention: ${brief(ge)}`,
        );
        const pushed = await framesAfter(off, 0, (f) => f.id === msg.id, 3, 10000);
        assert.deepEqual(pushed.map(tag), [`text:${msg.id}`, `delete:${msg.id}`, `delete:${msg.id}`], pushed.map(brief).join(', '));
        assert.deepEqual([pushed[0].data, pushed[0].deleted, pushed[0].by, pushed[0].mentions], ['', d.sent, names[0], [last]], brief(pushed[0]));

        // an edit sent right behind a text whose fan-out is queued: stored and delivered after it
        A.send({ kind: 'text', to: g, data: 'queued first', cid: 'lb-4' });
        A.send({ kind: 'edit', with: g, id: early.id, data: 'edited behind a queued text', cid: 'lb-5' });
        const answerOf = (c) => A.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === c, 30000);
        const t4 = await answerOf('lb-4');
        const e5 = await answerOf('lb-5');
        assert.deepEqual([t4.kind, e5.kind, e5.id], ['ack', 'ack', early.id], `${brief(t4)} ${brief(e5)}`);
        for (const c of live) {
            const f4 = await c.next({ kind: 'text', id: t4.id }, 30000);
            const f5 = await c.next({ kind: 'edit', id: early.id }, 30000);
            assert.ok(f4.seq < f5.seq && c.frames.indexOf(f4) < c.frames.indexOf(f5), `${c.name}: the text, then the edit: ${brief(f4)} ${brief(f5)}`);
        }
        assert.ok(e5.seq > t4.seq, 'the edit took its seq after the text');
    },
);
