// Presence beyond the "everyone" limit (protocol.md: Presence and contacts):
// hello lists only the user's contacts (1:1 correspondents, groups, the
// members of those groups) and online/offline frames go only to sessions that
// have the changed user as a contact. Cluster: redis, router, two gateways
// started with --everyone-limit 3 (the tests register more) and
// --hello-entries 10 (a long list comes in `users` pages).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, mintToken } from './lib/client.mjs';
import { Cluster, SECRET, makeUsers } from './lib/cluster.mjs';

const HELLO_ENTRIES = 10;
const cluster = new Cluster('contacts', { gatewayArgs: ['--everyone-limit', '3', '--hello-entries', String(HELLO_ENTRIES)] });
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

// hello and the `users` pages after it: every entry, and each page's size.
async function wholeList(c) {
    const sizes = [c.hello.users.length];
    const entries = [...c.hello.users];
    let more = c.hello.more === true;
    while (more) {
        const page = await c.next({ kind: 'users' });
        sizes.push(page.users.length);
        entries.push(...page.users);
        more = page.more === true;
    }
    return { entries, sizes };
}

cluster.test("beyond --everyone-limit, hello's pages list the members of the user's groups once each; their presence reaches the user", async () => {
    const prefix = `gm${Date.now() % 100000}x`;
    const r = await cluster.cli(['bulk-users', '52', '--prefix', prefix, '--password', 'bulk password 1'], 60000);
    assert.ok(r.ok, `bulk-users: ${r.stderr}`);
    const p = (i) => `${prefix}${i}`;
    const token = (name) => mintToken(SECRET, name, Math.floor(Date.now() / 1000) + 3600);
    // the creator p0 makes two groups of 30 with the user p1: p2..p28 in the first,
    // p20..p47 in the second (p20..p28 in both); p5 is also a 1:1 correspondent of p1
    const O = await Client.connect(cluster.gw(0), token(p(0)), { name: 'creator' });
    const first = [p(1), ...Array.from({ length: 27 }, (_, i) => p(i + 2))];
    const second = [p(1), ...Array.from({ length: 28 }, (_, i) => p(i + 20))];
    const ga = await cluster.createGroup(O, 'ga', first);
    const gb = await cluster.createGroup(O, 'gb', second);
    const F = await Client.connect(cluster.gw(0), token(p(5)), { name: 'p5' });
    await send(F, p(1), 'hi', 'm-1');
    await F.close();

    const U = await Client.connect(cluster.gw(1), token(p(1)), { name: 'user' });
    const { entries, sizes } = await wholeList(U);
    const names = entries.map((e) => e.username);
    assert.ok(
        sizes.every((n) => n <= HELLO_ENTRIES),
        `every page at most ${HELLO_ENTRIES} entries: ${sizes}`,
    );
    const skip = (x) => x !== p(1) && x !== p(5);
    const inFirst = [p(0), ...first].filter(skip).sort();
    const onlySecond = second.filter((x) => skip(x) && !inFirst.includes(x)).sort();
    assert.equal(inFirst.length + onlySecond.length, 46, 'p0, p2..p47 but p5');
    assert.deepEqual(names, [p(5), ga, gb, ...inFirst, ...onlySecond], '1:1 contacts, groups, then the members group by group (by name), each once');
    assert.ok(sizes.length >= Math.ceil(names.length / HELLO_ENTRIES), `${sizes.length} pages for ${names.length} entries`);
    const e = entries.find((x) => x.username === p(40));
    assert.deepEqual([e.online, e.unread], [false, 0], `a member's entry is a contact's: ${JSON.stringify(e)}`);
    assert.equal(entries.find((x) => x.username === p(5)).unread, 1, "the 1:1 contact's entry keeps its counter");

    // p40 (in the second group only, never a correspondent): its presence reaches the user.
    // The creator's gateway follows it too (its group frames): 2 subscribers once gw2 does.
    await cluster.presenceSubscribed(p(40), 2);
    const M = await Client.connect(cluster.gw(0), token(p(40)), { name: 'p40' });
    const on = await U.next({ kind: 'online', from: p(40) });
    assert.equal(on.from, p(40));
    await M.close();
    await U.next({ kind: 'offline', from: p(40) });

    // a member added later: the group frame makes the user's session follow it
    O.send({ kind: 'group', op: 'add', name: gb, members: [p(50)] });
    await U.next({ kind: 'group', name: gb, op: 'add' });
    await cluster.presenceSubscribed(p(50), 2);
    await Client.connect(cluster.gw(0), token(p(50)), { name: 'p50' });
    await U.next({ kind: 'online', from: p(50) });
    // a stranger (p51, in no group) is not followed
    await Client.connect(cluster.gw(0), token(p(51)), { name: 'p51' });
    await U.expectNone({ from: p(51) }, 300, 'presence of a non-contact');
});
