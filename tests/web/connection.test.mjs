// Connection: the reconnect / recover / resend sequence, against a scripted
// stand-in for the browser's WebSocket (the real thing, against real
// gateways, is tests/e2e). Timers and Date are node:test's mock timers: time
// moves only when a test advances it.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { createBackoff } from '../../web/src/lib/backoff.js';
import { decodeFrame, encodeFrame } from '../../web/src/lib/codec.js';
import { Connection, createStore, wsUrl } from '../../web/src/lib/connection.js';
import { initialState, reduce } from '../../web/src/lib/store.js';

class FakeSocket {
    static all = [];
    constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.sent = [];
        FakeSocket.all.push(this);
    }
    send(bytes) {
        this.sent.push(decodeFrame(bytes));
    }
    close() {
        this.readyState = 3;
    }
    // server side
    open() {
        this.readyState = 1;
    }
    push(frame) {
        this.onmessage({ data: encodeFrame(frame).slice().buffer });
    }
    drop(code = 1006) {
        this.readyState = 3;
        this.onclose({ code });
    }
}

function setup({ status = 200 } = {}) {
    FakeSocket.all = [];
    const store = createStore(reduce, initialState());
    const fetches = [];
    const conn = new Connection({
        url: 'ws://x/ws',
        dispatch: store.dispatch,
        getState: store.getState,
        WebSocket: FakeSocket,
        fetch: async (path) => {
            fetches.push(path);
            return { status };
        },
        backoff: createBackoff({ base: 1000, cap: 8000, random: () => 1 }),
        onSignedOut: (reason) => (conn.signedOut = reason || true),
    });
    return { store, conn, fetches, last: () => FakeSocket.all[FakeSocket.all.length - 1] };
}

const hello = (seq, epoch = 'e1') => ({ kind: 'hello', user: 'alice', seq, epoch, users: [{ username: 'bob', online: true, unread: 0 }] });
// Runs every pending promise continuation (the real setImmediate comes after
// the microtask queue drains): the async close path has run to its setTimeout.
const flush = () => new Promise((resolve) => setImmediate(resolve));
// Moves the clock ms forward, firing the timers due, then flushes.
const advance = async (ms) => {
    mock.timers.tick(ms);
    await flush();
};

// The clock starts at the real time (a clock at 0 would throttle the first
// typing frame); setImmediate stays real for flush.
beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() }));
afterEach(() => mock.timers.reset());

