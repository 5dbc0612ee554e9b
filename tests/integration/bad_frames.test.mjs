// Bad input from a client (docs/protocol.md: Transport limits, Frames, error
// codes) and the per-socket rate limit. Cluster: redis, router, gw1, gw2 and
// gw3 started with a low --rate/--burst.
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import { after, before } from 'node:test';
import { Client, brief } from './lib/client.mjs';
import { Cluster, makeUsers, sleep, waitFor } from './lib/cluster.mjs';

const cluster = new Cluster('bad_frames');
const RATE = 2;
const BURST = 4;
const PING_S = 1; // gw3 pings every second: a silent peer is dropped after two
let peer; // an existing user to send valid messages to
let tokens;
let n = 0;

before(async () => {
    await cluster.start();
    await cluster.startGateway({ args: ['--rate', String(RATE), '--burst', String(BURST), '--ping-interval', String(PING_S)] });
    const names = ['peer', 'sender', 'limited', 'silent', 'lively'];
    tokens = await makeUsers(cluster.gw(0), names);
    peer = 'peer';
});
after(() => cluster.stop());

const connect = (gw = 0, user = 'sender') => Client.connect(cluster.gw(gw), tokens[user], { name: `${user}@gw${gw + 1}` });
const cid = () => `bf-${++n}`;

// Proves the connection is open and working: a valid text is acked.
async function assertStillWorks(c) {
    const id = cid();
    c.send({ kind: 'text', to: peer, data: 'still here', cid: id });
    const f = await c.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === id);
    assert.equal(f.kind, 'ack', `a valid send after the bad frame must be acked, got ${brief(f)}`);
    assert.equal(c.closeInfo, null, 'socket must still be open');
}

async function expectError(c, code, extra = {}) {
    const e = await c.next({ kind: 'error' });
    assert.equal(e.code, code, `expected error ${code}, got ${brief(e)}`);
    assert.equal(typeof e.message, 'string', `error.message should be a string: ${brief(e)}`);
    for (const [k, v] of Object.entries(extra)) assert.equal(e[k], v, `error.${k}: ${brief(e)}`);
    return e;
}

async function expectClose(c, code) {
    const { code: got } = await c.waitClosed(5000);
    assert.equal(got, code, `expected close ${code}, got ${got}; frames: ${c.dump()}`);
}

cluster.test('a text (non-binary) WebSocket frame closes the connection with 1003', async () => {
    const c = await connect();
    c.sendTextFrame(JSON.stringify({ kind: 'text', to: peer, data: 'x', cid: 'x' }));
    await expectClose(c, 1003);
});

cluster.test('bytes that are not msgpack get error bad_frame then close 1007', async () => {
    const c = await connect();
    c.sendRaw(Buffer.from([0xc1, 0xc1, 0xc1])); // 0xc1 is never used in msgpack
    await expectError(c, 'bad_frame');
    await expectClose(c, 1007);
});

cluster.test('a truncated msgpack map gets error bad_frame then close 1007', async () => {
    const c = await connect();
    const full = encode({ kind: 'text', to: peer, data: 'x', cid: 'x' });
    c.sendRaw(full.subarray(0, full.length - 3));
    await expectError(c, 'bad_frame');
    await expectClose(c, 1007);
});

cluster.test('msgpack that is not a map gets error bad_frame then close 1007', async () => {
    const c = await connect();
    c.sendRaw(encode(['text', peer, 'x']));
    await expectError(c, 'bad_frame');
    await expectClose(c, 1007);
});

cluster.test('a map followed by trailing bytes gets error bad_frame then close 1007', async () => {
    const c = await connect();
    const m = encode({ kind: 'text', to: peer, data: 'x', cid: cid() });
    c.sendRaw(Buffer.concat([Buffer.from(m), Buffer.from([0x00])]));
    await expectError(c, 'bad_frame');
    await expectClose(c, 1007);
});

cluster.test('text with `to` as an integer gets bad_field and the connection stays open', async () => {
    const c = await connect();
    c.send({ kind: 'text', to: 42, data: 'x', cid: cid() });
    await expectError(c, 'bad_field');
    await assertStillWorks(c);
});

cluster.test('text with `data` as msgpack bin gets bad_field and the connection stays open', async () => {
    const c = await connect();
    c.send({ kind: 'text', to: peer, data: new Uint8Array([104, 105]), cid: cid() });
    await expectError(c, 'bad_field');
    await assertStillWorks(c);
});

cluster.test('text with `data` that is not valid UTF-8 gets bad_field and the connection stays open', async () => {
    const c = await connect();
    // hand-made map {kind:"text", to:peer, data:<str 0xff 0xfe>, cid:"u1"}: a str holding invalid UTF-8
    const head = Buffer.from(encode({ kind: 'text', to: peer, cid: cid() }));
    assert.equal(head[0], 0x83, 'fixmap of 3');
    const frame = Buffer.concat([Buffer.from([0x84]), head.subarray(1), Buffer.from(encode('data')), Buffer.from([0xa2, 0xff, 0xfe])]);
    c.sendRaw(frame);
    await expectError(c, 'bad_field');
    await assertStillWorks(c);
});

