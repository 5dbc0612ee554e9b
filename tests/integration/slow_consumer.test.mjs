// A reader that stops reading is cut off once its bounded send queue fills
// (architecture.md: "Slow consumers are cut off, never allowed to stall a
// loop"; README: close 1008), the gateway keeps serving everyone else, and
// the slow reader loses nothing acknowledged (all of it stays in its inbox).
// Cluster: redis, router, gw1, and gw2 with a small --send-queue.
import assert from 'node:assert/strict';
import { decode } from '@msgpack/msgpack';
import { after, before } from 'node:test';
import { Client, brief } from './lib/client.mjs';
import { Cluster, makeUsers, waitFor } from './lib/cluster.mjs';

const SEND_QUEUE = 65536;
// the per-user send budgets lifted: this file is about the send queue, and
// its sender stores 6.5 MiB in seconds (send_limits.test.mjs covers them)
const cluster = new Cluster('slow_consumer', {
    routerArgs: ['--user-rate', '0', '--user-byte-rate', '0', '--user-fanout-rate', '0'],
    gatewayArgs: (i) => [...(i === 1 ? ['--send-queue', String(SEND_QUEUE)] : []), '--rate', '2000', '--burst', '2000'],
});
before(() => cluster.start());
after(() => cluster.stop());

const BIG = 'z'.repeat(32 * 1024);
const MESSAGES = 200; // 6.5 MiB: more than loopback socket buffers (~4 MiB) plus the queue
const BATCH = 20;
const CUT_DEADLINE_MS = 10000; // a close handshake that cannot happen is given up after ~5 s

cluster.test('a reader that stops reading is cut off without stalling others, and its messages stay in its inbox', async () => {
    const tokens = await makeUsers(cluster.gw(0), ['sender', 'slow', 'other']);
    const S = await Client.connect(cluster.gw(0), tokens.sender, { name: 'sender@gw1' });
    const O = await Client.connect(cluster.gw(1), tokens.other, { name: 'other@gw2' });
    const SL = await Client.connect(cluster.gw(1), tokens.slow, { name: 'slow@gw2' });
    SL.ws._socket.pause();

    const acked = [];
    let worstOtherMs = 0;
    for (let sent = 0; sent < MESSAGES;) {
        const cids = [];
        for (let i = 0; i < BATCH; i++, sent++) {
            const cid = `big-${sent}`;
            cids.push(cid);
            S.send({ kind: 'text', to: 'slow', data: BIG, cid });
        }
        for (const cid of cids) {
            const f = await S.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === cid, 10000);
            assert.equal(f.kind, 'ack', `big message ${cid}: ${brief(f)}`);
            acked.push(f.id);
        }
        // the other user on the same gateway is still served promptly
        const t0 = Date.now();
        const cid = `small-${sent}`;
        S.send({ kind: 'text', to: 'other', data: 'ping', cid });
        await S.next({ kind: 'ack', cid });
        await O.next({ kind: 'text', cid }, 3000);
        worstOtherMs = Math.max(worstOtherMs, Date.now() - t0);
    }
    const tFlood = Date.now();
    await waitFor(async () => (await cluster.redis('SCARD', 'parley:{u:slow}:sessions')) === 0, {
        timeout: CUT_DEADLINE_MS,
        what: `the slow reader's session closed (--send-queue ${SEND_QUEUE}, ${MESSAGES} x ${BIG.length} bytes queued for it)`,
    });
    console.error(`slow_consumer: session closed ${Date.now() - tFlood} ms after the flood; worst round trip for the other user ${worstOtherMs} ms`);
    assert.ok(!(await cluster.redis('SMEMBERS', 'parley:online')).includes('slow'), 'slow is offline once cut off');
    assert.equal(O.closeInfo, null, 'the other user on that gateway stays connected');

    SL.ws._socket.resume();
    const { code } = await SL.waitClosed(10000);
    assert.ok(code === 1008 || code === 1006, `slow reader close code: expected 1008 (or 1006 if the close frame could not be queued), got ${code}`);

    // nothing acknowledged is lost: every acked id is in its inbox (recovery
    // through sync is covered by the messaging tests)
    const inbox = (await cluster.redisBuffers('LRANGE', 'parley:{u:slow}:inbox', '0', '-1')).map((b) => decode(b).id);
    const have = new Set(inbox);
    assert.deepEqual(
        acked.filter((id) => !have.has(id)),
        [],
        'acked ids missing from the inbox of the slow reader',
    );
});
