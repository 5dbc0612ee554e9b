// Inbox references and the history cap (docs/protocol.md decisions: inbox entries are references
// resolved against the conversation's history): a user offline while the history of one of his
// conversations dropped its oldest messages (router --history-cap 5 here) still gets, right after
// hello, every missed entry whose message is still there (protocol.md "Offline messages"), and a
// `sync` from before the dropped ones answers `recovered: false` (gaps are never silent), from
// after them the rest. Cluster: redis, router (--history-cap 5), gw1, gw2.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief } from './lib/client.mjs';
import { Cluster } from './lib/cluster.mjs';
import { acked, syncReplay, tag } from './lib/lifecycle.mjs';

const HISTORY = 5;
const cluster = new Cluster('lifecycle_caps', { routerArgs: ['--history-cap', String(HISTORY)] });
before(() => cluster.start());
after(() => cluster.stop());

let n = 0;
const cid = () => `lc-${++n}`;

cluster.test('sync past messages that left the history: recovered false from before them, the rest from after', async () => {
    const [a, b] = await cluster.users(['sa', 'sb']);
    const A = await Client.connect(cluster.gw(0), a.token);
    const B = await Client.connect(cluster.gw(1), b.token);
    const acks = [];
    for (let i = 0; i < 2 * HISTORY; i++) {
        acks.push(await acked(A, { kind: 'text', to: b.name, data: `m${i}`, cid: cid() }));
        await B.next({ kind: 'text', id: acks[i].id });
    }
    const seqs = B.all({ kind: 'text' }).map((f) => f.seq);
    const gone = await syncReplay(B, seqs[0] - 1, B.hello.epoch);
    assert.deepEqual([gone.end.recovered, gone.frames.map(brief)], [false, []], 'from before the dropped messages: not recovered');
    const kept = await syncReplay(B, seqs[HISTORY - 1], B.hello.epoch);
    assert.equal(kept.end.recovered, true, brief(kept.end));
    assert.deepEqual(
        kept.frames.map(tag),
        acks.slice(HISTORY).map((x) => `text:${x.id}`),
    );
});

cluster.test(
    'offline while the oldest missed messages left the history: the offline push sends a `gone` stand-in for each of those, then the ones kept',
    async () => {
        const [a, b] = await cluster.users(['oa', 'ob']);
        const A = await Client.connect(cluster.gw(0), a.token);
        const acks = [];
        for (let i = 0; i < 2 * HISTORY; i++) acks.push(await acked(A, { kind: 'text', to: b.name, data: `m${i}`, cid: cid() }));
        const kept = acks.slice(HISTORY);
        const B = await Client.connect(cluster.gw(1), b.token);
        for (const g of acks.slice(0, HISTORY)) {
            const f = await B.next({ kind: 'gone', id: g.id }, 3000);
            assert.equal(f.with, a.name, 'a stand-in names the conversation');
        }
        for (const k of kept) {
            const f = await B.next({ kind: 'text', id: k.id }, 3000).catch((e) => {
                throw new Error(`message ${k.id} (still in the history) not pushed: ${e.message}; close: ${JSON.stringify(B.closeInfo)}`);
            });
            assert.equal(f.data, `m${acks.indexOf(k)}`);
        }
        assert.ok(B.isOpen, `the session stays open: ${JSON.stringify(B.closeInfo)}`);
    },
);