cluster.test('text with a cid longer than 64 chars gets bad_field and the connection stays open', async () => {
    const c = await connect();
    c.send({ kind: 'text', to: peer, data: 'x', cid: 'c'.repeat(65) });
    await expectError(c, 'bad_field');
    await assertStillWorks(c);
    // 64 chars is the limit and is fine
    const c64 = 'd'.repeat(60) + String(++n).padStart(4, '0');
    c.send({ kind: 'text', to: peer, data: 'x', cid: c64 });
    const ack = await c.next((f) => f.cid === c64);
    assert.equal(ack.kind, 'ack', `a 64-char cid must be accepted: ${brief(ack)}`);
});

cluster.test('text without a cid gets bad_field and the connection stays open', async () => {
    const c = await connect();
    c.send({ kind: 'text', to: peer, data: 'x' });
    await expectError(c, 'bad_field');
    await assertStillWorks(c);
});

cluster.test('a map without kind gets bad_field and the connection stays open', async () => {
    const c = await connect();
    c.send({ to: peer, data: 'x', cid: cid() });
    await expectError(c, 'bad_field');
    await assertStillWorks(c);
});

cluster.test('an unknown kind gets error unknown_kind and the connection stays open', async () => {
    const c = await connect();
    c.send({ kind: 'dance', with: peer });
    await expectError(c, 'unknown_kind');
    await assertStillWorks(c);
});

cluster.test('text to an unknown user gets error no_such_user with the cid', async () => {
    const c = await connect();
    const id = cid();
    c.send({ kind: 'text', to: 'nobody-here', data: 'hello?', cid: id });
    await expectError(c, 'no_such_user', { cid: id });
    await assertStillWorks(c);
});

cluster.test('a frame over 64 KiB closes the connection with 1009', async () => {
    const c = await connect();
    c.send({ kind: 'text', to: peer, data: 'x'.repeat(70 * 1024), cid: cid() });
    await expectClose(c, 1009);
});

cluster.test('a frame just under 64 KiB is accepted', async () => {
    const c = await connect();
    const data = 'y'.repeat(60 * 1024);
    const id = cid();
    c.send({ kind: 'text', to: peer, data, cid: id });
    const ack = await c.next((f) => f.cid === id);
    assert.equal(ack.kind, 'ack', `60 KiB text: ${brief(ack)}`);
});

cluster.test('a burst beyond --rate/--burst gets error rate_limited and the connection stays open', async () => {
    const c = await connect(2, 'limited');
    const sent = [];
    for (let i = 0; i < BURST * 4; i++) {
        const id = cid();
        sent.push(id);
        c.send({ kind: 'text', to: peer, data: `burst ${i}`, cid: id });
    }
    // every text of the burst is answered, with its cid: an ack or error rate_limited
    const answers = [];
    for (const id of sent) answers.push(await c.next((f) => (f.kind === 'ack' || f.kind === 'error') && f.cid === id));
    const acked = answers.filter((f) => f.kind === 'ack').length;
    const limited = answers.filter((f) => f.kind === 'error' && f.code === 'rate_limited').length;
    const other = answers.filter((f) => !(f.kind === 'ack' || f.code === 'rate_limited'));
    assert.deepEqual(other.map(brief), [], 'only acks and rate_limited errors expected');
    assert.ok(limited >= 1, `${sent.length} frames at once with --burst ${BURST}: expected some rate_limited, got none`);
    assert.ok(acked >= 1 && acked <= BURST + 2, `with --burst ${BURST}, 1..${BURST + 2} of ${sent.length} should be acked, got ${acked}`);
    assert.equal(c.closeInfo, null, `rate limiting must not close the socket: ${JSON.stringify(c.closeInfo)}`);
    // the bucket refills: a send is acked again (retried at the refill pace while rate_limited)
    const deadline = Date.now() + 8000;
    for (;;) {
        const id = cid();
        c.send({ kind: 'text', to: peer, data: 'after the burst', cid: id });
        const f = await c.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === id);
        if (f.kind === 'ack') break;
        assert.equal(f.code, 'rate_limited', `unexpected answer after the burst: ${brief(f)}`);
        assert.ok(Date.now() < deadline, 'no ack within 8 s after the burst: the bucket never refilled');
        await sleep(1000 / RATE);
    }
    assert.equal(c.closeInfo, null, 'socket still open at the end');
});

cluster.test('keepalive: a peer that stops answering pings is dropped, a live one stays', async () => {
    const S = await connect(2, 'silent');
    const L = await connect(2, 'lively');
    S.ws._socket.pause(); // reads nothing more, so answers no ping
    const t0 = Date.now();
    await waitFor(async () => (await cluster.redis('SCARD', 'parley:{u:silent}:sessions')) === 0, {
        timeout: PING_S * 1000 * 4 + 2000,
        what: 'the silent session dropped (parley:{u:silent}:sessions empty)',
    });
    const dt = Date.now() - t0;
    assert.ok(dt >= PING_S * 1000, `dropped after ${dt} ms: too early for --ping-interval ${PING_S}`);
    S.ws._socket.resume();
    await S.waitClosed(5000);
    assert.ok(!(await cluster.redis('SMEMBERS', 'parley:online')).includes('silent'), 'silent is offline');
    assert.equal(L.closeInfo, null, `the peer that answers pings must stay connected: ${JSON.stringify(L.closeInfo)}`);
    await assertStillWorks(L);
});