describe('connection', () => {
    it('reconnects with growing delays, then syncs from its seq and re-sends unacked messages with the same cid', async () => {
        const { store, conn, last } = setup();
        conn.start();
        let ws = last();
        ws.open();
        ws.push(hello(4));
        assert.equal(store.getState().conn.status, 'online');
        assert.deepEqual(ws.sent, []); // first connect: no sync

        const cid = conn.sendText('bob', 'are you there?');
        assert.deepEqual(ws.sent, [{ kind: 'text', to: 'bob', data: 'are you there?', cid }]);

        ws.drop();
        await flush();
        assert.equal(store.getState().conn.status, 'offline');
        assert.equal(FakeSocket.all.length, 1);
        await advance(999);
        assert.equal(FakeSocket.all.length, 1); // not before the backoff delay
        await advance(1);
        assert.equal(FakeSocket.all.length, 2);
        last().drop(); // refused again: the next wait doubles
        await flush();
        await advance(1999);
        assert.equal(FakeSocket.all.length, 2);
        await advance(1);
        assert.equal(FakeSocket.all.length, 3);

        ws = last();
        ws.open();
        ws.push(hello(9));
        assert.deepEqual(ws.sent, [
            { kind: 'sync', after: 4, epoch: 'e1' },
            { kind: 'text', to: 'bob', data: 'are you there?', cid },
        ]);
        ws.push({ kind: 'ack', cid, id: 77, seq: 10, sent: 1 });
        ws.push({ kind: 'sync', recovered: true, seq: 10 });
        const s = store.getState();
        assert.deepEqual(s.outbox, {});
        assert.deepEqual(
            s.convs.bob.messages.map((m) => m.id),
            [77],
        );
        assert.equal(s.syncing, false);
        conn.stop();
    });

    it('a socket refused before hello with a 401 on the API signs out instead of retrying', async () => {
        const { conn, fetches, last } = setup({ status: 401 });
        conn.start();
        last().drop();
        await flush();
        assert.deepEqual(fetches, ['/api/users?q=']);
        assert.equal(conn.signedOut, 'expired');
        await advance(60000);
        assert.equal(FakeSocket.all.length, 1);
    });

    it('no ack within the timeout marks the message failed; retry sends the same cid', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        const cid = conn.sendText('bob', 'x');
        await advance(10000);
        assert.equal(store.getState().outbox[cid].status, 'failed');
        conn.retry(cid);
        assert.equal(store.getState().outbox[cid].status, 'sending');
        assert.deepEqual(
            ws.sent.map((f) => f.cid),
            [cid, cid],
        );
        conn.stop();
    });

    it('history answers are matched to their request (initial / older / preview)', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        conn.requestHistory('bob', 'preview');
        conn.requestHistory('bob', 'older', 50);
        assert.deepEqual(ws.sent, [
            { kind: 'history', with: 'bob', limit: 1 },
            { kind: 'history', with: 'bob', limit: 50, before: 50 },
        ]);
        ws.push({ kind: 'history', with: 'bob', messages: [], more: true });
        assert.equal(store.getState().convs.bob.historyLoaded, false); // a preview
        ws.push({ kind: 'history', with: 'bob', messages: [], more: false });
        assert.equal(store.getState().convs.bob.more, false);
        conn.stop();
    });

    it("discarding a failed op asks for the message again (history {before: id + 1, limit: 1}), so the page shows the server's state", async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        ws.push({ kind: 'text', id: 10, seq: 1, from: 'bob', to: 'alice', data: 'hi', sent: 1 });
        const cid = conn.sendOp({ kind: 'delete', with: 'bob', id: 10 });
        store.dispatch({ type: 'timeout', cid });
        ws.sent.length = 0;
        conn.discard(cid);
        assert.deepEqual(ws.sent, [{ kind: 'history', with: 'bob', limit: 1, before: 11 }]);
        ws.push({ kind: 'history', with: 'bob', messages: [{ id: 10, from: 'bob', to: 'alice', data: '', sent: 1, deleted: 5, by: 'alice' }], more: true });
        const m = store.getState().convs.bob.messages.find((x) => x.id === 10);
        assert.equal(m.deleted, 5, 'the server had deleted it: so does the page');
        assert.equal(store.getState().convs.bob.more, null, 'paging untouched');
        conn.stop();
    });

    it('a server without history (unknown_kind) is not asked again, and no spinner waits', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        conn.requestHistory('bob', 'older', 10);
        ws.push({ kind: 'error', code: 'unknown_kind', message: 'history: not implemented yet' });
        assert.equal(store.getState().convs.bob.loadingOlder, false);
        assert.equal(conn.requestHistory('bob', 'initial'), false);
        assert.equal(store.getState().notice, null);
        conn.stop();
    });

    it('a message too large for the gateway fails at once and is never sent (no 1009 loop)', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        const cid = conn.sendText('bob', 'é'.repeat(40000)); // 80000 bytes
        assert.deepEqual(ws.sent, []);
        assert.equal(store.getState().outbox[cid].status, 'failed');
        assert.equal(store.getState().outbox[cid].error, 'too_large');
        conn.retry(cid);
        assert.deepEqual(ws.sent, []);
        assert.equal(store.getState().outbox[cid].status, 'failed');
        conn.stop();
    });

    it('typing is throttled', async () => {
        const { conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        conn.typing('bob');
        conn.typing('bob');
        await advance(2600);
        conn.typing('bob');
        assert.equal(ws.sent.filter((f) => f.kind === 'typing').length, 2);
        conn.stop();
    });

    it('the socket URL carries no token and follows the page scheme (wss on https)', () => {
        assert.equal(wsUrl({ protocol: 'https:', host: 'chat.example:8443' }), 'wss://chat.example:8443/ws');
        assert.equal(wsUrl({ protocol: 'http:', host: '127.0.0.1:8080' }), 'ws://127.0.0.1:8080/ws');
        const { conn, last } = setup();
        conn.o.url = wsUrl({ protocol: 'https:', host: 'h' });
        conn.start();
        assert.doesNotMatch(last().url, /[?&]token=|\?/);
        conn.stop();
    });

    it('closed with 4001 (session revoked): signs out at once, no API check, no reconnect', async () => {
        const { store, conn, fetches, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(3));
        ws.drop(4001);
        await flush();
        assert.equal(conn.signedOut, 'revoked');
        assert.equal(store.getState().conn.status, 'signedOut');
        assert.deepEqual(fetches, []);
        await advance(120000);
        assert.equal(FakeSocket.all.length, 1, 'no reconnect loop');
        // before hello too
        const b = setup();
        b.conn.start();
        b.last().drop(4001);
        await flush();
        assert.equal(b.conn.signedOut, 'revoked');
        await advance(120000);
        assert.equal(FakeSocket.all.length, 1);
    });

    it("this page's password change: the 4001 of its old token waits for the answer, then it reconnects at once with the new cookie", async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(3));
        let answer;
        const pending = conn.renew(new Promise((r) => (answer = r)));
        ws.drop(4001); // the server revoked the old token before the HTTP answer was read
        await flush();
        assert.equal(conn.signedOut, undefined);
        assert.equal(FakeSocket.all.length, 1);
        answer({ ok: true, status: 200, data: { username: 'alice', token: 'new' } });
        const r = await pending;
        await flush();
        assert.equal(r.ok, true);
        assert.equal(conn.signedOut, undefined);
        assert.equal(FakeSocket.all.length, 2, 'reconnected without waiting for a backoff');
        const ws2 = last();
        ws2.open();
        ws2.push(hello(3));
        assert.deepEqual(ws2.sent, [{ kind: 'sync', after: 3, epoch: 'e1' }], 'sync fills any gap');
        assert.equal(store.getState().conn.status, 'online');
        conn.stop();
    });

    it('a password change answered before the 4001: the page closes its old socket itself and reconnects; a refused one changes nothing', async () => {
        const { conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(1));
        const bad = await conn.renew(Promise.resolve({ ok: false, status: 401, error: 'The current password is wrong.' }));
        assert.equal(bad.ok, false);
        assert.equal(FakeSocket.all.length, 1);
        assert.equal(ws.readyState, 1, 'a refused change leaves the socket alone');
        await conn.renew(Promise.resolve({ ok: true, status: 200 }));
        assert.equal(ws.readyState, 3, 'the old socket closed by the page');
        assert.equal(FakeSocket.all.length, 2);
        ws.onclose && ws.onclose({ code: 4001 }); // detached: nothing happens
        await flush();
        assert.equal(conn.signedOut, undefined);
        // a 4001 while a change is refused is a real revocation
        const ws2 = last();
        ws2.open();
        ws2.push(hello(1));
        let answer;
        const p = conn.renew(new Promise((r) => (answer = r)));
        ws2.drop(4001);
        answer({ ok: false, status: 401 });
        await p;
        await flush();
        assert.equal(conn.signedOut, 'revoked');
    });

    it('errors without cid are tied to what asked for them: a group change, else a typing notice (silent), not a history request', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        conn.requestHistory('bob', 'initial');
        conn.group('remove', '#team', { members: ['carol'] });
        ws.push({ kind: 'error', code: 'forbidden', message: 'an admin cannot remove another admin' });
        assert.equal(store.getState().notice.text, 'Could not remove members from #team: an admin cannot remove another admin.');
        assert.equal(store.getState().convs.bob.more, null, 'the history request still waits');
        store.dispatch({ type: 'notice', text: '' });
        assert.equal(conn.typing('bob'), true);
        ws.push({ kind: 'error', code: 'forbidden', message: 'forbidden' });
        assert.equal(store.getState().notice, null, 'a refused typing notice shows nothing');
        assert.equal(store.getState().convs.bob.refused, true);
        await advance(3000);
        assert.equal(conn.typing('bob'), false, 'no more typing notices to someone who refuses them');
        ws.push({ kind: 'history', with: 'bob', messages: [], more: false });
        assert.equal(store.getState().convs.bob.historyLoaded, true);
        // a group frame answering this user's change settles it: the next error is not tied to it
        conn.group('add', '#team', { members: ['dave'] });
        ws.push({ kind: 'group', op: 'add', name: '#team', by: 'alice', members: ['alice', 'dave'], owner: 'alice', admins: [] });
        ws.push({ kind: 'error', code: 'bad_field', message: 'what' });
        assert.equal(store.getState().notice.text, 'Server: what');
        conn.stop();
    });

    it("opening a group after a reload sends nothing: hello's entry carries its roles", async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push({ ...hello(0), users: [{ username: '#team', online: true, unread: 0, owner: 'bob', admins: ['alice'], role: 'admin' }] });
        const sent = ws.sent.length;
        store.dispatch({ type: 'open', key: '#team' });
        const c = store.getState().convs['#team'];
        assert.deepEqual([c.owner, c.admins, c.myRole], ['bob', ['alice'], 'admin']);
        assert.equal(typeof conn.refreshGroup, 'undefined', 'no join to learn the roles');
        assert.deepEqual(
            ws.sent.slice(sent).filter((f) => f.kind === 'group'),
            [],
        );
        conn.stop();
    });

    it('block and unblock: the frame {kind: block, user, on}, the store at once; no typing to someone blocked; unknown frames ignored', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        assert.equal(conn.block('bob', true), true);
        assert.deepEqual(ws.sent, [{ kind: 'block', user: 'bob', on: true }]);
        assert.deepEqual(store.getState().blocked, { bob: true });
        assert.equal(store.getState().convs.bob.online, false);
        assert.equal(conn.typing('bob'), false);
        conn.block('bob', false);
        assert.deepEqual(ws.sent[1], { kind: 'block', user: 'bob', on: false });
        assert.deepEqual(store.getState().blocked, {});
        const before = store.getState();
        ws.push({ kind: 'future_thing', x: 1 });
        assert.equal(store.getState(), before);
        conn.stop();
        assert.equal(conn.block('bob', true), false, 'not connected: not sent, not marked');
        assert.deepEqual(store.getState().blocked, {});
    });

    it('a server without block (unknown_kind): the mark is undone, said once, and history still works', async () => {
        const { store, conn, last } = setup();
        conn.start();
        const ws = last();
        ws.open();
        ws.push(hello(0));
        conn.block('bob', true);
        ws.push({ kind: 'error', code: 'unknown_kind', message: 'unknown kind "block"' });
        assert.deepEqual(store.getState().blocked, {});
        assert.equal(store.getState().notice.text, 'This server cannot block users.');
        assert.equal(conn.block('bob', true), false);
        assert.equal(conn.requestHistory('bob', 'initial'), true);
        conn.stop();
    });

    it('edits, deletes and reactions carry a cid, time out, and are re-sent with the same cid after a reconnect; a reply carries reply_to', async () => {
        const { store, conn, last } = setup();
        conn.start();
        let ws = last();
        ws.open();
        ws.push(hello(3));
        ws.push({ kind: 'text', id: 40, seq: 3, from: 'bob', to: 'alice', data: 'hi', sent: 1 });
        const seen = [];
        conn.o.onFrame = (f, before, after) => seen.push([f.kind, before !== after]);
        const r = conn.sendText('bob', 'yes', 40);
        const e = conn.sendOp({ kind: 'edit', with: 'bob', id: 40, data: 'x' });
        const k = conn.sendOp({ kind: 'react', with: 'bob', id: 40, emoji: '👍', on: true });
        const d = conn.sendOp({ kind: 'delete', with: 'bob', id: 40 });
        assert.deepEqual(ws.sent, [
            { kind: 'text', to: 'bob', data: 'yes', cid: r, reply_to: 40 },
            { kind: 'edit', with: 'bob', id: 40, cid: e, data: 'x' },
            { kind: 'react', with: 'bob', id: 40, cid: k, emoji: '👍', on: true },
            { kind: 'delete', with: 'bob', id: 40, cid: d },
        ]);
        ws.push({ kind: 'ack', cid: k, id: 40, seq: 4, sent: 2 });
        assert.deepEqual(seen, [['ack', true]], 'onFrame sees each frame after the store took it');
        await advance(10000);
        assert.equal(store.getState().ops[e].status, 'failed');
        ws.drop();
        await flush();
        await advance(1000);
        ws = last();
        ws.open();
        ws.push(hello(9));
        assert.deepEqual(
            ws.sent.map((f) => [f.kind, f.cid]),
            [
                ['sync', undefined],
                ['text', r],
                ['edit', e],
                ['delete', d],
            ],
        );
        ws.push({ kind: 'error', code: 'forbidden', message: 'only the author may edit', cid: e });
        assert.equal(store.getState().ops[e], undefined);
        assert.match(store.getState().notice.text, /Could not edit/);
        conn.retry(d);
        assert.deepEqual(ws.sent[ws.sent.length - 1], { kind: 'delete', with: 'bob', id: 40, cid: d });
        conn.stop();
    });
});
