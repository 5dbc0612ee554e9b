// A deleted message's text is gone from every stored copy (protocol.md "v1
// additions: message lifecycle"): messages holding unique marker strings
// (sent, edited to another marker, reacted to, replied to, pushed to an
// offline recipient's inbox, 1:1 and group) are deleted, then every key of
// the test's Redis is SCANned and every value of every type (strings, lists,
// hashes, sets, zsets, streams) searched for the markers: none may be found
// (the same scan finds them before the deletes, so it can fail). hello's
// `last` of those conversations holds no text either.
// Cluster: redis, router, gw1, gw2.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { decode, encode } from '@msgpack/msgpack';
import { Client, brief } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';
import { acked, entry, history, inHistory } from './lib/lifecycle.mjs';
import { Conn } from './lib/resp.mjs';

const cluster = new Cluster('lifecycle_deleted');
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `lx-${++n}`;
const users = (...bases) => cluster.users(bases);
const text = (c, to, data, extra = {}) => acked(c, { kind: 'text', to, data, cid: cid(), ...extra });

// Every key of the Redis whose name or any value contains one of the markers:
// [{key, type, marker}].
async function keysHolding(markers) {
    const r = await Conn.open(cluster.redisPort);
    const found = [];
    let scanned = 0;
    try {
        const bufs = markers.map((m) => Buffer.from(m));
        let cursor = '0';
        do {
            const [next, keys] = await r.callBuffers('SCAN', cursor, 'COUNT', '500');
            cursor = next.toString();
            for (const kb of keys) {
                const key = kb.toString('latin1');
                scanned++;
                const type = await r.call('TYPE', kb);
                let values;
                switch (type) {
                    case 'string':
                        values = [await r.callBuffers('GET', kb)];
                        break;
                    case 'list':
                        values = await r.callBuffers('LRANGE', kb, '0', '-1');
                        break;
                    case 'hash':
                        values = await r.callBuffers('HGETALL', kb);
                        break;
                    case 'set':
                        values = await r.callBuffers('SMEMBERS', kb);
                        break;
                    case 'zset':
                        values = await r.callBuffers('ZRANGE', kb, '0', '-1', 'WITHSCORES');
                        break;
                    case 'stream':
                        values = (await r.callBuffers('XRANGE', kb, '-', '+')).flat(3);
                        break;
                    case 'none':
                        values = []; // gone since the SCAN
                        break;
                    default:
                        throw new Error(`key ${key}: a type this scan does not read: ${type}`);
                }
                for (const [i, m] of bufs.entries()) {
                    if (kb.includes(m) || values.some((v) => Buffer.isBuffer(v) && v.includes(m))) found.push({ key, type, marker: markers[i] });
                }
            }
        } while (cursor !== '0');
    } finally {
        r.close();
    }
    assert.ok(scanned > 10, `the scan read the keys (${scanned})`);
    return found;
}

cluster.test('a deleted text is in no Redis key (history, inboxes, last) after send, edit, reactions, a reply, an offline push', async () => {
    const tag = randomBytes(6).toString('hex');
    const M = (i) => `zq${tag}mark${i}`;
    const [a, b, c, o, k] = await users('xa', 'xb', 'xc', 'xo', 'xk');
    const A = await Client.connect(cluster.gw(0), a.token);
    // 1:1 with b, who is offline when it is sent (his inbox holds it), then reads, reacts, replies
    const m1 = await text(A, b.name, `secret ${M(1)} text`);
    let B = await Client.connect(cluster.gw(1), b.token);
    await B.next({ kind: 'text', id: m1.id }); // the offline push
    await acked(B, { kind: 'react', with: a.name, id: m1.id, emoji: '👍', on: true, cid: cid() });
    const reply = await text(B, a.name, 'a reply without the secret', { reply_to: m1.id });
    const early = await keysHolding([M(1)]);
    assert.ok(early.length > 0, `before the edit the scan finds ${M(1)}`);
    await acked(A, { kind: 'edit', with: b.name, id: m1.id, data: `edited ${M(2)} secret`, cid: cid() });
    await B.next({ kind: 'edit', id: m1.id });
    await B.close();
    // 1:1 with c, offline all along: the deleted message is the newest (hello's last)
    const m3 = await text(A, c.name, `newest ${M(3)} secret`);
    // a group (owner o; k offline): a's message, deleted by the owner
    const O = await Client.connect(cluster.gw(1), o.token);
    const g = await cluster.createGroup(O, 'xg', [a.name, k.name]);
    await text(A, g, 'an older group message');
    const m4 = await text(A, g, `group ${M(4)} secret`);
    await acked(O, { kind: 'react', with: g, id: m4.id, emoji: '🎉', on: true, cid: cid() });

    // (the text before the edit may be gone already: history holds the current state)
    const markers = [1, 2, 3, 4].map(M);
    const before = await keysHolding(markers);
    for (const m of markers.slice(1))
        assert.ok(
            before.some((f) => f.marker === m),
            `before the deletes the scan finds ${m}: ${JSON.stringify(before)}`,
        );

    await acked(A, { kind: 'delete', with: b.name, id: m1.id, cid: cid() });
    await acked(A, { kind: 'delete', with: c.name, id: m3.id, cid: cid() });
    await acked(O, { kind: 'delete', with: g, id: m4.id, cid: cid() });

    const afterDelete = await keysHolding(markers);
    assert.deepEqual(afterDelete, [], `keys still holding a deleted text: ${JSON.stringify(afterDelete)}`);

    // the conversations' previews: no text of a deleted newest message
    const C = await Client.connect(cluster.gw(0), c.token);
    const lc = entry(C.hello, a.name).last;
    assert.deepEqual([lc?.id, lc?.data, typeof lc?.deleted], [m3.id, '', 'number'], brief(lc));
    const K = await Client.connect(cluster.gw(1), k.token);
    const lk = entry(K.hello, g).last;
    assert.deepEqual([lk?.id, lk?.data], [m4.id, ''], brief(lk));
    B = await Client.connect(cluster.gw(0), b.token);
    assert.equal(entry(B.hello, a.name).last?.id, reply.id, 'the reply is the newest there');
    for (const X of [B, C, K]) assert.ok(!JSON.stringify(X.frames).includes(tag), `${X.name}: nothing of a marker in hello or the offline push`);
    // the reply is kept, pointing at the deleted message
    const h = await history(B, a.name);
    assert.deepEqual([inHistory(h, m1.id).data, inHistory(h, reply.id).reply_to], ['', m1.id]);
});

