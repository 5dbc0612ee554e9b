// Presence beyond the "everyone" limit (protocol.md: Presence and contacts):
// hello lists only the user's contacts and online/offline frames go only to
// sessions that have the changed user as a contact. Cluster: redis, router,
// two gateways started with --everyone-limit 3 (the tests register more).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief } from './lib/client.mjs';
import { Cluster, makeUsers } from './lib/cluster.mjs';

const cluster = new Cluster('contacts', { gatewayArgs: ['--everyone-limit', '3'] });
let tok;
before(async () => {
    await cluster.start();
    tok = await makeUsers(cluster.gw(0), ['xa', 'xb', 'stranger', 'late', 'filler1', 'filler2']);
});
after(() => cluster.stop());

async function send(c, to, data, cid) {
    c.send({ kind: 'text', to, data, cid });
    const f = await c.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === cid);
    assert.equal(f.kind, 'ack', brief(f));
    return f;
}

cluster.test('beyond --everyone-limit, hello lists only contacts and presence reaches only contacts', async () => {
    const XA = await Client.connect(cluster.gw(0), tok.xa, { name: 'xa' });
    await send(XA, 'xb', 'hi', 'c-1');
    await XA.close();
    const XB = await Client.connect(cluster.gw(1), tok.xb, { name: 'xb' });
    const listed = XB.hello.users.map((u) => u.username);
    assert.deepEqual(listed, ['xa'], `xb's hello lists its one contact, not everyone: ${brief(XB.hello)}`);
    await cluster.presenceSubscribed('xa');
    const S = await Client.connect(cluster.gw(0), tok.stranger, { name: 'stranger' });
    await Client.connect(cluster.gw(0), tok.xa, { name: 'xa-again' });
    const on = await XB.next({ kind: 'online' });
    assert.equal(on.from, 'xa', `the first presence frame xb gets is its contact's: ${brief(on)}`);
    await S.close();
    await XB.expectNone({ from: 'stranger' }, 400, 'presence of a non-contact');
    const [, subs] = await cluster.redis('PUBSUB', 'NUMSUB', 'parley:presence:stranger');
    assert.equal(Number(subs), 0, 'no gateway follows the presence of a user nobody has as a contact');
});

cluster.test('a message from a new correspondent makes them a contact of the live session: its state at once, then presence follows', async () => {
    const XB = await Client.connect(cluster.gw(1), tok.xb, { name: 'xb' });
    assert.ok(!XB.hello.users.some((u) => u.username === 'late'), `late is not a contact yet: ${brief(XB.hello)}`);
    const L = await Client.connect(cluster.gw(0), tok.late, { name: 'late' });
    await send(L, 'xb', 'hello there', 'c-2');
    await XB.next({ kind: 'text', from: 'late' });
    // a contact learned from a text: its current state arrives once the
    // gateway follows it (both ways: the sender learns the recipient too)
    await XB.next({ kind: 'online', from: 'late' });
    await L.next({ kind: 'online', from: 'xb' });
    await cluster.presenceSubscribed('late');
    await L.close();
    const off = await XB.next({ kind: 'offline', from: 'late' });
    assert.equal(off.from, 'late');
});
