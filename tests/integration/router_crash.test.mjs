// The router dies (SIGKILL) while messages flow and is restarted: a client
// that retries with the same cid (on `error unavailable` or no ack within 2 s)
// gets every message acked exactly once and the receiver gets every acked id
// exactly once, in id order (protocol.md: Delivery guarantees 1-3).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, sendReliably, sendStream } from './lib/client.mjs';
import { Cluster, makeUsers, waitFor } from './lib/cluster.mjs';
import { conversationKey, slotOf } from './lib/resp.mjs';

// generous rate limit: the test paces itself at 100 frames/s plus retries
const cluster = new Cluster('router_crash', { gatewayArgs: ['--rate', '1000', '--burst', '1000'] });
before(() => cluster.start());
after(() => cluster.stop());

const N = 200;
const PACE_MS = 10;
const KILL_AT = 70;
const NO_ACK_RETRY_MS = 2000;
const UNAVAILABLE_RETRY_MS = 100;

cluster.test('SIGKILL and restart the router mid-stream: every cid acked once, every acked id received once, in order', async () => {
    const tokens = await makeUsers(cluster.gw(0), ['alice', 'bob']);
    const A = await Client.connect(cluster.gw(0), tokens.alice, { name: 'alice@gw1' });
    const B = await Client.connect(cluster.gw(1), tokens.bob, { name: 'bob@gw2' });

    let restarted;
    const { msgs, problems, unavailable, timeouts } = await sendStream(A, 'bob', N, {
        prefix: 'rc',
        paceMs: PACE_MS,
        noAckRetryMs: NO_ACK_RETRY_MS,
        unavailableRetryMs: UNAVAILABLE_RETRY_MS,
        beforeSend: async (i) => {
            if (i !== KILL_AT) return;
            await cluster.killRouter('SIGKILL');
            // restart at once; it takes over the slots when the dead one's leases expire
            restarted = cluster.startRouter({ waitSlots: false });
        },
    });
    await restarted;
    const byCid = new Map(msgs.map((m) => [m.cid, m]));
    assert.deepEqual(problems, [], 'ack problems');

    // the router took over again
    await cluster.waitRouted(cluster.router.proc);

    const acked = msgs.map((m) => m.id);
    assert.equal(new Set(acked).size, N, `${N} distinct cids must get ${N} distinct ids`);
    const ackedSorted = [...acked].sort((a, b) => a - b);

    // receiver: what arrived live, then a sync from the last seq seen
    await waitFor(() => B.all({ kind: 'text' }).length >= N || !B.isOpen, { timeout: 10000, what: `bob receives ${N} texts live` }).catch(() => {});
    const live = B.all({ kind: 'text' });
    const lastSeq = Math.max(B.hello.seq, ...live.map((t) => t.seq));
    B.send({ kind: 'sync', after: lastSeq, epoch: B.hello.epoch });
    const end = await B.next({ kind: 'sync' });
    assert.equal(end.recovered, true, `final sync: ${brief(end)}`);
    const all = B.all({ kind: 'text' }).map((t) => t.id);

    const dups = all.filter((id, i) => all.indexOf(id) !== i);
    assert.deepEqual(dups, [], `bob received duplicate ids (live ${live.length} + sync ${all.length - live.length})`);
    const extra = all.filter((id) => !acked.includes(id));
    assert.deepEqual(extra, [], 'bob received ids that were never acked');
    const missing = ackedSorted.filter((id) => !all.includes(id));
    assert.deepEqual(missing, [], 'acked ids bob never received');
    for (let i = 1; i < all.length; i++) assert.ok(all[i] > all[i - 1], `bob must receive ids in increasing order; at ${i}: ${all[i - 1]} then ${all[i]}`);
    const seqs = B.all({ kind: 'text' }).map((t) => t.seq);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `bob's seqs must be consecutive at ${i}: ${seqs[i - 1]} then ${seqs[i]}`);
    // the data matches the cid that was acked with that id
    const idToData = new Map(msgs.map((m) => [m.id, m.data]));
    const wrong = B.all({ kind: 'text' }).filter((t) => idToData.get(t.id) !== t.data || byCid.get(t.cid)?.id !== t.id);
    assert.deepEqual(wrong.map(brief), [], 'texts whose id/cid/data do not match the ack');
    console.error(
        `router_crash: ${N} messages, ${unavailable} unavailable answers, ${timeouts} timeout retries, ${msgs.reduce((s, m) => s + m.tries, 0)} sends`,
    );
});

async function slotOwners() {
    // one GET per lease: on a cluster the 64 keys are in 64 hash slots (no MGET spans them)
    return Promise.all(Array.from({ length: 64 }, (_, i) => cluster.redis('GET', `parley:slot:${i}`)));
}

cluster.test('with two routers, SIGKILL one: the survivor takes over its slots and those conversations work again', async () => {
    const second = await cluster.startRouter({ waitSlots: false });
    const routers = cluster.routers.filter((r) => r.proc.running);
    assert.equal(routers.length, 2, 'two routers running');
    await waitFor(
        async () => {
            const owners = await slotOwners();
            return routers.every((r) => owners.includes(r.id)) && owners.every(Boolean);
        },
        { timeout: 15000, what: `both ${routers.map((r) => r.id)} owning slots (fair share)` },
    );
    await cluster.waitRouted(second.proc);

    const names = ['sx', ...Array.from({ length: 12 }, (_, i) => `rx${i}`)];
    const tokens = await makeUsers(cluster.gw(0), names);
    const owners = await slotOwners();
    const victim = routers[0];
    const onVictim = names.slice(1).filter((n) => owners[slotOf(conversationKey('sx', n))] === victim.id);
    const onOther = names.slice(1).filter((n) => owners[slotOf(conversationKey('sx', n))] !== victim.id);
    assert.ok(onVictim.length > 0, `no conversation of 12 lands on ${victim.id}'s slots (owners ${owners}): cannot test`);

    const S = await Client.connect(cluster.gw(0), tokens.sx, { name: 'sx@gw1' });
    const R = {};
    for (const n of names.slice(1)) R[n] = await Client.connect(cluster.gw(1), tokens[n], { name: `${n}@gw2` });

    await victim.proc.signal('SIGKILL');
    const t0 = Date.now();
    const acks = await Promise.all(
        names.slice(1).map((n) => sendReliably(S, { kind: 'text', to: n, data: `after the kill to ${n}`, cid: `two-${n}` }, { timeoutMs: 15000 })),
    );
    const dt = Date.now() - t0;
    for (const [i, n] of names.slice(1).entries()) {
        const t = await R[n].next({ kind: 'text' });
        assert.equal(t.id, acks[i].id, `${n} receives its message: ${brief(t)}`);
        await R[n].expectNone({ kind: 'text' }, 50, 'a second copy');
    }
    console.error(`two routers: ${onVictim.length} conversations on the killed router, ${onOther.length} on the other; all acked ${dt} ms after the kill`);
    await waitFor(async () => (await slotOwners()).every((o) => o === routers[1].id), {
        timeout: 5000,
        what: `all 64 slots owned by the survivor ${routers[1].id}`,
    });
});