// An inbox entry stored before the lifecycle (a full copy of the text, docs/protocol.md: "old
// full-copy entries are still replayed as they are"): made here by replacing b's reference entry
// with the copy the previous version stored ({kind: "text", seq, id, from, to, data, sent, cid}).
async function legacyCopy(user, index, m, from, to, data) {
    const key = `parley:{u:${user}}:inbox`;
    const ref = decode(await cluster.redisBuffers('LINDEX', key, String(index)));
    assert.equal(ref.id, m.id, `the entry replaced is the message's: ${JSON.stringify(ref)}`);
    const copy = { seq: ref.seq, sent: m.sent, to, from, id: m.id, kind: 'text', data, cid: 'legacy' };
    await cluster.redis('LSET', key, String(index), Buffer.from(encode(copy)));
    return copy;
}

cluster.test('an inbox entry from before the lifecycle (a full copy) is replayed as it is', async () => {
    const [a, b] = await users('oa', 'ob');
    const A = await Client.connect(cluster.gw(0), a.token);
    const m = await text(A, b.name, 'stored the old way');
    const copy = await legacyCopy(b.name, -1, m, a.name, b.name, 'stored the old way');
    const B = await Client.connect(cluster.gw(1), b.token);
    const f = await B.next({ kind: 'text', id: m.id });
    assert.deepEqual([f.seq, f.data, f.from, f.to, f.cid], [copy.seq, 'stored the old way', a.name, b.name, 'legacy'], brief(f));
});

cluster.test(
    'after `parley migrate-inboxes` (the upgrade step), a deleted text is gone from an inbox entry stored before the lifecycle (a full copy) too',
    async () => {
        const tag = randomBytes(6).toString('hex');
        const marker = `zq${tag}legacy`;
        const [a, b] = await users('pa', 'pb');
        const A = await Client.connect(cluster.gw(0), a.token);
        const m = await text(A, b.name, `old ${marker} copy`);
        await legacyCopy(b.name, -1, m, a.name, b.name, `old ${marker} copy`);
        assert.ok(
            (await keysHolding([marker])).some((x) => x.key === `parley:{u:${b.name}}:inbox`),
            'the copy holds the text before the migration',
        );
        const mig = await cluster.cli(['migrate-inboxes']);
        assert.ok(mig.ok && /converted=[1-9]/.test(mig.stdout), `parley migrate-inboxes: ${mig.stdout} ${mig.stderr}`);
        const again = await cluster.cli(['migrate-inboxes']);
        assert.ok(again.ok && /converted=0\b/.test(again.stdout), `a second run changes nothing: ${again.stdout}`);
        await acked(A, { kind: 'delete', with: b.name, id: m.id, cid: cid() });
        const left = await keysHolding([marker]);
        assert.deepEqual(left, [], `keys still holding the deleted text: ${JSON.stringify(left)}`);
        const B = await Client.connect(cluster.gw(1), b.token);
        const f = await B.next({ kind: 'text', id: m.id });
        assert.equal(f.data, '', `the offline push of the old copy: ${brief(f)}`);
    },
);
